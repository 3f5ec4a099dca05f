#include "api/request_fields.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "api/api_error.h"

namespace wideserve::api::detail {

void fail(std::string message, std::string param) {
  throw ApiException(invalid_request(std::move(message), std::move(param)));
}

const char* json_type_name(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "an integer";
    case Json::value_t::number_float:
      return "a number";
    default:
      return "an unsupported value";
  }
}

namespace {
[[noreturn]] void wrong_type(const Json& v, const std::string& name, const char* want) {
  fail(fmt::format("{} must be {}, got {}", name, want, json_type_name(v)), name);
}
}  // namespace

bool read_bool(const Json& v, const std::string& name) {
  if (!v.is_boolean()) wrong_type(v, name, "a boolean");
  return v.get<bool>();
}

std::string read_string(const Json& v, const std::string& name) {
  if (!v.is_string()) wrong_type(v, name, "a string");
  return v.get<std::string>();
}

double read_number(const Json& v, const std::string& name) {
  if (!v.is_number()) wrong_type(v, name, "a number");
  return v.get<double>();
}

int64_t read_int(const Json& v, const std::string& name) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(fmt::format("{} is out of range", name), name);
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    // 2^63 is exactly representable; anything at or above it does not fit.
    if (std::trunc(d) != d) fail(fmt::format("{} must be an integer, got {}", name, d), name);
    if (d < -9223372036854775808.0 || d >= 9223372036854775808.0)
      fail(fmt::format("{} is out of range", name), name);
    return static_cast<int64_t>(d);
  }
  wrong_type(v, name, "an integer");
}

int64_t read_int_in(const Json& v, const std::string& name, int64_t lo, int64_t hi) {
  int64_t x = read_int(v, name);
  if (x < lo || x > hi)
    fail(fmt::format("{} must be between {} and {}, got {}", name, lo, hi, x), name);
  return x;
}

float read_float_in(const Json& v, const std::string& name, double lo, double hi, bool lo_open) {
  double x = read_number(v, name);
  if (x < lo || x > hi || (lo_open && x == lo)) {
    fail(fmt::format("{} must be in {}{}, {}], got {}", name, lo_open ? "(" : "[", lo, hi, x),
         name);
  }
  return static_cast<float>(x);
}

const Json& require_object(const Json& v, const std::string& name) {
  if (!v.is_object()) wrong_type(v, name, "an object");
  return v;
}

const Json& require_array(const Json& v, const std::string& name) {
  if (!v.is_array()) wrong_type(v, name, "an array");
  return v;
}

}  // namespace wideserve::api::detail
