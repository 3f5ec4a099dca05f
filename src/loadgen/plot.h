// `--plot FILE.png`: latency percentile curves (TTFT, ITL/TPOT, end-to-end) and throughput over
// time, drawn with the built-in rasterizer.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "loadgen/canvas.h"
#include "loadgen/types.h"

namespace wideserve::loadgen {

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in order
  Rgb color;
};

// One line chart with axes, ticks, labels and a legend inside the rectangle (x, y, w, h).
void draw_chart(Canvas& canvas, int x, int y, int w, int h, const std::string& title,
                const std::string& x_label, const std::vector<Series>& series);

// "Nice" tick values (1, 2 or 5 times a power of ten) covering [lo, hi], about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target);

// Output tokens per second in `bins` equal time bins over [0, duration_s] (measured records;
// each request's tokens spread evenly over its content chunks).
std::vector<std::pair<double, double>> output_throughput_series(
    const std::vector<RequestRecord>& records, double duration_s, int bins);

// The 2x2 figure of a benchmark run, written as PNG.
void write_bench_plot(const std::string& path, const std::vector<RequestRecord>& records,
                      double duration_s);

}  // namespace wideserve::loadgen
