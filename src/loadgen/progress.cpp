#include "loadgen/progress.h"

#include <fmt/format.h>

#include <algorithm>

namespace wideserve::loadgen {

std::string format_progress(const Progress& p, int bar_width) {
  double frac = 0;
  if (p.total > 0)
    frac = static_cast<double>(p.completed + p.failed) / static_cast<double>(p.total);
  else if (p.duration_s > 0)
    frac = p.elapsed_s / p.duration_s;
  frac = std::clamp(frac, 0.0, 1.0);
  int filled = static_cast<int>(frac * bar_width);
  std::string bar = std::string(filled, '#') + std::string(bar_width - filled, '.');
  std::string count = p.total > 0 ? fmt::format("{}/{}", p.completed + p.failed, p.total)
                                  : fmt::format("{}", p.completed + p.failed);
  double rate = p.elapsed_s > 0 ? static_cast<double>(p.completed) / p.elapsed_s : 0;
  double tok = p.elapsed_s > 0 ? static_cast<double>(p.output_tokens) / p.elapsed_s : 0;
  return fmt::format(
      "{}[{}] {} req | {} in flight | {:.1f} req/s | {:.0f} tok/s | {} errors | {:.1f} s",
      p.warmup ? "warm-up " : "", bar, count, p.in_flight, rate, tok, p.failed, p.elapsed_s);
}

void ProgressPrinter::update(const Progress& p) {
  if (!enabled_) return;
  std::string line = format_progress(p);
  size_t pad = last_len_ > line.size() ? last_len_ - line.size() : 0;
  std::fprintf(out_, "\r%s%s", line.c_str(), std::string(pad, ' ').c_str());
  std::fflush(out_);
  last_len_ = line.size();
  drawn_ = true;
}

void ProgressPrinter::finish() {
  if (!enabled_ || !drawn_) return;
  std::fprintf(out_, "\n");
  std::fflush(out_);
  drawn_ = false;
  last_len_ = 0;
}

}  // namespace wideserve::loadgen
