#include "tokenizer/jinja/filters.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <set>

#include "tokenizer/jinja/parser.h"
#include "tokenizer/jinja/strings.h"
#include "tokenizer/jinja/utf8.h"

namespace wideserve::tokenizer::jinja {
namespace {

constexpr int64_t kMaxRange = 100000;  // as Jinja's sandbox

// Argument `idx` (positional) or `name` (keyword), else `def`.
Value arg(const CallArgs& a, size_t idx, const char* name, Value def = Value()) {
  for (const auto& [k, v] : a.kwargs)
    if (k == name) return v;
  if (idx < a.args.size()) return a.args[idx];
  return def;
}

std::optional<std::string> opt_str(const Value& v) {
  if (v.is_undefined() || v.is_none()) return std::nullopt;
  if (!v.is_string()) fail("expected a string argument, got '" + type_name(v) + "'");
  return v.str();
}

const std::string& need_str(const Value& v, const char* what) {
  if (!v.is_string()) fail(std::string(what) + " must be str, not " + type_name(v));
  return v.str();
}

int64_t need_int(const Value& v, const char* what) {
  if (!v.is_int() && !v.is_bool())
    fail(std::string(what) + " must be an integer, not " + type_name(v));
  return v.as_int();
}

// Jinja's make_attrgetter: dotted path, integer parts index sequences.
Value attr_path(Interpreter& in, const Value& item, const std::string& path) {
  Value cur = item;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool digits =
        !part.empty() && part.size() < 18 &&
        std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    cur = digits ? in.getitem(cur, Value(static_cast<int64_t>(std::stoll(part))))
                 : in.getitem(cur, Value(part));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return cur;
}

Value json_filter(const Value& x, const CallArgs& a) {
  JsonOptions o;
  o.ensure_ascii = truthy(arg(a, 0, "ensure_ascii", Value(false)));
  Value indent = arg(a, 1, "indent", Value::none());
  if (indent.is_int() || indent.is_bool())
    o.indent = std::string(std::max<int64_t>(0, indent.as_int()), ' ');
  else if (indent.is_string())
    o.indent = indent.str();
  else if (!indent.is_none() && !indent.is_undefined())
    fail("tojson: invalid indent");
  Value sep = arg(a, 2, "separators", Value::none());
  if (sep.is_sequence()) {
    if (sep.items().size() != 2) fail("tojson: separators must be a pair");
    o.separators = std::make_pair(need_str(sep.items()[0], "separator"),
                                  need_str(sep.items()[1], "separator"));
  }
  o.sort_keys = truthy(arg(a, 3, "sort_keys", Value(false)));
  return Value(to_json(x, o));
}

Value to_int(const Value& v, const Value& def, int64_t base) {
  if (base != 0 && (base < 2 || base > 36)) fail("int() base must be >= 2 and <= 36, or 0");
  if (v.is_int() || v.is_bool()) return Value(v.as_int());
  if (v.is_float()) {
    double d = v.as_float();
    if (!std::isfinite(d) || std::fabs(d) > 9.2e18) return def;
    return Value(static_cast<int64_t>(d));
  }
  if (v.is_string()) {
    std::string s = py_strip(v.str(), std::nullopt, true, true);
    std::string clean;
    for (char c : s)
      if (c != '_') clean.push_back(c);
    if (!clean.empty()) {
      errno = 0;
      char* end = nullptr;
      long long r = std::strtoll(clean.c_str(), &end, static_cast<int>(base));
      if (errno == 0 && end && *end == 0) return Value(static_cast<int64_t>(r));
      double d = std::strtod(clean.c_str(), &end);
      if (end && *end == 0 && std::isfinite(d) && std::fabs(d) < 9.2e18)
        return Value(static_cast<int64_t>(d));
    }
  }
  return def;
}

Value to_float(const Value& v, const Value& def) {
  if (v.is_number()) return Value(v.as_float());
  if (v.is_string()) {
    std::string s = py_strip(v.str(), std::nullopt, true, true);
    if (!s.empty()) {
      char* end = nullptr;
      double d = std::strtod(s.c_str(), &end);
      if (end && *end == 0) return Value(d);
    }
  }
  return def;
}

Value round_filter(const Value& v, const CallArgs& a) {
  int64_t prec = need_int(arg(a, 0, "precision", Value(int64_t{0})), "precision");
  std::string method = to_str(arg(a, 1, "method", Value("common")));
  if (!v.is_number()) fail("round: expected a number, got '" + type_name(v) + "'");
  if (!v.is_float() && method == "common" && prec >= 0)
    return Value(v.as_int());  // round(int) is int
  double x = v.as_float();
  if (method == "ceil" || method == "floor") {
    double m = std::pow(10.0, static_cast<double>(prec));
    return Value((method == "ceil" ? std::ceil(x * m) : std::floor(x * m)) / m);
  }
  if (method != "common") fail("round: method must be 'common', 'ceil' or 'floor'");
  if (prec == 0) return Value(std::nearbyint(x));
  if (prec < 0 || prec > 300 || !std::isfinite(x)) return Value(x);
  char buf[400];
  std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(prec), x);
  return Value(std::strtod(buf, nullptr));
}

std::string sort_key_str(const Value& v, bool case_sensitive) {
  return case_sensitive ? v.str() : py_lower_str(v.str());
}

int sort_compare(const Value& a, const Value& b, bool case_sensitive) {
  if (!case_sensitive && a.is_string() && b.is_string()) {
    return compare(Value(sort_key_str(a, false)), Value(sort_key_str(b, false)));
  }
  return compare(a, b);
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string indent_filter(const std::string& s0, const CallArgs& a) {
  Value w = arg(a, 0, "width", Value(int64_t{4}));
  std::string ind =
      w.is_string() ? w.str() : std::string(std::max<int64_t>(0, need_int(w, "width")), ' ');
  bool first = truthy(arg(a, 1, "first", Value(false)));
  bool blank = truthy(arg(a, 2, "blank", Value(false)));
  std::string s = s0 + "\n";
  std::vector<std::string> lines = py_splitlines(s, false);
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + ind : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : ind) + lines[i];
  }
  if (first) rv = ind + rv;
  return rv;
}

}  // namespace

bool is_known_filter(const std::string& n) {
  static const std::set<std::string> kFilters = {
      "abs",      "attr",   "capitalize", "center",     "count",    "d",       "default",
      "dictsort", "e",      "escape",     "first",      "float",    "indent",  "int",
      "items",    "join",   "last",       "length",     "list",     "lower",   "map",
      "max",      "min",    "reject",     "rejectattr", "replace",  "reverse", "round",
      "safe",     "select", "selectattr", "sort",       "string",   "sum",     "title",
      "tojson",   "trim",   "unique",     "upper",      "wordcount"};
  return kFilters.count(n) > 0;
}

static std::vector<Value> select_items(Interpreter& in, const Value& seq, CallArgs& a, bool by_attr,
                                       bool keep) {
  std::vector<Value> out;
  size_t first_test_arg = by_attr ? 1 : 0;
  std::string attr;
  if (by_attr) {
    if (a.args.empty()) fail("selectattr/rejectattr needs an attribute name");
    attr = to_str(a.args[0]);
  }
  std::string test;
  CallArgs targs;
  if (a.args.size() > first_test_arg) {
    test = need_str(a.args[first_test_arg], "test name");
    if (!is_known_test(test)) fail("unknown or unsupported test '" + test + "'");
    targs.args.assign(a.args.begin() + first_test_arg + 1, a.args.end());
  }
  if (!truthy(seq)) return out;  // Jinja: `if value:` before iterating
  for (const auto& item : iterate(seq)) {
    in.charge();
    Value v = by_attr ? attr_path(in, item, attr) : item;
    bool r = test.empty() ? truthy(v) : call_test(in, test, v, targs);
    if (r == keep) out.push_back(item);
  }
  return out;
}

Value call_filter(Interpreter& in, const std::string& n, const Value& v, CallArgs& a) {
  if (n == "tojson") return json_filter(v, a);
  if (n == "trim") return Value(py_strip(to_str(v), opt_str(arg(a, 0, "chars")), true, true));
  if (n == "length" || n == "count") return Value(length_of(v));
  if (n == "default" || n == "d") {
    Value def = arg(a, 0, "default_value", Value(std::string()));
    bool boolean = truthy(arg(a, 1, "boolean", Value(false)));
    if (v.is_undefined() || (boolean && !truthy(v))) return def;
    return v;
  }
  if (n == "string") return Value(to_str(v));
  if (n == "upper") return Value(py_upper_str(to_str(v)));
  if (n == "lower") return Value(py_lower_str(to_str(v)));
  if (n == "capitalize") return Value(py_capitalize(to_str(v)));
  if (n == "title") return Value(jinja_title(to_str(v)));
  if (n == "safe") return v;
  if (n == "e" || n == "escape") return Value(html_escape(to_str(v)));
  if (n == "replace") {
    Value cnt = arg(a, 2, "count", Value::none());
    return Value(py_replace(to_str(v), to_str(arg(a, 0, "old")), to_str(arg(a, 1, "new")),
                            cnt.is_none() ? -1 : need_int(cnt, "count")));
  }
  if (n == "items") {
    if (v.is_undefined()) return Value::list();
    if (!v.is_dict()) fail("Can only get item pairs from a mapping.");
    std::vector<Value> out;
    for (const auto& [k, val] : v.dict_obj().entries) out.push_back(Value::tuple({k, val}));
    return Value::list(std::move(out));
  }
  if (n == "list") return Value::list(iterate(v));
  if (n == "first") {
    if (v.is_undefined()) return Value::undefined("No first item, sequence was empty.");
    auto items = iterate(v);
    return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
  }
  if (n == "last") {
    auto items = iterate(v);
    return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
  }
  if (n == "join") {
    std::string sep = to_str(arg(a, 0, "d", Value(std::string())));
    Value attr = arg(a, 1, "attribute", Value::none());
    std::string out;
    bool first = true;
    for (const auto& item : iterate(v)) {
      in.charge();
      if (!first) out += sep;
      first = false;
      out += to_str(attr.is_none() ? item : attr_path(in, item, to_str(attr)));
      if (out.size() > in.limits().max_output_bytes) fail("string too large");
    }
    return Value(std::move(out));
  }
  if (n == "map") {
    std::vector<Value> out;
    if (!truthy(v)) return Value::list();  // Jinja: `if value:` before iterating
    Value attribute = arg(a, 99, "attribute");
    if (!attribute.is_undefined()) {
      Value def = arg(a, 99, "default");
      for (const auto& item : iterate(v)) {
        Value r = attr_path(in, item, to_str(attribute));
        out.push_back(r.is_undefined() && !def.is_undefined() ? def : r);
      }
      return Value::list(std::move(out));
    }
    if (a.args.empty()) fail("map requires a filter name or attribute=");
    std::string fname = need_str(a.args[0], "filter name");
    if (!is_known_filter(fname) || fname == "map")
      fail("unknown or unsupported filter '" + fname + "'");
    CallArgs fa;
    fa.args.assign(a.args.begin() + 1, a.args.end());
    fa.kwargs = a.kwargs;
    for (const auto& item : iterate(v)) {
      in.charge();
      out.push_back(call_filter(in, fname, item, fa));
    }
    return Value::list(std::move(out));
  }
  if (n == "select" || n == "reject")
    return Value::list(select_items(in, v, a, false, n == "select"));
  if (n == "selectattr" || n == "rejectattr")
    return Value::list(select_items(in, v, a, true, n == "selectattr"));
  if (n == "int")
    return to_int(v, arg(a, 0, "default", Value(int64_t{0})),
                  need_int(arg(a, 1, "base", Value(int64_t{10})), "base"));
  if (n == "float") return to_float(v, arg(a, 0, "default", Value(0.0)));
  if (n == "round") return round_filter(v, a);
  if (n == "abs") {
    if (v.is_float()) return Value(std::fabs(v.as_float()));
    if (v.is_int() || v.is_bool()) return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
    fail("bad operand type for abs(): '" + type_name(v) + "'");
  }
  if (n == "reverse") {
    if (v.is_string()) {
      std::u32string cps = utf8_decode(v.str());
      std::reverse(cps.begin(), cps.end());
      return Value(utf8_encode(cps));
    }
    auto items = iterate(v);
    std::reverse(items.begin(), items.end());
    return Value::list(std::move(items));
  }
  if (n == "sort" || n == "unique" || n == "min" || n == "max") {
    size_t off = n == "sort" ? 1 : 0;
    bool rev = n == "sort" && truthy(arg(a, 0, "reverse", Value(false)));
    bool cs = truthy(arg(a, off, "case_sensitive", Value(false)));
    Value attr = arg(a, off + 1, "attribute", Value::none());
    auto items = iterate(v);
    auto key = [&](const Value& x) { return attr.is_none() ? x : attr_path(in, x, to_str(attr)); };
    if (n == "unique") {
      std::vector<Value> out, seen;
      for (const auto& x : items) {
        Value k = key(x);
        if (k.is_list() || k.is_dict() || k.is_namespace())
          fail("unhashable type: '" + type_name(k) + "'");
        if (!cs && k.is_string()) k = Value(py_lower_str(k.str()));
        bool dup = false;
        for (const auto& s : seen) dup = dup || equals(s, k);
        if (!dup) {
          seen.push_back(k);
          out.push_back(x);
        }
      }
      return Value::list(std::move(out));
    }
    if (n == "min" || n == "max") {
      if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
      size_t best = 0;
      for (size_t i = 1; i < items.size(); ++i) {
        int c = sort_compare(key(items[i]), key(items[best]), cs);
        if ((n == "min" && c < 0) || (n == "max" && c > 0)) best = i;
      }
      return items[best];
    }
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      int c = sort_compare(key(x), key(y), cs);
      return rev ? c > 0 : c < 0;
    });
    return Value::list(std::move(items));
  }
  if (n == "dictsort") {
    if (!v.is_dict()) fail("dictsort: expected a mapping");
    bool cs = truthy(arg(a, 0, "case_sensitive", Value(false)));
    std::string by = to_str(arg(a, 1, "by", Value("key")));
    bool rev = truthy(arg(a, 2, "reverse", Value(false)));
    std::vector<Value> items;
    for (const auto& [k, val] : v.dict_obj().entries) items.push_back(Value::tuple({k, val}));
    size_t pos = by == "value" ? 1 : 0;
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      int c = sort_compare(x.items()[pos], y.items()[pos], cs);
      return rev ? c > 0 : c < 0;
    });
    return Value::list(std::move(items));
  }
  if (n == "sum") {
    Value attr = arg(a, 0, "attribute", Value::none());
    Value total = arg(a, 1, "start", Value(int64_t{0}));
    for (const auto& x : iterate(v)) {
      Value item = attr.is_none() ? x : attr_path(in, x, to_str(attr));
      if (!item.is_number() || !total.is_number()) fail("sum: unsupported operand types");
      if (item.is_float() || total.is_float())
        total = Value(total.as_float() + item.as_float());
      else
        total = Value(total.as_int() + item.as_int());
    }
    return total;
  }
  if (n == "indent") {
    if (!v.is_string())
      fail("unsupported operand type(s) for +=: '" + type_name(v) + "' and 'str'");
    return Value(indent_filter(v.str(), a));
  }
  if (n == "wordcount") {
    int64_t count = 0;
    bool in_word = false;
    for (char32_t c : utf8_decode(to_str(v))) {
      bool w = py_isalpha(c) || py_isdigit(c) || c == '_';
      if (w && !in_word) ++count;
      in_word = w;
    }
    return Value(count);
  }
  if (n == "attr") return in.getattr(v, to_str(arg(a, 0, "name")));
  if (n == "center") {
    int64_t width = need_int(arg(a, 0, "width", Value(int64_t{80})), "width");
    if (width > (int64_t{1} << 24)) fail("center: width too large");
    std::string s = to_str(v);
    int64_t len = static_cast<int64_t>(utf8_length(s));
    if (width <= len) return Value(s);
    int64_t total = width - len, left = total / 2 + (total & width & 1);
    return Value(std::string(left, ' ') + s + std::string(total - left, ' '));
  }
  fail("unsupported filter '" + n + "'");
}

void add_globals(Interpreter& in, std::unordered_map<std::string, Value>& vars) {
  vars["range"] = Value::callable("range", [&in](CallArgs& a) {
    if (!a.kwargs.empty() || a.args.empty() || a.args.size() > 3)
      fail("range expects 1 to 3 integer arguments");
    int64_t start = 0, stop, step = 1;
    if (a.args.size() == 1) {
      stop = need_int(a.args[0], "range argument");
    } else {
      start = need_int(a.args[0], "range argument");
      stop = need_int(a.args[1], "range argument");
      if (a.args.size() == 3) step = need_int(a.args[2], "range argument");
    }
    if (step == 0) fail("range() arg 3 must not be zero");
    int64_t count = step > 0 ? (stop > start ? (stop - start + step - 1) / step : 0)
                             : (start > stop ? (start - stop - step - 1) / -step : 0);
    if (count > kMaxRange) fail("range too big, the sandbox blocks ranges larger than 100000");
    in.charge(static_cast<uint64_t>(count));
    std::vector<Value> out;
    out.reserve(count);
    for (int64_t i = 0; i < count; ++i) out.emplace_back(start + i * step);
    return Value::list(std::move(out));
  });
  auto dict_like = [](CallArgs& a, Value d) {
    if (a.args.size() > 1) fail("expected at most 1 positional argument");
    if (!a.args.empty()) {
      const Value& src = a.args[0];
      if (src.is_dict() || src.is_namespace()) {
        for (const auto& [k, v] : src.dict_obj().entries) d.dict_obj().set(k, v);
      } else {
        for (const auto& pair : iterate(src)) {
          auto kv = iterate(pair);
          if (kv.size() != 2) fail("dictionary update sequence element has wrong length");
          d.dict_obj().set(kv[0], kv[1]);
        }
      }
    }
    for (auto& [k, v] : a.kwargs) d.dict_obj().set(Value(k), v);
    return d;
  };
  vars["namespace"] =
      Value::callable("namespace", [dict_like](CallArgs& a) { return dict_like(a, Value::ns()); });
  vars["dict"] =
      Value::callable("dict", [dict_like](CallArgs& a) { return dict_like(a, Value::dict()); });
  vars["raise_exception"] = Value::callable("raise_exception", [](CallArgs& a) -> Value {
    throw JinjaError(a.args.empty() ? std::string() : to_str(a.args[0]), JinjaError::kNoPos, true);
  });
  vars["strftime_now"] = Value::callable("strftime_now", [](CallArgs& a) {
    std::string fmt = a.args.empty() ? std::string() : to_str(a.args[0]);
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[512];
    size_t len = fmt.empty() ? 0 : std::strftime(buf, sizeof(buf), fmt.c_str(), &tm);
    return Value(std::string(buf, len));
  });
}

}  // namespace wideserve::tokenizer::jinja
