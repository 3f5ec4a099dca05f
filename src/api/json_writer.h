// Compact JSON text written straight into a string: responses and stream chunks are built without
// an intermediate tree (thousands of streams each emit a chunk per token).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wideserve::api {

// Appends the JSON string literal of `s` (quotes included). Ill-formed UTF-8 becomes U+FFFD, so
// the output is always valid JSON even for a partial multi-byte token.
void append_json_string(std::string& out, std::string_view s);

// True when `s` is well-formed UTF-8 (RFC 3629: no overlongs, surrogates or values > U+10FFFF).
bool is_valid_utf8(std::string_view s);

// Appends a float as the shortest text that reads back to the same float, always with a '.' or
// exponent (so clients see a float, not an int). Non-finite values (-inf logprobs) become -9999.0,
// the floor vLLM reports.
void append_json_float(std::string& out, float v);

// Streaming writer with automatic commas; callers pair begin/end themselves.
class JsonWriter {
 public:
  explicit JsonWriter(size_t reserve = 256) { out_.reserve(reserve); }

  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }
  JsonWriter& key(std::string_view k);  // the next value belongs to this key

  JsonWriter& string(std::string_view s);
  JsonWriter& integer(int64_t v);
  JsonWriter& number(float v);
  JsonWriter& boolean(bool v);
  JsonWriter& null();
  JsonWriter& raw(std::string_view json);  // an already-serialized JSON value

  const std::string& str() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  JsonWriter& open(char c);
  JsonWriter& close(char c);
  void before_value();

  std::string out_;
  std::vector<bool> first_;  // per open container: no element written yet
  bool after_key_ = false;
};

}  // namespace wideserve::api
