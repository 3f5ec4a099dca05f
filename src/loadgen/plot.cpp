#include "loadgen/plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "loadgen/png_writer.h"
#include "loadgen/report.h"
#include "loadgen/stats.h"

namespace wideserve::loadgen {
namespace {

constexpr Rgb kWhite{255, 255, 255}, kBlack{0, 0, 0}, kGrid{225, 225, 225};
constexpr Rgb kBlue{31, 119, 180}, kOrange{255, 127, 14}, kGreen{44, 160, 44}, kRed{214, 39, 40};

std::string tick_label(double v, double step) {
  if (std::abs(v) < step * 1e-6) return "0";
  if (std::abs(v) >= 1e5) return fmt::format("{:.0e}", v);
  int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  return fmt::format("{:.{}f}", v, decimals);
}

std::vector<std::pair<double, double>> percentile_curve(std::vector<double> v) {
  std::vector<std::pair<double, double>> pts;
  if (v.empty()) return pts;
  std::sort(v.begin(), v.end());
  for (int p = 0; p <= 100; ++p) pts.emplace_back(p, percentile_sorted(v, p));
  return pts;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) hi = lo + 1;
  double raw = (hi - lo) / std::max(1, target);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(t);
  return ticks;
}

void draw_chart(Canvas& c, int x, int y, int w, int h, const std::string& title,
                const std::string& x_label, const std::vector<Series>& series) {
  const int left = 64, right = 16, top = 28, bottom = 40;
  int px = x + left, py = y + top, pw = w - left - right, ph = h - top - bottom;
  c.text(x + (w - Canvas::text_width(title, 2)) / 2, y + 6, title, kBlack, 2);
  double x0 = 1e300, x1 = -1e300, y1 = 0;
  for (const auto& s : series)
    for (auto [sx, sy] : s.points) {
      x0 = std::min(x0, sx);
      x1 = std::max(x1, sx);
      y1 = std::max(y1, sy);
    }
  if (x0 > x1) x0 = 0, x1 = 1;
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= 0) y1 = 1;
  auto yt = nice_ticks(0, y1 * 1.05, 5);
  double ymax = std::max(yt.back(), y1);
  auto xt = nice_ticks(x0, x1, 6);
  auto to_px = [&](double v) {
    return px + static_cast<int>(std::lround((v - x0) / (x1 - x0) * pw));
  };
  auto to_py = [&](double v) { return py + ph - static_cast<int>(std::lround(v / ymax * ph)); };
  double ystep = yt.size() > 1 ? yt[1] - yt[0] : ymax;
  double xstep = xt.size() > 1 ? xt[1] - xt[0] : (x1 - x0);
  for (double t : yt) {
    int yy = to_py(t);
    c.line(px, yy, px + pw, yy, kGrid);
    std::string s = tick_label(t, ystep);
    c.text(px - 6 - Canvas::text_width(s), yy - 3, s, kBlack);
  }
  for (double t : xt) {
    if (t < x0 - 1e-9 || t > x1 + 1e-9) continue;
    int xx = to_px(t);
    c.line(xx, py, xx, py + ph, kGrid);
    c.line(xx, py + ph, xx, py + ph + 4, kBlack);
    std::string s = tick_label(t, xstep);
    c.text(xx - Canvas::text_width(s) / 2, py + ph + 8, s, kBlack);
  }
  c.line(px, py, px, py + ph, kBlack);
  c.line(px, py + ph, px + pw, py + ph, kBlack);
  c.text(px + (pw - Canvas::text_width(x_label)) / 2, py + ph + 24, x_label, kBlack);
  int ly = py + 6;
  for (const auto& s : series) {
    for (size_t i = 1; i < s.points.size(); ++i)
      c.line(to_px(s.points[i - 1].first), to_py(s.points[i - 1].second), to_px(s.points[i].first),
             to_py(s.points[i].second), s.color, 2);
    if (s.points.size() == 1)
      c.fill_rect(to_px(s.points[0].first) - 2, to_py(s.points[0].second) - 2, 5, 5, s.color);
    c.fill_rect(px + 8, ly, 14, 7, s.color);
    c.text(px + 28, ly, s.name, kBlack);
    ly += 12;
  }
}

std::vector<std::pair<double, double>> output_throughput_series(
    const std::vector<RequestRecord>& records, double duration_s, int bins) {
  std::vector<std::pair<double, double>> pts;
  if (duration_s <= 0 || bins <= 0) return pts;
  double width = duration_s / bins;
  std::vector<double> tokens(static_cast<size_t>(bins), 0.0);
  for (const auto& r : records) {
    if (r.warmup || !r.ok() || r.content_times_s.empty()) continue;
    double per_chunk = static_cast<double>(r.completion_tokens) / r.content_times_s.size();
    for (double t : r.content_times_s) {
      int b = static_cast<int>((r.start_s + t) / width);
      tokens[static_cast<size_t>(std::clamp(b, 0, bins - 1))] += per_chunk;
    }
  }
  for (int b = 0; b < bins; ++b) pts.emplace_back((b + 0.5) * width, tokens[b] / width);
  return pts;
}

void write_bench_plot(const std::string& path, const std::vector<RequestRecord>& records,
                      double duration_s) {
  std::vector<double> ttft, itl, tpot, e2e;
  for (const auto& r : records) {
    if (r.warmup || !r.ok()) continue;
    ttft.push_back(r.ttft_s * 1e3);
    e2e.push_back(r.e2e_s * 1e3);
    for (size_t i = 1; i < r.content_times_s.size(); ++i)
      itl.push_back((r.content_times_s[i] - r.content_times_s[i - 1]) * 1e3);
    if (r.completion_tokens >= 2) tpot.push_back(request_tpot_ms(r));
  }
  const int w = 600, h = 400;
  Canvas c(2 * w, 2 * h, kWhite);
  draw_chart(c, 0, 0, w, h, "TTFT (MS)", "PERCENTILE", {{"TTFT", percentile_curve(ttft), kBlue}});
  draw_chart(c, w, 0, w, h, "ITL AND TPOT (MS)", "PERCENTILE",
             {{"ITL", percentile_curve(itl), kOrange}, {"TPOT", percentile_curve(tpot), kGreen}});
  draw_chart(c, 0, h, w, h, "END-TO-END LATENCY (MS)", "PERCENTILE",
             {{"E2E", percentile_curve(e2e), kRed}});
  int bins = std::clamp(static_cast<int>(duration_s), 10, 120);
  draw_chart(c, w, h, w, h, "OUTPUT TOKENS/S OVER TIME", "TIME (S)",
             {{"OUTPUT TOK/S", output_throughput_series(records, duration_s, bins), kBlue}});
  write_png(path, c.width(), c.height(), c.pixels());
}

}  // namespace wideserve::loadgen
