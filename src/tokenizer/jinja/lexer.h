// Splits template source into tokens, applying whitespace control, trim_blocks and lstrip_blocks.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace wideserve::tokenizer::jinja {

enum class TokenType {
  kText,
  kVarBegin,
  kVarEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,
  kInt,
  kFloat,
  kOp,
  kEof
};

// One token; pos is its byte offset in the normalized source.
struct Token {
  TokenType type;
  std::string text;  // data, name, operator, decoded string literal or number spelling
  size_t pos;
};

// Lexer settings: HF uses trim_blocks and lstrip_blocks, keep_trailing_newline off.
struct LexerOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

// Normalizes newlines (\r\n, \r -> \n) and drops one trailing newline unless kept.
std::string normalize_source(std::string_view source, const LexerOptions& opts);
// Tokenizes normalized source; throws JinjaError with a position on malformed input.
std::vector<Token> tokenize(const std::string& source, const LexerOptions& opts);
// 1-based line and column of a byte offset.
std::pair<int, int> line_col(std::string_view source, size_t pos);

}  // namespace wideserve::tokenizer::jinja
