// Dynamic values of the template language with Python/Jinja2 semantics (str(), ==, truthiness).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace wideserve::tokenizer::jinja {

// Error raised while compiling or rendering; pos is a byte offset into the template (or npos).
class JinjaError : public std::exception {
 public:
  static constexpr size_t kNoPos = static_cast<size_t>(-1);
  explicit JinjaError(std::string msg, size_t pos = kNoPos, bool raised = false)
      : msg_(std::move(msg)), pos_(pos), raised_(raised) {}
  const char* what() const noexcept override { return msg_.c_str(); }
  const std::string& message() const { return msg_; }
  size_t pos() const { return pos_; }
  void set_pos(size_t pos) { pos_ = pos; }
  bool raised_by_template() const { return raised_; }

 private:
  std::string msg_;
  size_t pos_;
  bool raised_;
};

// Throws a JinjaError without position (the interpreter adds the position of the failing node).
[[noreturn]] void fail(std::string msg);

enum class Kind : uint8_t {
  kUndefined,
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kList,
  kTuple,
  kDict,
  kNamespace,
  kCallable
};

class Value;
struct ListObj;
struct DictObj;
struct Callable;

// Positional and keyword arguments of a call.
struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
};

// A Jinja value. Lists, dicts and namespaces have reference semantics, as in Python.
class Value {
 public:
  Value() = default;  // undefined
  Value(bool b) : kind_(Kind::kBool), b_(b) {}
  Value(int v) : kind_(Kind::kInt), i_(v) {}
  Value(int64_t v) : kind_(Kind::kInt), i_(v) {}
  Value(double v) : kind_(Kind::kFloat), f_(v) {}
  Value(std::string s) : kind_(Kind::kString), s_(std::move(s)) {}
  Value(const char* s) : kind_(Kind::kString), s_(s) {}

  static Value undefined(std::string hint = {});
  static Value none();
  static Value list(std::vector<Value> items = {});
  static Value tuple(std::vector<Value> items);
  static Value dict();
  static Value ns();
  static Value callable(std::string name, std::function<Value(CallArgs&)> fn);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const {
    return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool;
  }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kTuple; }
  bool is_sequence() const { return kind_ == Kind::kList || kind_ == Kind::kTuple; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_callable() const { return kind_ == Kind::kCallable; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::kBool ? (b_ ? 1 : 0) : i_; }
  double as_float() const;                       // int, bool or float
  const std::string& str() const { return s_; }  // string payload (or undefined hint)
  std::vector<Value>& items() const;             // list / tuple
  DictObj& dict_obj() const;                     // dict / namespace
  const Callable& fn() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::string s_;
  std::shared_ptr<void> obj_;
};

struct ListObj {
  std::vector<Value> items;
};

// Insertion-ordered mapping (Python dict order).
struct DictObj {
  std::vector<std::pair<Value, Value>> entries;
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value value);
};

struct Callable {
  std::string name;
  std::function<Value(CallArgs&)> fn;
};

// Python truthiness (undefined is false).
bool truthy(const Value& v);
// Python str(); undefined is "".
std::string to_str(const Value& v);
// Python repr().
std::string repr(const Value& v);
// Python type name for messages ("str", "dict", "NoneType"...).
std::string type_name(const Value& v);
// Python float repr.
std::string format_float(double d);
// Python ==.
bool equals(const Value& a, const Value& b);
// Python <: -1, 0, 1; fails for unorderable types.
int compare(const Value& a, const Value& b);
// json.dumps(v, ensure_ascii, indent, separators, sort_keys) as HF's tojson filter.
struct JsonOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // nullopt: single line
  std::optional<std::pair<std::string, std::string>> separators;
  bool sort_keys = false;
};
std::string to_json(const Value& v, const JsonOptions& opts);
// JSON -> Value (objects keep their key order).
Value from_json(const nlohmann::ordered_json& j);
Value from_json(const nlohmann::json& j);

}  // namespace wideserve::tokenizer::jinja
