#include "disagg/control.h"

#include "common/logging.h"

namespace wideserve::disagg {

std::string encode_room_done(const RoomDone& d) {
  nlohmann::json top = nlohmann::json::array();
  for (const auto& t : d.first.top) top.push_back({t.token, t.logprob});
  return nlohmann::json{
      {"room", d.room}, {"token", d.first.token}, {"logprob", d.first.logprob}, {"top", top}}
      .dump();
}

std::optional<RoomDone> decode_room_done(const std::string& s) {
  try {
    auto j = nlohmann::json::parse(s);
    RoomDone d;
    d.room = j.at("room").get<uint64_t>();
    d.first.token = j.at("token").get<int32_t>();
    d.first.logprob = j.at("logprob").get<float>();
    for (const auto& t : j.at("top"))
      d.first.top.push_back({t.at(0).get<int32_t>(), t.at(1).get<float>()});
    return d;
  } catch (const std::exception& e) {
    WS_LOG_WARN("dropping malformed KV notification: {}", e.what());
    return std::nullopt;
  }
}

void send_json(zmq::socket_t& s, const nlohmann::json& j, const std::string* identity) {
  const std::string body = j.dump();
  if (identity)
    s.send(zmq::buffer(*identity), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  s.send(zmq::buffer(body), zmq::send_flags::dontwait);
}

std::optional<std::pair<std::string, nlohmann::json>> recv_json(zmq::socket_t& s, bool router) {
  for (;;) {
    std::string identity;
    zmq::message_t m;
    if (!s.recv(m, zmq::recv_flags::dontwait)) return std::nullopt;
    if (router) {
      identity = m.to_string();
      if (!m.more()) continue;
      if (!s.recv(m, zmq::recv_flags::dontwait)) return std::nullopt;
    }
    while (m.more()) {  // unexpected extra frames: keep the last
      zmq::message_t extra;
      if (!s.recv(extra, zmq::recv_flags::dontwait)) break;
      m = std::move(extra);
    }
    try {
      return std::make_pair(identity, nlohmann::json::parse(m.to_string_view()));
    } catch (const std::exception& e) {
      WS_LOG_WARN("dropping malformed disaggregation control message: {}", e.what());
    }
  }
}

}  // namespace wideserve::disagg
