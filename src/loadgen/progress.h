// Live progress line for terminals: "[####....] 45/100 req | 12.3 req/s | 2 errors | 3.4 s".
#pragma once

#include <cstdio>
#include <string>

#include "loadgen/runner.h"

namespace wideserve::loadgen {

// One progress line (no newline); the bar tracks requests, or time in duration mode.
std::string format_progress(const Progress& p, int bar_width = 30);

// Redraws the line in place on a terminal stream; does nothing unless `enabled`.
class ProgressPrinter {
 public:
  ProgressPrinter(std::FILE* out, bool enabled) : out_(out), enabled_(enabled) {}
  ~ProgressPrinter() { finish(); }
  void update(const Progress& p);
  void finish();  // ends the line (once)

 private:
  std::FILE* out_;
  bool enabled_;
  bool drawn_ = false;
  size_t last_len_ = 0;
};

}  // namespace wideserve::loadgen
