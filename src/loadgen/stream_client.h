// One streaming OpenAI request over its own HTTP/1.1 connection (Boost.Beast): connect, POST,
// read the SSE body as it arrives, time every content chunk, classify any failure by kind.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <string>

#include "loadgen/types.h"

namespace wideserve::loadgen {

using Clock = std::chrono::steady_clock;

struct StreamRequestOptions {
  std::string host_header;  // Host: value
  std::string path;         // e.g. /v1/chat/completions
  std::string api_key;      // sent as a bearer token when non-empty
  Endpoint endpoint = Endpoint::kChat;
  double idle_timeout_s = 600;  // a connect, write or read that sees no progress this long fails
};

// Starts the request on `ioc` and returns at once. `done` runs exactly once, on an io thread, with
// `record` filled in (timings relative to `start`; error_kind empty on success).
void start_stream_request(boost::asio::io_context& ioc,
                          const boost::asio::ip::tcp::resolver::results_type& endpoints,
                          const StreamRequestOptions& options, std::string body,
                          RequestRecord record, Clock::time_point start,
                          std::function<void(RequestRecord&&)> done);

}  // namespace wideserve::loadgen
