// Validation of the chat-only request fields: messages, tools, tool_choice. Internal to src/api.
#pragma once

#include "api/openai_request.h"
#include "api/request_fields.h"

namespace wideserve::api::detail {

// Validated copy of `messages`: content parts flattened to strings, other keys kept.
Json parse_messages(const Json& v);
// Validated copy of `tools`; null when empty.
Json parse_tools(const Json& v);
// The shape of `tool_choice`; the caller checks it against the tools.
ToolChoice parse_tool_choice(const Json& v);

}  // namespace wideserve::api::detail
