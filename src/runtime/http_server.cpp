#include "runtime/http_server.h"

#include <sys/socket.h>

#include "common/check.h"
#include "common/logging.h"

namespace wideserve::runtime {
namespace {

using net::use_awaitable;
namespace beast = boost::beast;

std::string error_json(std::string_view message, std::string_view type, int code) {
  // Minimal OpenAI-shaped error for protocol-level failures handled before any handler runs.
  std::string m;
  for (char c : message) {
    if (c == '"' || c == '\\') m += '\\';
    m += c;
  }
  return fmt::format(R"({{"error":{{"message":"{}","type":"{}","param":null,"code":{}}}}})", m,
                     type, code);
}

}  // namespace

HttpExchange::HttpExchange(net::ip::tcp::socket& socket, HttpRequest req)
    : socket_(socket), req_(std::move(req)), keep_alive_(req_.keep_alive()) {}

net::awaitable<void> HttpExchange::respond(http::status status, std::string_view content_type,
                                           std::string body) {
  WS_CHECK(!responded_, "response sent twice");
  responded_ = true;
  http::response<http::string_body> res{status, req_.version()};
  res.set(http::field::server, "wideserve");
  res.set(http::field::content_type, std::string(content_type));
  res.keep_alive(keep_alive_);
  res.body() = std::move(body);
  res.prepare_payload();
  beast::error_code ec;
  co_await http::async_write(socket_, res, net::redirect_error(use_awaitable, ec));
  if (ec) {
    gone_->store(true);
    keep_alive_ = false;
  }
}

net::awaitable<bool> HttpExchange::start_stream() {
  WS_CHECK(!responded_, "response sent twice");
  responded_ = true;
  streaming_ = true;
  http::response<http::empty_body> res{http::status::ok, req_.version()};
  res.set(http::field::server, "wideserve");
  res.set(http::field::content_type, "text/event-stream");
  res.set(http::field::cache_control, "no-cache");
  res.keep_alive(keep_alive_);
  res.chunked(true);
  http::response_serializer<http::empty_body> sr{res};
  beast::error_code ec;
  co_await http::async_write_header(socket_, sr, net::redirect_error(use_awaitable, ec));
  if (ec) gone_->store(true);
  co_return !ec;
}

net::awaitable<bool> HttpExchange::write_chunk(std::string data) {
  if (gone_->load()) co_return false;
  if (data.empty()) co_return true;
  beast::error_code ec;
  co_await net::async_write(socket_, http::make_chunk(net::buffer(data)),
                            net::redirect_error(use_awaitable, ec));
  if (ec) gone_->store(true);
  co_return !ec;
}

net::awaitable<void> HttpExchange::end_stream() {
  if (gone_->load()) {
    keep_alive_ = false;
    co_return;
  }
  beast::error_code ec;
  co_await net::async_write(socket_, http::make_chunk_last(),
                            net::redirect_error(use_awaitable, ec));
  if (ec) {
    gone_->store(true);
    keep_alive_ = false;
  }
}

void HttpExchange::watch_disconnect(std::function<void()> on_gone) {
  watching_ = true;
  auto gone = gone_;
  socket_.async_wait(net::ip::tcp::socket::wait_read,
                     [this, gone, on_gone = std::move(on_gone)](beast::error_code ec) {
                       if (ec == net::error::operation_aborted) return;
                       if (!ec) {
                         char byte;
                         const ssize_t n =
                             ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
                         // Readable with data: the client pipelined its next request; not a
                         // hang-up.
                         if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) return;
                       }
                       gone->store(true);
                       on_gone();
                     });
}

void HttpExchange::stop_watching() {
  if (!watching_) return;
  watching_ = false;
  beast::error_code ec;
  socket_.cancel(ec);
}

HttpServer::HttpServer(net::io_context& ioc, HttpServerOptions opts, HttpHandler handler)
    : ioc_(ioc), opts_(std::move(opts)), handler_(std::move(handler)), acceptor_(ioc) {}

void HttpServer::start() {
  beast::error_code ec;
  auto addr = net::ip::make_address(opts_.host, ec);
  WS_CHECK_ARG(!ec, "--http-host '{}' is not an IP address", opts_.host);
  net::ip::tcp::endpoint ep{addr, opts_.port};
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  WS_CHECK_CODE(kUnavailable, !ec, "cannot listen on {}:{}: {}", opts_.host, opts_.port,
                ec.message());
  port_ = acceptor_.local_endpoint().port();
  net::co_spawn(acceptor_.get_executor(), accept_loop(), net::detached);
}

void HttpServer::stop_accepting() {
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
}

net::awaitable<void> HttpServer::accept_loop() {
  for (;;) {
    beast::error_code ec;
    net::ip::tcp::socket socket{net::make_strand(ioc_)};
    co_await acceptor_.async_accept(socket, net::redirect_error(use_awaitable, ec));
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (ec) {
      // Out of file descriptors and the like: back off instead of spinning.
      WS_LOG_WARN("accept failed: {}", ec.message());
      net::steady_timer t{ioc_, std::chrono::milliseconds(50)};
      co_await t.async_wait(net::redirect_error(use_awaitable, ec));
      continue;
    }
    socket.set_option(net::ip::tcp::no_delay(true), ec);
    auto ex = socket.get_executor();
    net::co_spawn(ex, session(std::move(socket)), net::detached);
  }
}

net::awaitable<void> HttpServer::session(net::ip::tcp::socket socket) {
  auto open = open_;
  open->fetch_add(1);
  struct Guard {
    std::shared_ptr<std::atomic<int64_t>> o;
    ~Guard() { o->fetch_sub(1); }
  } guard{open};
  beast::flat_buffer buffer;
  net::steady_timer idle{socket.get_executor()};
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(opts_.max_body_bytes);
    parser.header_limit(64 * 1024);
    beast::error_code ec;
    // Idle keep-alive connections are closed after the timeout.
    idle.expires_after(std::chrono::seconds(opts_.idle_timeout_s));
    idle.async_wait([&socket](beast::error_code e) {
      if (!e) {
        beast::error_code ignored;
        socket.close(ignored);
      }
    });
    co_await http::async_read(socket, buffer, parser, net::redirect_error(use_awaitable, ec));
    idle.cancel();
    if (ec == http::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset ||
        !socket.is_open())
      break;
    if (ec) {
      http::status st = ec == http::error::body_limit ? http::status::payload_too_large
                                                      : http::status::bad_request;
      std::string msg = ec == http::error::body_limit
                            ? fmt::format("request body exceeds {} bytes", opts_.max_body_bytes)
                            : "malformed HTTP request: " + ec.message();
      http::response<http::string_body> res{st, 11};
      res.set(http::field::content_type, "application/json");
      res.keep_alive(false);
      res.body() = error_json(msg, "invalid_request_error", static_cast<int>(st));
      res.prepare_payload();
      co_await http::async_write(socket, res, net::redirect_error(use_awaitable, ec));
      break;
    }
    HttpExchange ex{socket, parser.release()};
    std::string failure;
    try {
      co_await handler_(ex);
    } catch (const std::exception& e) {
      // Handlers turn bad input into error responses themselves; reaching here is a bug.
      WS_LOG_ERROR("handler failed for {}: {}", std::string(ex.request().target()), e.what());
      failure = e.what();
    }
    ex.stop_watching();
    if (ex.client_gone()) break;  // nobody to answer (e.g. a unary request whose client left)
    if (!ex.responded()) {
      // GCC 12 destroys conditional-operator temporaries inside co_await twice: build it first.
      std::string msg = failure;
      if (msg.empty()) msg = "no response produced";
      std::string body = error_json(msg, "server_error", 500);
      co_await ex.respond(http::status::internal_server_error, "application/json", std::move(body));
    } else if (!failure.empty()) {
      break;  // a stream broke off mid-way: the connection state is unknown
    }
    if (!ex.keep_alive() || ex.client_gone()) break;
  }
  beast::error_code ignored;
  socket.shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  socket.close(ignored);
}

}  // namespace wideserve::runtime
