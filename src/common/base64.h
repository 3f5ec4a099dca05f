// Base64 (RFC 4648) for binary data inside JSON: etcd's gateway keys/values, transfer metadata.
#pragma once

#include <string>
#include <string_view>

#include "common/check.h"

namespace wideserve {

// Standard alphabet, padded with '='.
std::string base64_encode(std::string_view bytes);

// Strict: standard alphabet, padded to a multiple of 4. Lenient: padding optional, the URL-safe
// '-' and '_' accepted too. Bad input throws Error(`error`).
std::string base64_decode(std::string_view text, bool strict, ErrorCode error);

}  // namespace wideserve
