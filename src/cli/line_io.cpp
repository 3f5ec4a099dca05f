#include "cli/line_io.h"

#include <cstdio>
#include <iostream>

namespace wideserve::cli {

void for_each_stdin_line(const std::function<void(const std::string&, size_t, std::string&)>& fn) {
  std::ios::sync_with_stdio(false);  // large inputs: stdio-synced getline is slow
  std::string line, out;
  auto flush = [&] {
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    out.clear();
  };
  try {
    for (size_t n = 1; std::getline(std::cin, line); ++n) {
      fn(line, n, out);
      if (out.size() > (1 << 16)) {
        std::fwrite(out.data(), 1, out.size(), stdout);
        out.clear();
      }
    }
  } catch (...) {
    flush();
    throw;
  }
  flush();
}

}  // namespace wideserve::cli
