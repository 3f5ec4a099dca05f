#include "config/choices.h"

#include <algorithm>

#include "common/check.h"

namespace wideserve::config {

std::string join_choices(Choices choices) {
  std::string out;
  for (std::string_view c : choices) {
    if (!out.empty()) out += ", ";
    out += c;
  }
  return out;
}

void check_choice(std::string_view flag, std::string_view value, Choices choices) {
  const bool ok = std::find(choices.begin(), choices.end(), value) != choices.end();
  WS_CHECK_ARG(ok, "{} must be one of {} (got '{}')", flag, join_choices(choices), value);
}

}  // namespace wideserve::config
