// Jinja tests (`x is defined`, `n is divisibleby 3`...).
#include <cmath>
#include <set>

#include "tokenizer/jinja/filters.h"
#include "tokenizer/jinja/parser.h"
#include "tokenizer/jinja/strings.h"

namespace wideserve::tokenizer::jinja {

bool is_known_test(const std::string& n) {
  static const std::set<std::string> kTests = {
      "boolean", "callable", "defined",     "divisibleby", "eq",        "equalto",
      "==",      "even",     "false",       "float",       "ge",        ">=",
      "gt",      ">",        "greaterthan", "in",          "integer",   "iterable",
      "le",      "<=",       "lower",       "lt",          "<",         "lessthan",
      "mapping", "ne",       "!=",          "none",        "number",    "odd",
      "sameas",  "sequence", "string",      "true",        "undefined", "upper"};
  return kTests.count(n) > 0;
}

bool call_test(Interpreter& in, const std::string& n, const Value& v, CallArgs& a) {
  auto other = [&]() {
    if (a.args.empty()) fail("test '" + n + "' needs an argument");
    return a.args[0];
  };
  if (n == "defined") return !v.is_undefined();
  if (n == "undefined") return v.is_undefined();
  if (n == "none") return v.is_none();
  if (n == "string") return v.is_string();
  if (n == "mapping") return v.is_dict();
  if (n == "iterable") return v.is_undefined() || v.is_string() || v.is_sequence() || v.is_dict();
  if (n == "sequence") return v.is_string() || v.is_sequence() || v.is_dict();
  if (n == "number") return v.is_number();
  if (n == "integer") return v.is_int();
  if (n == "float") return v.is_float();
  if (n == "boolean") return v.is_bool();
  if (n == "true") return v.is_bool() && v.as_bool();
  if (n == "false") return v.is_bool() && !v.as_bool();
  if (n == "callable") return v.is_callable();
  if (n == "lower") return v.is_string() && py_lower_str(v.str()) == v.str();
  if (n == "upper") return v.is_string() && py_upper_str(v.str()) == v.str();
  if (n == "odd" || n == "even") {
    // Jinja: value % 2 == 1 / == 0 with Python's modulo.
    if (v.is_float()) {
      double m = std::fmod(v.as_float(), 2.0);
      if (m < 0) m += 2.0;
      return n == "odd" ? m == 1.0 : m == 0.0;
    }
    if (!v.is_int() && !v.is_bool()) fail("test '" + n + "' needs a number");
    int64_t m = v.as_int() % 2;
    return n == "odd" ? m != 0 : m == 0;
  }
  if (n == "divisibleby") {
    Value d = other();
    if (!v.is_number() || !d.is_number()) fail("divisibleby needs numbers");
    if (d.as_float() == 0) fail("integer division or modulo by zero");
    if (v.is_float() || d.is_float()) return std::fmod(v.as_float(), d.as_float()) == 0;
    return v.as_int() % d.as_int() == 0;
  }
  if (n == "eq" || n == "equalto" || n == "==") return equals(v, other());
  if (n == "ne" || n == "!=") return !equals(v, other());
  if (n == "lt" || n == "<" || n == "lessthan") return compare(v, other()) < 0;
  if (n == "le" || n == "<=") return compare(v, other()) <= 0;
  if (n == "gt" || n == ">" || n == "greaterthan") return compare(v, other()) > 0;
  if (n == "ge" || n == ">=") return compare(v, other()) >= 0;
  if (n == "in") return contains(other(), v);
  if (n == "sameas") {
    Value o = other();
    if (v.kind() != o.kind()) return false;
    if (v.is_list() || v.is_dict() || v.is_namespace() || v.is_tuple())
      return equals(v, o) && &v.dict_obj() == &o.dict_obj();
    return equals(v, o);
  }
  fail("unsupported test '" + n + "'");
}

}  // namespace wideserve::tokenizer::jinja
