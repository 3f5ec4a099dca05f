// Typed readers for request fields: each names the field in its ApiException so the client
// learns exactly what to fix. Internal to src/api.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace wideserve::api::detail {

using Json = nlohmann::ordered_json;

// Throws ApiException(400, invalid_request_error) with `param`.
[[noreturn]] void fail(std::string message, std::string param);

// "a string", "an array", ... for messages.
const char* json_type_name(const Json& v);

bool read_bool(const Json& v, const std::string& name);
std::string read_string(const Json& v, const std::string& name);
double read_number(const Json& v, const std::string& name);
// Integers; a float with no fractional part is accepted (as pydantic does).
int64_t read_int(const Json& v, const std::string& name);
// Integer in [lo, hi], the message names the range.
int64_t read_int_in(const Json& v, const std::string& name, int64_t lo, int64_t hi);
// Number in [lo, hi]; lo_open excludes lo.
float read_float_in(const Json& v, const std::string& name, double lo, double hi,
                    bool lo_open = false);
const Json& require_object(const Json& v, const std::string& name);
const Json& require_array(const Json& v, const std::string& name);

}  // namespace wideserve::api::detail
