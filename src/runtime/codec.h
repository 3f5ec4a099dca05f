// msgpack wire format of the request-plane and discovery messages (runtime/messages.h).
//
// One frame is the msgpack array [protocol_version, type_tag, body] where body is an array of the
// message's fields in declaration order (see codec.cpp). Several frames may be concatenated in
// one transport message (decode_all). A decoder accepts bodies with extra trailing fields (a
// newer peer may append fields without bumping the version) but never fewer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "runtime/messages.h"

namespace wideserve::runtime {

// Every message that travels on the request plane or to the embedded registry.
using Message = std::variant<GenerateRequest, AbortRequest, GenerateOutput, Heartbeat, HeartbeatAck,
                             Unregister>;

// Type tag written in each frame; values are part of the protocol.
enum class MessageType : uint8_t {
  kGenerateRequest = 1,
  kAbortRequest = 2,
  kGenerateOutput = 3,
  kHeartbeat = 4,
  kHeartbeatAck = 5,
  kUnregister = 6,
};

// The tag of a message.
MessageType message_type(const Message& m);
// Name of a tag for logs ("GenerateRequest", ...; "unknown" otherwise).
const char* message_type_name(MessageType t);

// One frame.
std::string encode(const Message& m);
// Appends one frame to `out` (to batch several frames in one transport message).
void encode_append(const Message& m, std::string& out);

// Exactly one frame. Throws Error(kDataLoss) on a wrong protocol version, an unknown type, a
// malformed body or trailing bytes.
Message decode(std::string_view frame);
// One or more concatenated frames; same errors as decode (an empty input is an error too).
std::vector<Message> decode_all(std::string_view data);

}  // namespace wideserve::runtime
