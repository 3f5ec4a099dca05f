// Asynchronous HTTP/1.1 server (Boost.Beast over Asio, one C++20 coroutine per connection on its
// own strand): full responses, SSE streams with chunked encoding, body limits, keep-alive, and
// detection of clients that hang up while their request is still being served.
#pragma once

#include <utility>  // Boost 1.74 coroutine headers use std::exchange without it

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

namespace wideserve::runtime {

namespace net = boost::asio;
namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;

// One request on a connection and the means to answer it.
class HttpExchange {
 public:
  HttpExchange(net::ip::tcp::socket& socket, HttpRequest req);

  const HttpRequest& request() const { return req_; }
  // A complete response (keep-alive follows the request).
  net::awaitable<void> respond(http::status status, std::string_view content_type,
                               std::string body);
  // Sends SSE response headers; false when the client is gone.
  net::awaitable<bool> start_stream();
  // One chunk of the stream (one or more SSE events); false when the client is gone.
  net::awaitable<bool> write_chunk(std::string data);
  // The last chunk; the connection stays open for the next request.
  net::awaitable<void> end_stream();

  // Calls on_gone (on this connection's strand) when the client closes the connection while the
  // request is served. One watch at a time; stop_watching() ends it.
  void watch_disconnect(std::function<void()> on_gone);
  void stop_watching();
  bool client_gone() const { return gone_->load(); }
  bool responded() const { return responded_; }
  bool keep_alive() const { return keep_alive_; }

 private:
  net::ip::tcp::socket& socket_;
  HttpRequest req_;
  bool keep_alive_;
  bool responded_ = false;
  bool streaming_ = false;
  bool watching_ = false;
  std::shared_ptr<std::atomic<bool>> gone_ = std::make_shared<std::atomic<bool>>(false);
};

// Serves every request through the handler; never throws out of a connection.
using HttpHandler = std::function<net::awaitable<void>(HttpExchange&)>;

// Server limits.
struct HttpServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 8000;
  size_t max_body_bytes = 32u << 20;
  int idle_timeout_s = 300;  // a keep-alive connection with no request for this long is closed
};

class HttpServer {
 public:
  HttpServer(net::io_context& ioc, HttpServerOptions opts, HttpHandler handler);
  // Binds and starts accepting; throws Error(kUnavailable) naming the address when it cannot bind.
  void start();
  // Stops accepting new connections (draining); open connections go on.
  void stop_accepting();
  uint16_t port() const { return port_; }
  int64_t open_connections() const { return open_->load(); }

 private:
  net::awaitable<void> accept_loop();
  net::awaitable<void> session(net::ip::tcp::socket socket);

  net::io_context& ioc_;
  HttpServerOptions opts_;
  HttpHandler handler_;
  net::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::shared_ptr<std::atomic<int64_t>> open_ = std::make_shared<std::atomic<int64_t>>(0);
};

}  // namespace wideserve::runtime
