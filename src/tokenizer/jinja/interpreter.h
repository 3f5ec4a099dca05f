// Renders a parsed template against a context, with Jinja2 scoping and bounded resources.
#pragma once

#include <string>
#include <unordered_map>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/value.h"

namespace wideserve::tokenizer::jinja {

// Resource bounds of one render: untrusted templates must not hang or exhaust memory.
struct RenderLimits {
  size_t max_output_bytes = size_t{256} << 20;
  uint64_t max_steps = 100'000'000;  // loop iterations + calls + expression evaluations
  int max_call_depth = 64;           // nested macro calls
};

// One render: holds the variable scopes and the output. Not shared between threads.
class Interpreter {
 public:
  explicit Interpreter(const RenderLimits& limits) : limits_(limits) {}

  // Renders `body` with the given top-level variables; throws JinjaError with a position.
  std::string render(const Body& body, std::unordered_map<std::string, Value> vars);

  // Jinja's attribute and subscript lookup (dict methods first for a.b, keys first for a[b]).
  Value getattr(const Value& obj, const std::string& name);
  Value getitem(const Value& obj, const Value& key);
  // Calls a callable value.
  Value call(const Value& fn, CallArgs& args);
  // Counts work against max_steps.
  void charge(uint64_t n = 1);
  const RenderLimits& limits() const { return limits_; }

 private:
  struct Frame {
    std::unordered_map<std::string, Value> vars;
    Frame* parent = nullptr;
  };
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec_body(const Body& body, Frame& f, std::string& out);
  Flow exec(const Stmt& s, Frame& f, std::string& out);
  void exec_for(const Stmt& s, Frame& f, std::string& out);
  void exec_set(const Stmt& s, Frame& f, Value v);
  Value eval(const Expr& e, Frame& f);
  Value eval_inner(const Expr& e, Frame& f);
  Value lookup(const std::string& name, Frame& f);
  Value make_macro(const Stmt& s);
  void emit(std::string& out, std::string_view s);

  RenderLimits limits_;
  Frame* root_ = nullptr;
  uint64_t steps_ = 0;
  int call_depth_ = 0;
  int eval_depth_ = 0;
};

}  // namespace wideserve::tokenizer::jinja
