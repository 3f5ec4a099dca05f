// Control messages between a decode engine and a prefill engine (ZeroMQ DEALER -> ROUTER, JSON):
// hello (decode's agent metadata and KV layout), pages (a room's destination pages), abort, and
// the prefill's answers (hello_ack, failed, aborted). The KV itself moves through the transfer
// agent; its notification carries the first token (RoomDone).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "engine/sampler.h"

namespace wideserve::disagg {

// The transfer notification: the room's KV has landed; the first token and its logprobs.
struct RoomDone {
  uint64_t room = 0;
  engine::SampleResult first;
};
std::string encode_room_done(const RoomDone& d);
std::optional<RoomDone> decode_room_done(const std::string& s);

// Sends one JSON message on a socket (DEALER: no identity; ROUTER: to `identity`).
void send_json(zmq::socket_t& s, const nlohmann::json& j, const std::string* identity = nullptr);
// Receives one message without blocking: {identity (ROUTER only), json}; nullopt when none.
// Malformed messages are dropped (logged).
std::optional<std::pair<std::string, nlohmann::json>> recv_json(zmq::socket_t& s, bool router);

}  // namespace wideserve::disagg
