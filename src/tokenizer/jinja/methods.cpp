// Python methods of str, dict and list values that chat templates call (e.g. content.strip()).
#include <algorithm>
#include <set>

#include "tokenizer/jinja/filters.h"
#include "tokenizer/jinja/strings.h"
#include "tokenizer/jinja/utf8.h"

namespace wideserve::tokenizer::jinja {
namespace {

Value arg_at(const CallArgs& a, size_t idx, const char* name, Value def = Value()) {
  for (const auto& [k, v] : a.kwargs)
    if (k == name) return v;
  return idx < a.args.size() ? a.args[idx] : def;
}

std::optional<std::string> opt_str_arg(const Value& v) {
  if (v.is_undefined() || v.is_none()) return std::nullopt;
  if (!v.is_string()) fail("expected str argument, got " + type_name(v));
  return v.str();
}

std::string str_arg(const Value& v) {
  if (!v.is_string()) fail("expected str argument, got " + type_name(v));
  return v.str();
}

int64_t int_arg(const Value& v, int64_t def) {
  if (v.is_undefined() || v.is_none()) return def;
  if (!v.is_int() && !v.is_bool()) fail("expected int argument, got " + type_name(v));
  return v.as_int();
}

Value str_list(std::vector<std::string> parts) {
  std::vector<Value> out;
  out.reserve(parts.size());
  for (auto& p : parts) out.emplace_back(std::move(p));
  return Value::list(std::move(out));
}

bool all_cps(const std::string& s, bool (*pred)(char32_t)) {
  if (s.empty()) return false;
  for (char32_t c : utf8_decode(s))
    if (!pred(c)) return false;
  return true;
}

// Python startswith/endswith with a str or a tuple of str.
bool affix(const std::string& s, const Value& what, bool start) {
  auto one = [&](const std::string& p) {
    if (p.size() > s.size()) return false;
    return start ? s.compare(0, p.size(), p) == 0
                 : s.compare(s.size() - p.size(), p.size(), p) == 0;
  };
  if (what.is_sequence()) {
    for (const auto& p : what.items())
      if (one(str_arg(p))) return true;
    return false;
  }
  return one(str_arg(what));
}

std::string pad(const std::string& s, int64_t width, const std::string& fill, int where) {
  if (width > (int64_t{1} << 24)) fail("width too large");
  int64_t len = static_cast<int64_t>(utf8_length(s));
  if (width <= len) return s;
  int64_t total = width - len;
  int64_t left = where < 0 ? 0 : where > 0 ? total : total / 2 + (total & width & 1);
  std::string l, r;
  for (int64_t i = 0; i < left; ++i) l += fill;
  for (int64_t i = 0; i < total - left; ++i) r += fill;
  return l + s + r;
}

Value str_method(Interpreter& in, const std::string& s, const std::string& m, CallArgs& a) {
  if (m == "strip" || m == "lstrip" || m == "rstrip")
    return Value(py_strip(s, opt_str_arg(arg_at(a, 0, "chars")), m != "rstrip", m != "lstrip"));
  if (m == "split" || m == "rsplit")
    return str_list(py_split(s, opt_str_arg(arg_at(a, 0, "sep")),
                             int_arg(arg_at(a, 1, "maxsplit"), -1), m == "rsplit"));
  if (m == "splitlines")
    return str_list(py_splitlines(s, truthy(arg_at(a, 0, "keepends", Value(false)))));
  if (m == "startswith" || m == "endswith") {
    if (a.args.size() > 1) fail("unsupported: start/end arguments of str." + m + "()");
    return Value(affix(s, arg_at(a, 0, "prefix"), m == "startswith"));
  }
  if (m == "upper") return Value(py_upper_str(s));
  if (m == "lower" || m == "casefold") return Value(py_lower_str(s));
  if (m == "title") return Value(py_title(s));
  if (m == "capitalize") return Value(py_capitalize(s));
  if (m == "replace")
    return Value(py_replace(s, str_arg(arg_at(a, 0, "old")), str_arg(arg_at(a, 1, "new")),
                            int_arg(arg_at(a, 2, "count"), -1)));
  if (m == "find" || m == "rfind" || m == "index" || m == "rindex" || m == "count") {
    const std::string sub = str_arg(arg_at(a, 0, "sub"));
    if (a.args.size() > 1) fail("unsupported: start/end arguments of str." + m + "()");
    if (m == "count") {
      if (sub.empty()) return Value(static_cast<int64_t>(utf8_length(s) + 1));
      int64_t c = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++c;
      return Value(c);
    }
    size_t p = (m == "find" || m == "index") ? s.find(sub) : s.rfind(sub);
    if (p == std::string::npos) {
      if (m == "index" || m == "rindex") fail("substring not found");
      return Value(int64_t{-1});
    }
    return Value(cp_index(s, p));
  }
  if (m == "join") {
    std::string out;
    bool first = true;
    for (const auto& item : iterate(arg_at(a, 0, "iterable"))) {
      in.charge();
      if (!item.is_string())
        fail("sequence item: expected str instance, " + type_name(item) + " found");
      if (!first) out += s;
      first = false;
      out += item.str();
      if (out.size() > in.limits().max_output_bytes) fail("string too large");
    }
    return Value(std::move(out));
  }
  if (m == "isdigit" || m == "isnumeric" || m == "isdecimal") return Value(all_cps(s, py_isdigit));
  if (m == "isalpha") return Value(all_cps(s, py_isalpha));
  if (m == "isalnum")
    return Value(all_cps(s, [](char32_t c) { return py_isalpha(c) || py_isdigit(c); }));
  if (m == "isspace") return Value(all_cps(s, py_isspace));
  if (m == "islower" || m == "isupper") {
    bool cased = false;
    for (char32_t c : utf8_decode(s)) {
      bool up = py_lower(c) != c, low = py_upper(c) != c;
      if ((m == "islower" && up) || (m == "isupper" && low)) return Value(false);
      cased = cased || up || low;
    }
    return Value(cased);
  }
  if (m == "removeprefix" || m == "removesuffix") {
    const std::string x = str_arg(arg_at(a, 0, "affix"));
    if (m == "removeprefix") return Value(affix(s, Value(x), true) ? s.substr(x.size()) : s);
    return Value(affix(s, Value(x), false) ? s.substr(0, s.size() - x.size()) : s);
  }
  if (m == "zfill") {
    int64_t w = int_arg(arg_at(a, 0, "width"), 0);
    if (w > (int64_t{1} << 24)) fail("zfill: width too large");
    int64_t len = static_cast<int64_t>(utf8_length(s));
    if (w <= len) return Value(s);
    size_t sign = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    return Value(s.substr(0, sign) + std::string(w - len, '0') + s.substr(sign));
  }
  if (m == "ljust" || m == "rjust" || m == "center") {
    std::string fill = arg_at(a, 1, "fillchar", Value(" ")).is_string()
                           ? arg_at(a, 1, "fillchar", Value(" ")).str()
                           : " ";
    return Value(pad(s, int_arg(arg_at(a, 0, "width"), 0), fill,
                     m == "ljust"   ? -1
                     : m == "rjust" ? 1
                                    : 0));
  }
  if (m == "partition" || m == "rpartition") {
    const std::string sep = str_arg(arg_at(a, 0, "sep"));
    if (sep.empty()) fail("empty separator");
    size_t p = m == "partition" ? s.find(sep) : s.rfind(sep);
    if (p == std::string::npos)
      return m == "partition" ? Value::tuple({Value(s), Value(""), Value("")})
                              : Value::tuple({Value(""), Value(""), Value(s)});
    return Value::tuple({Value(s.substr(0, p)), Value(sep), Value(s.substr(p + sep.size()))});
  }
  fail("unsupported method str." + m + "()");
}

Value dict_method(const Value& d, const std::string& m, CallArgs& a) {
  const auto& entries = d.dict_obj().entries;
  if (m == "get") {
    Value key = arg_at(a, 0, "key");
    if (const Value* v = d.dict_obj().find(key)) return *v;
    return arg_at(a, 1, "default", Value::none());
  }
  std::vector<Value> out;
  for (const auto& [k, v] : entries) {
    if (m == "keys")
      out.push_back(k);
    else if (m == "values")
      out.push_back(v);
    else if (m == "items")
      out.push_back(Value::tuple({k, v}));
  }
  if (m == "keys" || m == "values" || m == "items") return Value::list(std::move(out));
  if (m == "copy") {
    Value c = Value::dict();
    c.dict_obj().entries = entries;
    return c;
  }
  fail("unsupported method dict." + m + "() (template data is immutable)");
}

Value list_method(const Value& l, const std::string& m, CallArgs& a) {
  const auto& items = l.items();
  if (m == "index" || m == "count") {
    Value x = arg_at(a, 0, "value");
    int64_t c = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!equals(items[i], x)) continue;
      if (m == "index") return Value(static_cast<int64_t>(i));
      ++c;
    }
    if (m == "index") fail(repr(x) + " is not in list");
    return Value(c);
  }
  fail("unsupported method " + type_name(l) + "." + m + "() (template data is immutable)");
}

const std::set<std::string>& str_methods() {
  static const std::set<std::string> k = {
      "strip",        "lstrip",      "rstrip",    "split",      "rsplit",       "splitlines",
      "startswith",   "endswith",    "upper",     "lower",      "casefold",     "title",
      "capitalize",   "replace",     "find",      "rfind",      "index",        "rindex",
      "count",        "join",        "isdigit",   "isnumeric",  "isdecimal",    "isalpha",
      "isalnum",      "isspace",     "islower",   "isupper",    "removeprefix", "removesuffix",
      "zfill",        "ljust",       "rjust",     "center",     "partition",    "rpartition",
      "format",       "encode",      "swapcase",  "expandtabs", "format_map",   "istitle",
      "isidentifier", "isprintable", "translate", "maketrans"};
  return k;
}
const std::set<std::string>& dict_methods() {
  static const std::set<std::string> k = {"get",        "keys",  "values",  "items",
                                          "copy",       "pop",   "popitem", "update",
                                          "setdefault", "clear", "fromkeys"};
  return k;
}
const std::set<std::string>& list_methods() {
  static const std::set<std::string> k = {"index",  "count",   "append", "extend", "insert", "pop",
                                          "remove", "reverse", "sort",   "clear",  "copy"};
  return k;
}

}  // namespace

Value get_method(Interpreter& in, const Value& obj, const std::string& name) {
  if (obj.is_string() && str_methods().count(name)) {
    std::string s = obj.str();
    return Value::callable("str." + name, [&in, s = std::move(s), name](CallArgs& a) {
      return str_method(in, s, name, a);
    });
  }
  if (obj.is_dict() && dict_methods().count(name))
    return Value::callable("dict." + name,
                           [obj, name](CallArgs& a) { return dict_method(obj, name, a); });
  if (obj.is_sequence() && list_methods().count(name))
    return Value::callable(type_name(obj) + "." + name,
                           [obj, name](CallArgs& a) { return list_method(obj, name, a); });
  return Value();
}

}  // namespace wideserve::tokenizer::jinja
