#include "loadgen/stream_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>

#include "loadgen/openai_stream.h"
#include "loadgen/sse_parser.h"

namespace wideserve::loadgen {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr size_t kMaxErrorBody = 4096;

// A transport failure after the request went out: the server's side ended or broke the stream.
std::string transport_error_kind(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return "timeout";
  if (ec.category() == beast::error_code(http::error::end_of_stream).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message)
    return "bad_response";  // malformed HTTP (status line, headers, chunk framing)
  return "disconnected";
}

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

class StreamSession : public std::enable_shared_from_this<StreamSession> {
 public:
  StreamSession(asio::io_context& ioc, const tcp::resolver::results_type& endpoints,
                const StreamRequestOptions& options, std::string body, RequestRecord record,
                Clock::time_point start, std::function<void(RequestRecord&&)> done)
      : stream_(asio::make_strand(ioc)),
        endpoints_(endpoints),
        timeout_(std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(options.idle_timeout_s))),
        decoder_(options.endpoint),
        record_(std::move(record)),
        start_(start),
        done_(std::move(done)) {
    req_.method(http::verb::post);
    req_.target(options.path);
    req_.version(11);
    req_.set(http::field::host, options.host_header);
    req_.set(http::field::content_type, "application/json");
    req_.set(http::field::accept, "text/event-stream");
    req_.set(http::field::user_agent, "wideserve-bench");
    if (!options.api_key.empty()) req_.set(http::field::authorization, "Bearer " + options.api_key);
    req_.keep_alive(false);
    req_.body() = std::move(body);
    req_.prepare_payload();
    parser_.body_limit(std::numeric_limits<std::uint64_t>::max());
  }

  void run() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->connect(); });
  }

 private:
  void connect() {
    stream_.expires_after(timeout_);
    stream_.async_connect(
        endpoints_, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
          if (ec)
            return self->fail(ec == beast::error::timeout ? "timeout" : "connect", ec.message());
          self->stream_.socket().set_option(tcp::no_delay(true), ec);
          self->write();
        });
  }

  void write() {
    stream_.expires_after(timeout_);
    http::async_write(stream_, req_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->fail(transport_error_kind(ec), "sending the request: " + ec.message());
      self->read_header();
    });
  }

  void read_header() {
    stream_.expires_after(timeout_);
    http::async_read_header(
        stream_, buffer_, parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
          if (ec) return self->fail(transport_error_kind(ec), "reading headers: " + ec.message());
          self->record_.http_status = static_cast<int>(self->parser_.get().result_int());
          self->error_status_ = self->record_.http_status != 200;
          if (self->parser_.is_done()) return self->end_of_body(Clock::now());
          self->read_some();
        });
  }

  void read_some() {
    auto& body = parser_.get().body();
    body.data = chunk_;
    body.size = sizeof(chunk_);
    stream_.expires_after(timeout_);
    http::async_read_some(stream_, buffer_, parser_,
                          [self = shared_from_this()](beast::error_code ec, size_t) {
                            self->on_read(ec, Clock::now());
                          });
  }

  void on_read(beast::error_code ec, Clock::time_point now) {
    if (finished_) return;
    size_t got = sizeof(chunk_) - parser_.get().body().size;
    if (ec == http::error::need_buffer) ec = {};
    if (got > 0) on_bytes(std::string_view(chunk_, got), now);
    if (finished_) return;
    if (ec) {
      if (error_status_) return fail_status();
      return fail(transport_error_kind(ec), "reading the stream: " + ec.message());
    }
    if (parser_.is_done()) return end_of_body(now);
    read_some();
  }

  void on_bytes(std::string_view bytes, Clock::time_point now) {
    if (error_status_) {
      error_body_.append(
          bytes.substr(0, kMaxErrorBody - std::min(kMaxErrorBody, error_body_.size())));
      return;
    }
    sse_.feed(bytes, [&](const SseEvent& ev) {
      if (decoder_.on_data(ev.data)) record_.content_times_s.push_back(seconds(now - start_));
    });
    if (!decoder_.error_kind().empty())
      return fail(decoder_.error_kind(), decoder_.error_message());
    if (decoder_.done()) succeed(now);
  }

  void end_of_body(Clock::time_point now) {
    if (error_status_) return fail_status();
    // OpenAI streams end with data: [DONE]; a body that just stops is a server-side bug.
    fail("no_done", "the response ended without data: [DONE]");
  }

  void succeed(Clock::time_point now) {
    record_.e2e_s = seconds(now - start_);
    record_.prompt_tokens = decoder_.prompt_tokens();
    record_.completion_tokens = decoder_.completion_tokens();
    if (!record_.content_times_s.empty()) record_.ttft_s = record_.content_times_s.front();
    if (!decoder_.has_usage())
      return fail("no_usage", "stream had no usage block (stream_options.include_usage ignored?)");
    if (record_.content_times_s.empty()) return fail("no_content", "stream carried no text");
    finish();
  }

  void fail_status() {
    std::string msg = error_body_;
    auto j = nlohmann::json::parse(error_body_, nullptr, false);
    if (j.is_object()) {
      auto e = j.find("error");
      if (e != j.end() && e->is_object() && e->contains("message") && (*e)["message"].is_string())
        msg = (*e)["message"].get<std::string>();
      else if (auto m = j.find("message"); m != j.end() && m->is_string())
        msg = m->get<std::string>();
    }
    fail("http_" + std::to_string(record_.http_status), msg);
  }

  void fail(std::string kind, std::string message) {
    if (finished_) return;
    record_.error_kind = std::move(kind);
    record_.error_message = std::move(message);
    if (record_.e2e_s < 0) record_.e2e_s = seconds(Clock::now() - start_);
    finish();
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    done_(std::move(record_));
  }

  beast::tcp_stream stream_;
  tcp::resolver::results_type endpoints_;
  Clock::duration timeout_;
  http::request<http::string_body> req_;
  http::response_parser<http::buffer_body> parser_;
  beast::flat_buffer buffer_;
  char chunk_[16384];
  SseParser sse_;
  OpenAiStreamDecoder decoder_;
  RequestRecord record_;
  Clock::time_point start_;
  std::function<void(RequestRecord&&)> done_;
  std::string error_body_;
  bool error_status_ = false;
  bool finished_ = false;
};

}  // namespace

void start_stream_request(asio::io_context& ioc, const tcp::resolver::results_type& endpoints,
                          const StreamRequestOptions& options, std::string body,
                          RequestRecord record, Clock::time_point start,
                          std::function<void(RequestRecord&&)> done) {
  std::make_shared<StreamSession>(ioc, endpoints, options, std::move(body), std::move(record),
                                  start, std::move(done))
      ->run();
}

}  // namespace wideserve::loadgen
