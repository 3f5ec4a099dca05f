// Python sequence protocol for template values: len(), iteration, `in`, slicing.
#include <algorithm>

#include "tokenizer/jinja/filters.h"
#include "tokenizer/jinja/utf8.h"

namespace wideserve::tokenizer::jinja {

int64_t length_of(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined:
      return 0;
    case Kind::kString:
      return static_cast<int64_t>(utf8_length(v.str()));
    case Kind::kList:
    case Kind::kTuple:
      return static_cast<int64_t>(v.items().size());
    case Kind::kDict:
      return static_cast<int64_t>(v.dict_obj().entries.size());
    default:
      fail("object of type '" + type_name(v) + "' has no len()");
  }
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined:
      return {};
    case Kind::kList:
    case Kind::kTuple:
      return v.items();
    case Kind::kDict: {
      std::vector<Value> keys;
      for (const auto& e : v.dict_obj().entries) keys.push_back(e.first);
      return keys;
    }
    case Kind::kString: {
      std::vector<Value> chars;
      std::string tmp;
      for (char32_t c : utf8_decode(v.str())) {
        tmp.clear();
        append_utf8(tmp, c);
        chars.emplace_back(tmp);
      }
      return chars;
    }
    default:
      fail("'" + type_name(v) + "' object is not iterable");
  }
}

bool contains(const Value& c, const Value& item) {
  switch (c.kind()) {
    case Kind::kUndefined:
      return false;
    case Kind::kString:
      if (!item.is_string())
        fail("'in <string>' requires string as left operand, not " + type_name(item));
      return c.str().find(item.str()) != std::string::npos;
    case Kind::kList:
    case Kind::kTuple:
      for (const auto& x : c.items())
        if (equals(x, item)) return true;
      return false;
    case Kind::kDict:
      if (item.is_list() || item.is_dict() || item.is_namespace())
        fail("unhashable type: '" + type_name(item) + "'");
      return c.dict_obj().find(item) != nullptr;
    default:
      fail("argument of type '" + type_name(c) + "' is not iterable");
  }
}

Value slice_value(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  auto idx = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!v.is_int() && !v.is_bool())
      fail(std::string("slice ") + what + " must be an integer or None");
    return v.as_int();
  };
  std::optional<int64_t> b = idx(start, "start"), e = idx(stop, "stop"), s = idx(step, "step");
  int64_t st = s.value_or(1);
  if (st == 0) fail("slice step cannot be zero");
  bool is_str = obj.is_string();
  // Jinja slices with Python's [] directly: dicts and scalars raise.
  if (obj.is_dict()) fail("unhashable type: 'slice'");
  if (!is_str && !obj.is_sequence() && !obj.is_undefined())
    fail("'" + type_name(obj) + "' object is not subscriptable");
  if (!is_str && !obj.is_sequence())
    return Value::undefined("'" + type_name(obj) + "' object is not subscriptable");
  std::u32string cps;
  int64_t n;
  if (is_str) {
    cps = utf8_decode(obj.str());
    n = static_cast<int64_t>(cps.size());
  } else {
    n = static_cast<int64_t>(obj.items().size());
  }
  auto norm = [&](std::optional<int64_t> v, int64_t def_pos, int64_t def_neg) -> int64_t {
    if (!v) return st > 0 ? def_pos : def_neg;
    int64_t x = *v;
    if (x < 0) x += n;
    if (st > 0) return std::clamp<int64_t>(x, 0, n);
    return std::clamp<int64_t>(x, -1, n - 1);
  };
  int64_t lo = norm(b, 0, n - 1), hi = norm(e, n, -1);
  std::vector<int64_t> picks;
  if (st > 0)
    for (int64_t i = lo; i < hi; i += st) picks.push_back(i);
  else
    for (int64_t i = lo; i > hi; i += st) picks.push_back(i);
  if (is_str) {
    std::u32string out;
    for (int64_t i : picks) out.push_back(cps[i]);
    return Value(utf8_encode(out));
  }
  std::vector<Value> out;
  for (int64_t i : picks) out.push_back(obj.items()[i]);
  return obj.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

}  // namespace wideserve::tokenizer::jinja
