#include "tokenizer/jinja/parser.h"

#include <charconv>
#include <cstdlib>
#include <set>

namespace wideserve::tokenizer::jinja {
namespace {

constexpr int kMaxDepth = 96;  // nesting bound: keeps recursion far from the stack limit

ExprPtr make(ExprKind kind, size_t pos) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->pos = pos;
  return e;
}

class Parser {
 public:
  explicit Parser(const std::vector<Token>& toks) : toks_(toks) {}

  Body parse_all() {
    Body body = parse_body({});
    if (cur().type != TokenType::kEof) error("unexpected tag");
    return body;
  }

 private:
  struct DepthGuard {
    explicit DepthGuard(Parser& p) : p_(p) {
      if (++p_.depth_ > kMaxDepth) p_.error("template nested too deeply");
    }
    ~DepthGuard() { --p_.depth_; }
    Parser& p_;
  };

  const Token& cur() const { return toks_[i_]; }
  const Token& peek(size_t k = 1) const { return toks_[std::min(i_ + k, toks_.size() - 1)]; }
  void advance() {
    if (i_ + 1 < toks_.size()) ++i_;
  }
  [[noreturn]] void error(const std::string& msg) const { throw JinjaError(msg, cur().pos); }
  [[noreturn]] void error_at(const std::string& msg, size_t pos) const {
    throw JinjaError(msg, pos);
  }

  bool is_op(const char* op) const { return cur().type == TokenType::kOp && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == TokenType::kName && cur().text == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    advance();
    return true;
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) error(std::string("expected '") + op + "', got " + describe(cur()));
  }
  std::string expect_name() {
    if (cur().type != TokenType::kName) error("expected a name, got " + describe(cur()));
    std::string n = cur().text;
    advance();
    return n;
  }
  void expect_block_end() {
    if (cur().type != TokenType::kBlockEnd)
      error("expected end of statement '%}', got " + describe(cur()));
    advance();
  }
  static std::string describe(const Token& t) {
    switch (t.type) {
      case TokenType::kEof:
        return "end of template";
      case TokenType::kBlockEnd:
        return "'%}'";
      case TokenType::kVarEnd:
        return "'}}'";
      case TokenType::kString:
        return "string literal";
      case TokenType::kText:
        return "template data";
      default:
        return "'" + t.text + "'";
    }
  }

  // Parses statements until a block whose keyword is in `ends` (left unconsumed) or EOF.
  Body parse_body(const std::set<std::string>& ends) {
    DepthGuard g(*this);
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == TokenType::kEof) {
        if (!ends.empty()) {
          std::string want;
          for (const auto& e : ends) want += (want.empty() ? "'" : " or '") + e + "'";
          error("unexpected end of template, expected " + want);
        }
        return body;
      }
      if (t.type == TokenType::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kText;
        s->pos = t.pos;
        s->text = t.text;
        body.push_back(std::move(s));
        advance();
      } else if (t.type == TokenType::kVarBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kEmit;
        s->pos = t.pos;
        advance();
        s->expr = parse_tuple(true);
        if (cur().type != TokenType::kVarEnd) error("expected '}}', got " + describe(cur()));
        advance();
        body.push_back(std::move(s));
      } else if (t.type == TokenType::kBlockBegin) {
        const Token& kw = peek();
        if (kw.type != TokenType::kName) error_at("expected statement name", kw.pos);
        if (ends.count(kw.text)) return body;
        advance();
        body.push_back(parse_statement());
      } else {
        error("unexpected " + describe(t));
      }
    }
  }

  StmtPtr parse_statement() {
    const Token kw = cur();
    advance();
    auto s = std::make_unique<Stmt>();
    s->pos = kw.pos;
    const std::string& k = kw.text;
    if (k == "if") {
      s->kind = StmtKind::kIf;
      ExprPtr c = parse_tuple(false);  // Jinja: no inline if here
      expect_block_end();
      Body b = parse_body({"elif", "else", "endif"});
      s->branches.emplace_back(std::move(c), std::move(b));
      while (true) {
        advance();  // block begin
        std::string which = cur().text;
        advance();
        if (which == "elif") {
          ExprPtr c2 = parse_tuple(false);
          expect_block_end();
          Body b2 = parse_body({"elif", "else", "endif"});
          s->branches.emplace_back(std::move(c2), std::move(b2));
        } else if (which == "else") {
          expect_block_end();
          s->else_body = parse_body({"endif"});
          advance();
          advance();
          expect_block_end();
          break;
        } else {
          expect_block_end();
          break;
        }
      }
    } else if (k == "for") {
      s->kind = StmtKind::kFor;
      s->targets = parse_targets();
      if (!skip_name("in")) error("expected 'in' in for loop, got " + describe(cur()));
      s->expr = parse_tuple(false, /*stop_at_if=*/true);
      if (skip_name("if")) s->cond = parse_tuple(true);
      if (is_name("recursive")) error("unsupported: recursive for loops");
      expect_block_end();
      ++loop_depth_;
      s->body = parse_body({"endfor", "else"});
      --loop_depth_;
      advance();
      std::string which = cur().text;
      advance();
      expect_block_end();
      if (which == "else") {
        s->else_body = parse_body({"endfor"});
        advance();
        advance();
        expect_block_end();
      }
    } else if (k == "set") {
      s->kind = StmtKind::kSet;
      size_t tpos = cur().pos;
      std::string first = expect_name();
      if (skip_op(".")) {
        s->targets = {first};
        s->attr = expect_name();
      } else {
        s->targets = {first};
        while (skip_op(",")) {
          if (cur().type != TokenType::kName) break;
          s->targets.push_back(expect_name());
        }
      }
      if (skip_op("=")) {
        s->expr = parse_tuple(true);
        expect_block_end();
      } else if (cur().type == TokenType::kBlockEnd && s->targets.size() == 1 && s->attr.empty()) {
        advance();
        s->kind = StmtKind::kSetBlock;
        s->body = parse_body({"endset"});
        advance();
        advance();
        expect_block_end();
      } else if (is_op("|")) {
        error("unsupported: filtered block set");
      } else {
        error_at("expected '=' in set statement", tpos);
      }
    } else if (k == "macro") {
      s->kind = StmtKind::kMacro;
      s->text = expect_name();
      expect_op("(");
      while (!skip_op(")")) {
        if (!s->params.empty()) expect_op(",");
        if (skip_op(")")) break;
        std::string pname = expect_name();
        ExprPtr def;
        if (skip_op("=")) def = parse_expression(true);
        s->params.emplace_back(std::move(pname), std::move(def));
      }
      expect_block_end();
      int saved_loops = loop_depth_;  // a macro body is not inside the enclosing loop
      loop_depth_ = 0;
      s->body = parse_body({"endmacro"});
      loop_depth_ = saved_loops;
      advance();
      advance();
      if (cur().type == TokenType::kName) advance();  // {% endmacro name %}
      expect_block_end();
    } else if (k == "break" || k == "continue") {
      if (loop_depth_ == 0) error_at("'" + k + "' outside loop", kw.pos);
      s->kind = k == "break" ? StmtKind::kBreak : StmtKind::kContinue;
      expect_block_end();
    } else if (k == "generation") {
      // HF's AssistantTracker extension: renders its body unchanged.
      s->kind = StmtKind::kBlock;
      expect_block_end();
      s->body = parse_body({"endgeneration"});
      advance();
      advance();
      expect_block_end();
    } else if (k.rfind("end", 0) == 0 || k == "elif" || k == "else") {
      error_at("unexpected '" + k + "'", kw.pos);
    } else {
      error_at("unsupported statement '" + k + "'", kw.pos);
    }
    return s;
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    bool paren = skip_op("(");
    names.push_back(expect_name());
    while (skip_op(",")) {
      if (cur().type != TokenType::kName) break;
      names.push_back(expect_name());
    }
    if (paren) expect_op(")");
    return names;
  }

  // expr ("," expr)* -> tuple when a comma appears.
  ExprPtr parse_tuple(bool with_condexpr, bool stop_at_if = false) {
    size_t pos = cur().pos;
    std::vector<ExprPtr> items;
    bool comma = false;
    while (true) {
      if (!items.empty()) {
        if (!skip_op(",")) break;
        comma = true;
      }
      if (cur().type == TokenType::kBlockEnd || cur().type == TokenType::kVarEnd || is_op(")") ||
          is_op("]") || (stop_at_if && is_name("if"))) {
        if (items.empty()) error("expected an expression, got " + describe(cur()));
        break;
      }
      items.push_back(parse_expression(with_condexpr));
    }
    if (!comma && items.size() == 1) return std::move(items[0]);
    auto t = make(ExprKind::kTuple, pos);
    t->args = std::move(items);
    return t;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard g(*this);
    if (!with_condexpr) return parse_or();
    ExprPtr e = parse_or();
    while (is_name("if")) {
      size_t pos = cur().pos;
      advance();
      ExprPtr c = parse_or();
      ExprPtr other;
      if (skip_name("else")) other = parse_expression(true);
      auto n = make(ExprKind::kCond, pos);
      n->args.push_back(std::move(e));
      n->args.push_back(std::move(c));
      n->args.push_back(std::move(other));
      e = std::move(n);
    }
    return e;
  }

  ExprPtr binary(ExprKind kind, ExprPtr l, ExprPtr r, size_t pos) {
    auto n = make(kind, pos);
    n->args.push_back(std::move(l));
    n->args.push_back(std::move(r));
    return n;
  }

  ExprPtr parse_or() {
    ExprPtr l = parse_and();
    while (is_name("or")) {
      size_t pos = cur().pos;
      advance();
      l = binary(ExprKind::kOr, std::move(l), parse_and(), pos);
    }
    return l;
  }
  ExprPtr parse_and() {
    ExprPtr l = parse_not();
    while (is_name("and")) {
      size_t pos = cur().pos;
      advance();
      l = binary(ExprKind::kAnd, std::move(l), parse_not(), pos);
    }
    return l;
  }
  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard g(*this);
      auto n = make(ExprKind::kUnary, cur().pos);
      advance();
      n->op = Op::kNot;
      n->args.push_back(parse_not());
      return n;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    size_t pos = cur().pos;
    ExprPtr first = parse_math1();
    std::vector<Op> ops;
    std::vector<ExprPtr> rest;
    while (true) {
      Op op;
      if (is_op("=="))
        op = Op::kEq;
      else if (is_op("!="))
        op = Op::kNe;
      else if (is_op("<"))
        op = Op::kLt;
      else if (is_op("<="))
        op = Op::kLe;
      else if (is_op(">"))
        op = Op::kGt;
      else if (is_op(">="))
        op = Op::kGe;
      else if (is_name("in"))
        op = Op::kIn;
      else if (is_name("not") && peek().type == TokenType::kName && peek().text == "in") {
        advance();
        op = Op::kNotIn;
      } else {
        break;
      }
      advance();
      ops.push_back(op);
      rest.push_back(parse_math1());
    }
    if (ops.empty()) return first;
    auto n = make(ExprKind::kCompare, pos);
    n->args.push_back(std::move(first));
    for (auto& r : rest) n->args.push_back(std::move(r));
    n->ops = std::move(ops);
    return n;
  }
  ExprPtr bin_op(Op op, ExprPtr l, ExprPtr r, size_t pos) {
    auto n = binary(ExprKind::kBinary, std::move(l), std::move(r), pos);
    n->op = op;
    return n;
  }
  ExprPtr parse_math1() {
    ExprPtr l = parse_concat();
    while (is_op("+") || is_op("-")) {
      Op op = is_op("+") ? Op::kAdd : Op::kSub;
      size_t pos = cur().pos;
      advance();
      l = bin_op(op, std::move(l), parse_concat(), pos);
    }
    return l;
  }
  ExprPtr parse_concat() {
    size_t pos = cur().pos;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto n = make(ExprKind::kConcat, pos);
    n->args.push_back(std::move(first));
    while (skip_op("~")) n->args.push_back(parse_math2());
    return n;
  }
  ExprPtr parse_math2() {
    ExprPtr l = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      Op op = is_op("*")    ? Op::kMul
              : is_op("/")  ? Op::kDiv
              : is_op("//") ? Op::kFloorDiv
                            : Op::kMod;
      size_t pos = cur().pos;
      advance();
      l = bin_op(op, std::move(l), parse_pow(), pos);
    }
    return l;
  }
  ExprPtr parse_pow() {
    ExprPtr l = parse_unary(true);
    while (is_op("**")) {
      size_t pos = cur().pos;
      advance();
      l = bin_op(Op::kPow, std::move(l), parse_unary(true), pos);
    }
    return l;
  }
  ExprPtr parse_unary(bool with_filter) {
    DepthGuard g(*this);
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      auto n = make(ExprKind::kUnary, cur().pos);
      n->op = is_op("-") ? Op::kNeg : Op::kPos;
      advance();
      n->args.push_back(parse_unary(false));
      node = std::move(n);
    } else {
      node = parse_postfix(parse_primary());
    }
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    DepthGuard g(*this);
    const Token& t = cur();
    size_t pos = t.pos;
    if (t.type == TokenType::kName) {
      const std::string& n = t.text;
      ExprPtr e = make(ExprKind::kConst, pos);
      if (n == "true" || n == "True")
        e->value = Value(true);
      else if (n == "false" || n == "False")
        e->value = Value(false);
      else if (n == "none" || n == "None")
        e->value = Value::none();
      else {
        e->kind = ExprKind::kName;
        e->name = n;
      }
      advance();
      return e;
    }
    if (t.type == TokenType::kString) {
      std::string s = t.text;
      advance();
      while (cur().type == TokenType::kString) {
        s += cur().text;
        advance();
      }
      ExprPtr e = make(ExprKind::kConst, pos);
      e->value = Value(std::move(s));
      return e;
    }
    if (t.type == TokenType::kInt || t.type == TokenType::kFloat) {
      ExprPtr e = make(ExprKind::kConst, pos);
      if (t.type == TokenType::kInt) {
        int64_t v = 0;
        auto r = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
        if (r.ec != std::errc()) error("integer literal out of range");
        e->value = Value(v);
      } else {
        e->value = Value(std::strtod(t.text.c_str(), nullptr));
      }
      advance();
      return e;
    }
    if (is_op("(")) {
      advance();
      if (skip_op(")")) {
        auto e = make(ExprKind::kTuple, pos);
        return e;
      }
      ExprPtr e = parse_tuple(true);
      expect_op(")");
      return e;
    }
    if (is_op("[")) {
      advance();
      auto e = make(ExprKind::kList, pos);
      while (!is_op("]")) {
        if (!e->args.empty()) expect_op(",");
        if (is_op("]")) break;
        e->args.push_back(parse_expression(true));
      }
      expect_op("]");
      return e;
    }
    if (is_op("{")) {
      advance();
      auto e = make(ExprKind::kDict, pos);
      while (!is_op("}")) {
        if (!e->args.empty()) expect_op(",");
        if (is_op("}")) break;
        e->args.push_back(parse_expression(true));
        expect_op(":");
        e->args.push_back(parse_expression(true));
      }
      expect_op("}");
      return e;
    }
    error("unexpected " + describe(t));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".")) {
        size_t pos = cur().pos;
        advance();
        if (cur().type == TokenType::kName) {
          auto n = make(ExprKind::kGetAttr, pos);
          n->name = cur().text;
          n->args.push_back(std::move(node));
          advance();
          node = std::move(n);
        } else if (cur().type == TokenType::kInt) {
          auto n = make(ExprKind::kGetItem, pos);
          n->args.push_back(std::move(node));
          ExprPtr idx = make(ExprKind::kConst, cur().pos);
          idx->value = Value(static_cast<int64_t>(std::strtoll(cur().text.c_str(), nullptr, 10)));
          n->args.push_back(std::move(idx));
          advance();
          node = std::move(n);
        } else {
          error("expected attribute name after '.'");
        }
      } else if (is_op("[")) {
        size_t pos = cur().pos;
        advance();
        node = parse_subscript(std::move(node), pos);
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr target, size_t pos) {
    DepthGuard g(*this);
    std::vector<ExprPtr> keys;  // several comma-separated keys form a tuple key
    ExprPtr parts[3];
    bool slice = false;
    int idx = 0;
    while (!is_op("]")) {
      if (is_op(",")) {
        if (slice || !parts[0]) error("invalid subscript");
        advance();
        keys.push_back(std::move(parts[0]));
        continue;
      }
      if (is_op(":")) {
        advance();
        slice = true;
        if (!keys.empty() || ++idx > 2) error("invalid slice");
        continue;
      }
      if (parts[idx]) error("expected ']' or ':' in subscript, got " + describe(cur()));
      parts[idx] = parse_expression(true);
    }
    advance();
    if (!keys.empty()) {
      auto t = make(ExprKind::kTuple, pos);
      t->args = std::move(keys);
      if (parts[0]) t->args.push_back(std::move(parts[0]));
      parts[0] = std::move(t);
    }
    if (!slice) {
      if (!parts[0]) error_at("empty subscript", pos);
      auto n = make(ExprKind::kGetItem, pos);
      n->args.push_back(std::move(target));
      n->args.push_back(std::move(parts[0]));
      return n;
    }
    auto n = make(ExprKind::kSlice, pos);
    n->args.push_back(std::move(target));
    for (auto& p : parts) n->args.push_back(std::move(p));
    return n;
  }

  void parse_args(Expr& n) {
    expect_op("(");
    bool first = true;
    while (!skip_op(")")) {
      if (!first) {
        expect_op(",");
        if (skip_op(")")) break;
      }
      first = false;
      if (is_op("*") || is_op("**")) error("unsupported: *args / **kwargs in calls");
      if (cur().type == TokenType::kName && peek().type == TokenType::kOp && peek().text == "=") {
        std::string key = cur().text;
        advance();
        advance();
        n.kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!n.kwargs.empty()) error("positional argument after keyword argument");
        n.args.push_back(parse_expression(true));
      }
    }
  }

  ExprPtr parse_call(ExprPtr callee) {
    DepthGuard g(*this);
    auto n = make(ExprKind::kCall, cur().pos);
    n->args.push_back(std::move(callee));
    parse_args(*n);
    return n;
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        advance();
        size_t pos = cur().pos;
        std::string name = expect_name();
        while (skip_op(".")) name += "." + expect_name();
        if (!is_known_filter(name)) error_at("unknown or unsupported filter '" + name + "'", pos);
        auto n = make(ExprKind::kFilter, pos);
        n->name = name;
        n->args.push_back(std::move(node));
        if (is_op("(")) parse_args(*n);
        node = std::move(n);
      } else if (is_name("is")) {
        advance();
        auto n = make(ExprKind::kTest, cur().pos);
        if (skip_name("not")) n->negate = true;
        size_t pos = cur().pos;
        std::string name = expect_name();
        while (skip_op(".")) name += "." + expect_name();
        if (!is_known_test(name)) error_at("unknown or unsupported test '" + name + "'", pos);
        n->name = name;
        n->args.push_back(std::move(node));
        const Token& t = cur();
        if (is_op("(")) {
          parse_args(*n);
        } else if ((t.type == TokenType::kName || t.type == TokenType::kString ||
                    t.type == TokenType::kInt || t.type == TokenType::kFloat || is_op("[") ||
                    is_op("{")) &&
                   !(is_name("else") || is_name("or") || is_name("and"))) {
          if (is_name("is")) error("you cannot chain multiple tests with 'is'");
          n->args.push_back(parse_postfix(parse_primary()));
        }
        node = std::move(n);
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  const std::vector<Token>& toks_;
  size_t i_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Body parse_template(const std::vector<Token>& tokens) {
  return Parser(tokens).parse_all();
}

}  // namespace wideserve::tokenizer::jinja
