#include "tokenizer/jinja/interpreter.h"

#include <cmath>

#include "tokenizer/jinja/filters.h"
#include "tokenizer/jinja/utf8.h"

namespace wideserve::tokenizer::jinja {
namespace {

constexpr int kMaxEvalDepth = 400;

[[noreturn]] void fail_undefined(const Value& v, const std::string& fallback) {
  fail(v.str().empty() ? fallback : v.str());
}

// Rejects undefined operands the way Jinja's Undefined does for arithmetic.
void check_defined(const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a, "value is undefined");
  if (b.is_undefined()) fail_undefined(b, "value is undefined");
}

const char* op_symbol(Op op) {
  switch (op) {
    case Op::kAdd:
      return "+";
    case Op::kSub:
      return "-";
    case Op::kMul:
      return "*";
    case Op::kDiv:
      return "/";
    case Op::kFloorDiv:
      return "//";
    case Op::kMod:
      return "%";
    case Op::kPow:
      return "**";
    default:
      return "?";
  }
}

[[noreturn]] void bad_operands(Op op, const Value& a, const Value& b) {
  if (op == Op::kAdd && a.is_string())
    fail("can only concatenate str (not \"" + type_name(b) + "\") to str");
  fail(std::string("unsupported operand type(s) for ") + op_symbol(op) + ": '" + type_name(a) +
       "' and '" + type_name(b) + "'");
}

Value repeat(const Value& seq, int64_t times, size_t max_bytes) {
  if (times <= 0)
    return seq.is_string() ? Value(std::string())
                           : (seq.is_tuple() ? Value::tuple({}) : Value::list());
  if (seq.is_string()) {
    if (seq.str().size() * static_cast<uint64_t>(times) > max_bytes) fail("string too large");
    std::string out;
    out.reserve(seq.str().size() * times);
    for (int64_t i = 0; i < times; ++i) out += seq.str();
    return Value(std::move(out));
  }
  const auto& items = seq.items();
  if (items.size() * static_cast<uint64_t>(times) > max_bytes / 16) fail("list too large");
  std::vector<Value> out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), items.begin(), items.end());
  return seq.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

Value arith(Op op, const Value& a, const Value& b, size_t max_bytes) {
  check_defined(a, b);
  if (a.is_number() && b.is_number()) {
    bool fl = a.is_float() || b.is_float();
    if (!fl) {
      int64_t x = a.as_int(), y = b.as_int(), r = 0;
      switch (op) {
        case Op::kAdd:
          if (__builtin_add_overflow(x, y, &r)) fail("integer overflow");
          return Value(r);
        case Op::kSub:
          if (__builtin_sub_overflow(x, y, &r)) fail("integer overflow");
          return Value(r);
        case Op::kMul:
          if (__builtin_mul_overflow(x, y, &r)) fail("integer overflow");
          return Value(r);
        case Op::kDiv:
          if (y == 0) fail("division by zero");
          return Value(static_cast<double>(x) / static_cast<double>(y));
        case Op::kFloorDiv: {
          if (y == 0) fail("integer division or modulo by zero");
          if (x == INT64_MIN && y == -1) fail("integer overflow");
          int64_t q = x / y;
          if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
          return Value(q);
        }
        case Op::kMod: {
          if (y == 0) fail("integer division or modulo by zero");
          if (y == -1) return Value(int64_t{0});
          int64_t m = x % y;
          if (m != 0 && ((m < 0) != (y < 0))) m += y;
          return Value(m);
        }
        case Op::kPow: {
          if (y < 0) return Value(std::pow(static_cast<double>(x), static_cast<double>(y)));
          int64_t res = 1, base = x;
          while (y > 0) {
            if (y & 1)
              if (__builtin_mul_overflow(res, base, &res)) fail("integer overflow");
            y >>= 1;
            if (y > 0 && __builtin_mul_overflow(base, base, &base)) fail("integer overflow");
          }
          return Value(res);
        }
        default:
          break;
      }
    }
    double x = a.as_float(), y = b.as_float();
    switch (op) {
      case Op::kAdd:
        return Value(x + y);
      case Op::kSub:
        return Value(x - y);
      case Op::kMul:
        return Value(x * y);
      case Op::kDiv:
        if (y == 0) fail("float division by zero");
        return Value(x / y);
      case Op::kFloorDiv:
        if (y == 0) fail("float floor division by zero");
        return Value(std::floor(x / y));
      case Op::kMod: {
        if (y == 0) fail("float modulo");
        double m = std::fmod(x, y);
        if (m != 0 && ((m < 0) != (y < 0))) m += y;
        return Value(m);
      }
      case Op::kPow:
        return Value(std::pow(x, y));
      default:
        break;
    }
  }
  if (op == Op::kAdd) {
    if (a.is_string() && b.is_string()) {
      if (a.str().size() + b.str().size() > max_bytes) fail("string too large");
      return Value(a.str() + b.str());
    }
    if (a.is_sequence() && a.kind() == b.kind()) {
      std::vector<Value> out = a.items();
      out.insert(out.end(), b.items().begin(), b.items().end());
      return a.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
    }
  }
  if (op == Op::kMul) {
    if ((a.is_string() || a.is_sequence()) && (b.is_int() || b.is_bool()))
      return repeat(a, b.as_int(), max_bytes);
    if ((b.is_string() || b.is_sequence()) && (a.is_int() || a.is_bool()))
      return repeat(b, a.as_int(), max_bytes);
  }
  if (op == Op::kMod && a.is_string()) fail("unsupported: printf-style '%' string formatting");
  bad_operands(op, a, b);
}

bool compare_op(Op op, const Value& a, const Value& b) {
  switch (op) {
    case Op::kEq:
      return equals(a, b);
    case Op::kNe:
      return !equals(a, b);
    case Op::kIn:
      return contains(b, a);
    case Op::kNotIn:
      return !contains(b, a);
    default:
      break;
  }
  if (a.is_undefined() || b.is_undefined()) check_defined(a, b);
  int c = compare(a, b);
  switch (op) {
    case Op::kLt:
      return c < 0;
    case Op::kLe:
      return c <= 0;
    case Op::kGt:
      return c > 0;
    default:
      return c >= 0;
  }
}

}  // namespace

void Interpreter::charge(uint64_t n) {
  steps_ += n;
  if (steps_ > limits_.max_steps) fail("template exceeded its step budget (infinite loop?)");
}

void Interpreter::emit(std::string& out, std::string_view s) {
  if (out.size() + s.size() > limits_.max_output_bytes) fail("template output too large");
  out.append(s);
}

std::string Interpreter::render(const Body& body, std::unordered_map<std::string, Value> vars) {
  Frame root;
  add_globals(*this, root.vars);
  for (auto& [k, v] : vars) root.vars[k] = std::move(v);
  root_ = &root;
  std::string out;
  exec_body(body, root, out);
  root_ = nullptr;
  return out;
}

Value Interpreter::lookup(const std::string& name, Frame& f) {
  for (Frame* p = &f; p; p = p->parent) {
    auto it = p->vars.find(name);
    if (it != p->vars.end()) return it->second;
  }
  return Value::undefined("'" + name + "' is undefined");
}

Value Interpreter::getattr(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Kind::kUndefined:
      fail_undefined(obj, "value is undefined");
    case Kind::kDict: {
      Value m = get_method(*this, obj, name);
      if (!m.is_undefined()) return m;
      if (const Value* v = obj.dict_obj().find(std::string_view(name))) return *v;
      return Value::undefined("'dict object' has no attribute '" + name + "'");
    }
    case Kind::kNamespace:
      if (const Value* v = obj.dict_obj().find(std::string_view(name))) return *v;
      return Value::undefined("'Namespace' object has no attribute '" + name + "'");
    case Kind::kString:
    case Kind::kList:
    case Kind::kTuple: {
      Value m = get_method(*this, obj, name);
      if (!m.is_undefined()) return m;
      return Value::undefined("'" + type_name(obj) + " object' has no attribute '" + name + "'");
    }
    default:
      return Value::undefined("'" + type_name(obj) + " object' has no attribute '" + name + "'");
  }
}

Value Interpreter::getitem(const Value& obj, const Value& key) {
  switch (obj.kind()) {
    case Kind::kUndefined:
      fail_undefined(obj, "value is undefined");
    case Kind::kDict:
      if (const Value* v = obj.dict_obj().find(key)) return *v;
      if (key.is_string()) return getattr(obj, key.str());
      return Value::undefined("'dict object' has no attribute " + repr(key));
    case Kind::kNamespace:
      if (key.is_string()) return getattr(obj, key.str());
      break;
    case Kind::kString:
    case Kind::kList:
    case Kind::kTuple:
      if (key.is_int() || key.is_bool()) {
        int64_t i = key.as_int();
        if (obj.is_string()) {
          if (is_ascii(obj.str())) {
            int64_t n = static_cast<int64_t>(obj.str().size());
            if (i < 0) i += n;
            if (i < 0 || i >= n) return Value::undefined("string index out of range");
            return Value(std::string(1, obj.str()[i]));
          }
          std::u32string cps = utf8_decode(obj.str());
          int64_t n = static_cast<int64_t>(cps.size());
          if (i < 0) i += n;
          if (i < 0 || i >= n) return Value::undefined("string index out of range");
          return Value(utf8_encode(cps.substr(i, 1)));
        }
        const auto& items = obj.items();
        int64_t n = static_cast<int64_t>(items.size());
        if (i < 0) i += n;
        if (i < 0 || i >= n)
          return Value::undefined("'" + type_name(obj) + " object' has no element " + to_str(key));
        return items[i];
      }
      if (key.is_string()) return getattr(obj, key.str());
      break;
    default:
      break;
  }
  return Value::undefined("'" + type_name(obj) + " object' has no element " + repr(key));
}

Value Interpreter::call(const Value& fn, CallArgs& args) {
  charge();
  if (fn.is_callable()) return fn.fn().fn(args);
  if (fn.is_undefined()) fail_undefined(fn, "value is undefined");
  fail("'" + type_name(fn) + "' object is not callable");
}

Value Interpreter::eval(const Expr& e, Frame& f) {
  charge();
  if (++eval_depth_ > kMaxEvalDepth) {
    --eval_depth_;
    throw JinjaError("expression evaluation nested too deeply", e.pos);
  }
  try {
    Value v = eval_inner(e, f);
    --eval_depth_;
    return v;
  } catch (JinjaError& err) {
    --eval_depth_;
    if (err.pos() == JinjaError::kNoPos) err.set_pos(e.pos);
    throw;
  }
}

Value Interpreter::eval_inner(const Expr& e, Frame& f) {
  switch (e.kind) {
    case ExprKind::kConst:
      return e.value;
    case ExprKind::kName:
      return lookup(e.name, f);
    case ExprKind::kGetAttr:
      return getattr(eval(*e.args[0], f), e.name);
    case ExprKind::kGetItem: {
      Value obj = eval(*e.args[0], f);
      return getitem(obj, eval(*e.args[1], f));
    }
    case ExprKind::kSlice: {
      Value obj = eval(*e.args[0], f);
      Value parts[3];
      for (int i = 0; i < 3; ++i)
        if (e.args[i + 1]) parts[i] = eval(*e.args[i + 1], f);
      if (obj.is_undefined()) fail_undefined(obj, "value is undefined");
      return slice_value(obj, parts[0], parts[1], parts[2]);
    }
    case ExprKind::kCall: {
      Value fn = eval(*e.args[0], f);
      CallArgs ca;
      for (size_t i = 1; i < e.args.size(); ++i) ca.args.push_back(eval(*e.args[i], f));
      for (const auto& [k, v] : e.kwargs) ca.kwargs.emplace_back(k, eval(*v, f));
      return call(fn, ca);
    }
    case ExprKind::kFilter: {
      Value input = eval(*e.args[0], f);
      CallArgs ca;
      for (size_t i = 1; i < e.args.size(); ++i) ca.args.push_back(eval(*e.args[i], f));
      for (const auto& [k, v] : e.kwargs) ca.kwargs.emplace_back(k, eval(*v, f));
      return call_filter(*this, e.name, input, ca);
    }
    case ExprKind::kTest: {
      Value subject = eval(*e.args[0], f);
      CallArgs ca;
      for (size_t i = 1; i < e.args.size(); ++i) ca.args.push_back(eval(*e.args[i], f));
      for (const auto& [k, v] : e.kwargs) ca.kwargs.emplace_back(k, eval(*v, f));
      bool r = call_test(*this, e.name, subject, ca);
      return Value(e.negate ? !r : r);
    }
    case ExprKind::kBinary: {
      Value a = eval(*e.args[0], f);
      Value b = eval(*e.args[1], f);
      return arith(e.op, a, b, limits_.max_output_bytes);
    }
    case ExprKind::kUnary: {
      Value a = eval(*e.args[0], f);
      if (e.op == Op::kNot) return Value(!truthy(a));
      if (a.is_undefined()) fail_undefined(a, "value is undefined");
      if (a.is_float()) return Value(e.op == Op::kNeg ? -a.as_float() : a.as_float());
      if (a.is_int() || a.is_bool()) {
        if (e.op == Op::kPos) return Value(a.as_int());
        if (a.as_int() == INT64_MIN) fail("integer overflow");
        return Value(-a.as_int());
      }
      fail(std::string("bad operand type for unary ") + (e.op == Op::kNeg ? "-" : "+") + ": '" +
           type_name(a) + "'");
    }
    case ExprKind::kCompare: {
      Value left = eval(*e.args[0], f);
      for (size_t i = 0; i < e.ops.size(); ++i) {
        Value right = eval(*e.args[i + 1], f);
        if (!compare_op(e.ops[i], left, right)) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case ExprKind::kAnd: {
      Value l = eval(*e.args[0], f);
      if (!truthy(l)) return l;
      return eval(*e.args[1], f);
    }
    case ExprKind::kOr: {
      Value l = eval(*e.args[0], f);
      if (truthy(l)) return l;
      return eval(*e.args[1], f);
    }
    case ExprKind::kCond:
      if (truthy(eval(*e.args[1], f))) return eval(*e.args[0], f);
      if (e.args[2]) return eval(*e.args[2], f);
      return Value::undefined(
          "the inline if-expression evaluated to false and no else section was defined");
    case ExprKind::kList:
    case ExprKind::kTuple: {
      std::vector<Value> items;
      items.reserve(e.args.size());
      for (const auto& a : e.args) items.push_back(eval(*a, f));
      return e.kind == ExprKind::kList ? Value::list(std::move(items))
                                       : Value::tuple(std::move(items));
    }
    case ExprKind::kDict: {
      Value d = Value::dict();
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        Value k = eval(*e.args[i], f);
        if (k.is_list() || k.is_dict() || k.is_undefined())
          fail("unhashable type: '" + type_name(k) + "'");
        d.dict_obj().set(std::move(k), eval(*e.args[i + 1], f));
      }
      return d;
    }
    case ExprKind::kConcat: {
      std::string s;
      for (const auto& a : e.args) {
        s += to_str(eval(*a, f));
        if (s.size() > limits_.max_output_bytes) fail("string too large");
      }
      return Value(std::move(s));
    }
  }
  fail("internal: unknown expression");
}

Interpreter::Flow Interpreter::exec_body(const Body& body, Frame& f, std::string& out) {
  for (const auto& s : body) {
    Flow fl = exec(*s, f, out);
    if (fl != Flow::kNormal) return fl;
  }
  return Flow::kNormal;
}

void Interpreter::exec_set(const Stmt& s, Frame& f, Value v) {
  if (!s.attr.empty()) {
    Value ns = lookup(s.targets[0], f);
    if (!ns.is_namespace()) fail("cannot assign attribute on non-namespace object");
    ns.dict_obj().set(Value(s.attr), std::move(v));
    return;
  }
  if (s.targets.size() == 1) {
    f.vars[s.targets[0]] = std::move(v);
    return;
  }
  std::vector<Value> items = iterate(v);
  if (items.size() != s.targets.size())
    fail(items.size() > s.targets.size() ? "too many values to unpack"
                                         : "not enough values to unpack");
  for (size_t i = 0; i < items.size(); ++i) f.vars[s.targets[i]] = std::move(items[i]);
}

void Interpreter::exec_for(const Stmt& s, Frame& f, std::string& out) {
  Value iterable = eval(*s.expr, f);
  if (iterable.is_none() || iterable.is_number() || iterable.is_callable() ||
      iterable.is_namespace())
    fail("'" + type_name(iterable) + "' object is not iterable");
  std::vector<Value> items = iterate(iterable);
  auto bind = [&](Frame& fr, const Value& item) {
    if (s.targets.size() == 1) {
      fr.vars[s.targets[0]] = item;
      return;
    }
    std::vector<Value> parts = iterate(item);
    if (parts.size() != s.targets.size())
      fail(parts.size() > s.targets.size() ? "too many values to unpack"
                                           : "not enough values to unpack");
    for (size_t i = 0; i < parts.size(); ++i) fr.vars[s.targets[i]] = std::move(parts[i]);
  };
  if (s.cond) {
    std::vector<Value> kept;
    for (auto& item : items) {
      charge();
      Frame tmp;
      tmp.parent = &f;
      bind(tmp, item);
      if (truthy(eval(*s.cond, tmp))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  // As Jinja compiles it: the else block runs unless some iteration reached the end of its
  // body (so an empty loop, or one whose iterations all `continue`d or `break`ed, runs it).
  bool completed = false;
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    charge();
    Frame it;
    it.parent = &f;
    bind(it, items[i]);
    Value loop = Value::ns();
    auto& d = loop.dict_obj().entries;
    d.reserve(12);
    d.emplace_back(Value("index"), Value(i + 1));
    d.emplace_back(Value("index0"), Value(i));
    d.emplace_back(Value("revindex"), Value(n - i));
    d.emplace_back(Value("revindex0"), Value(n - i - 1));
    d.emplace_back(Value("first"), Value(i == 0));
    d.emplace_back(Value("last"), Value(i == n - 1));
    d.emplace_back(Value("length"), Value(n));
    d.emplace_back(Value("depth"), Value(int64_t{1}));
    d.emplace_back(Value("depth0"), Value(int64_t{0}));
    d.emplace_back(Value("previtem"),
                   i > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
    d.emplace_back(Value("nextitem"),
                   i + 1 < n ? items[i + 1] : Value::undefined("there is no next item"));
    d.emplace_back(Value("cycle"), Value::callable("cycle", [i](CallArgs& a) {
                     if (a.args.empty()) fail("no items for cycling given");
                     return a.args[static_cast<size_t>(i) % a.args.size()];
                   }));
    it.vars["loop"] = std::move(loop);
    Flow fl = exec_body(s.body, it, out);
    if (fl == Flow::kBreak) break;
    if (fl == Flow::kNormal) completed = true;
  }
  if (!completed) exec_body(s.else_body, f, out);
}

Value Interpreter::make_macro(const Stmt& s) {
  const Stmt* def = &s;
  return Value::callable(s.text, [this, def](CallArgs& a) -> Value {
    if (call_depth_ >= limits_.max_call_depth) fail("maximum macro call depth exceeded");
    if (a.args.size() > def->params.size())
      fail("macro '" + def->text + "' takes not more than " + std::to_string(def->params.size()) +
           " argument(s)");
    Frame mf;
    mf.parent = root_;
    std::vector<bool> given(def->params.size(), false);
    for (size_t i = 0; i < a.args.size(); ++i) {
      mf.vars[def->params[i].first] = a.args[i];
      given[i] = true;
    }
    for (auto& [k, v] : a.kwargs) {
      size_t idx = def->params.size();
      for (size_t i = 0; i < def->params.size(); ++i)
        if (def->params[i].first == k) idx = i;
      if (idx == def->params.size())
        fail("macro '" + def->text + "' has no argument named '" + k + "'");
      if (given[idx])
        fail("macro '" + def->text + "' got multiple values for argument '" + k + "'");
      mf.vars[k] = v;
      given[idx] = true;
    }
    ++call_depth_;
    try {
      for (size_t i = 0; i < def->params.size(); ++i) {
        if (given[i]) continue;
        const auto& [pname, pdef] = def->params[i];
        mf.vars[pname] =
            pdef ? eval(*pdef, mf) : Value::undefined("parameter '" + pname + "' was not provided");
      }
      std::string out;
      exec_body(def->body, mf, out);
      --call_depth_;
      return Value(std::move(out));
    } catch (...) {
      --call_depth_;
      throw;
    }
  });
}

Interpreter::Flow Interpreter::exec(const Stmt& s, Frame& f, std::string& out) {
  try {
    switch (s.kind) {
      case StmtKind::kText:
        emit(out, s.text);
        return Flow::kNormal;
      case StmtKind::kEmit: {
        Value v = eval(*s.expr, f);
        if (v.is_string())
          emit(out, v.str());
        else
          emit(out, to_str(v));
        return Flow::kNormal;
      }
      case StmtKind::kIf:
        for (const auto& [c, b] : s.branches)
          if (truthy(eval(*c, f))) return exec_body(b, f, out);
        return exec_body(s.else_body, f, out);
      case StmtKind::kFor:
        exec_for(s, f, out);
        return Flow::kNormal;
      case StmtKind::kSet:
        exec_set(s, f, eval(*s.expr, f));
        return Flow::kNormal;
      case StmtKind::kSetBlock: {
        std::string captured;
        Frame inner;  // assignments inside a block set stay local to it, as in Jinja
        inner.parent = &f;
        // break/continue inside the block leave it unassigned, as Jinja's generated code does.
        if (Flow fl = exec_body(s.body, inner, captured); fl != Flow::kNormal) return fl;
        f.vars[s.targets[0]] = Value(std::move(captured));
        return Flow::kNormal;
      }
      case StmtKind::kMacro:
        f.vars[s.text] = make_macro(s);
        return Flow::kNormal;
      case StmtKind::kBreak:
        return Flow::kBreak;
      case StmtKind::kContinue:
        return Flow::kContinue;
      case StmtKind::kBlock:
        return exec_body(s.body, f, out);
    }
  } catch (JinjaError& err) {
    if (err.pos() == JinjaError::kNoPos) err.set_pos(s.pos);
    throw;
  }
  return Flow::kNormal;
}

}  // namespace wideserve::tokenizer::jinja
