// Syntax tree of a compiled template; immutable after parsing, shared by concurrent renders.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace wideserve::tokenizer::jinja {

enum class ExprKind {
  kConst,
  kName,
  kGetAttr,
  kGetItem,
  kSlice,
  kCall,
  kFilter,
  kTest,
  kBinary,
  kUnary,
  kCompare,
  kAnd,
  kOr,
  kCond,
  kList,
  kTuple,
  kDict,
  kConcat
};

enum class Op {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kFloorDiv,
  kMod,
  kPow,
  kNeg,
  kPos,
  kNot,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kIn,
  kNotIn
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

// One expression node. Field use depends on kind (see parser.cpp).
struct Expr {
  ExprKind kind;
  size_t pos = 0;
  Value value;                // kConst
  std::string name;           // kName, kGetAttr, kFilter, kTest
  Op op = Op::kAdd;           // kBinary, kUnary
  bool negate = false;        // kTest: "is not"
  std::vector<ExprPtr> args;  // operands / positional arguments (may hold nullptr for slices)
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<Op> ops;  // kCompare
};

enum class StmtKind { kText, kEmit, kIf, kFor, kSet, kSetBlock, kMacro, kBreak, kContinue, kBlock };

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  StmtKind kind;
  size_t pos = 0;
  std::string text;                                     // kText data; kSet/kMacro name
  ExprPtr expr;                                         // kEmit, kFor iterable, kSet value
  ExprPtr cond;                                         // kFor filter
  std::vector<std::string> targets;                     // kFor / kSet names (several: unpacking)
  std::string attr;                                     // kSet on namespace attribute
  std::vector<std::pair<ExprPtr, Body>> branches;       // kIf
  Body body, else_body;                                 // kFor, kSetBlock, kMacro, kBlock
  std::vector<std::pair<std::string, ExprPtr>> params;  // kMacro (default may be null)
};

}  // namespace wideserve::tokenizer::jinja
