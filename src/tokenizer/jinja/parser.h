// Parses template tokens into a syntax tree; unsupported constructs fail with their position.
#pragma once

#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace wideserve::tokenizer::jinja {

// Parses a whole template. Throws JinjaError (with pos) on syntax errors or unsupported
// statements, filters and tests.
Body parse_template(const std::vector<Token>& tokens);
// True if the name is a filter / test the interpreter implements.
bool is_known_filter(const std::string& name);
bool is_known_test(const std::string& name);

}  // namespace wideserve::tokenizer::jinja
