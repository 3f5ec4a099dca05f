// Built-in filters, tests, globals and the str/dict/list methods templates call.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/value.h"

namespace wideserve::tokenizer::jinja {

// Applies filter `name` (validated at parse time) to `input`.
Value call_filter(Interpreter& in, const std::string& name, const Value& input, CallArgs& args);
// Evaluates test `name` on `v`.
bool call_test(Interpreter& in, const std::string& name, const Value& v, CallArgs& args);
// Bound method `name` of a str, dict or list value; undefined when there is none.
Value get_method(Interpreter& in, const Value& obj, const std::string& name);
// Globals HF exposes: range, namespace, dict, raise_exception, strftime_now.
void add_globals(Interpreter& in, std::unordered_map<std::string, Value>& vars);
// Python iteration: list items, dict keys, string characters; undefined is empty.
std::vector<Value> iterate(const Value& v);
// Python `item in container`.
bool contains(const Value& container, const Value& item);
// Python slicing of str / list / tuple (missing bounds as undefined or none).
Value slice_value(const Value& obj, const Value& start, const Value& stop, const Value& step);
// Python len(); fails for values without a length.
int64_t length_of(const Value& v);

}  // namespace wideserve::tokenizer::jinja
