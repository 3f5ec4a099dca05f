#include "loadgen/runner.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "common/check.h"
#include "loadgen/arrival.h"
#include "loadgen/stream_client.h"

namespace wideserve::loadgen {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr auto kProgressEvery = std::chrono::milliseconds(100);

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Requests in flight and finished records, shared between the io threads and the driver.
class Tracker {
 public:
  void started() {
    std::lock_guard lock(mu_);
    ++in_flight_;
    ++sent_;
  }
  void finished(RequestRecord&& r) {
    std::lock_guard lock(mu_);
    --in_flight_;
    if (!r.warmup) {
      last_done_ = Clock::now();
      (r.ok() ? completed_ : failed_) += 1;
      if (r.ok()) output_tokens_ += r.completion_tokens;
    }
    records_.push_back(std::move(r));
    cv_.notify_all();
  }
  // Waits until fewer than `limit` (0: no limit) are in flight or `deadline` passes; true if a
  // slot is free.
  bool wait_slot(int64_t limit, Clock::time_point deadline) {
    std::unique_lock lock(mu_);
    return cv_.wait_until(lock, deadline, [&] { return limit <= 0 || in_flight_ < limit; });
  }
  bool wait_idle(Clock::time_point deadline) {
    std::unique_lock lock(mu_);
    return cv_.wait_until(lock, deadline, [&] { return in_flight_ == 0; });
  }
  void snapshot(Progress& p) {
    std::lock_guard lock(mu_);
    p.in_flight = in_flight_;
    p.completed = completed_;
    p.failed = failed_;
    p.output_tokens = output_tokens_;
  }
  void reset_counts() {
    std::lock_guard lock(mu_);
    sent_ = completed_ = failed_ = output_tokens_ = 0;
  }
  std::optional<Clock::time_point> last_done() {
    std::lock_guard lock(mu_);
    return last_done_;
  }
  std::vector<RequestRecord> take() {
    std::lock_guard lock(mu_);
    return std::move(records_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t in_flight_ = 0, sent_ = 0, completed_ = 0, failed_ = 0, output_tokens_ = 0;
  std::optional<Clock::time_point> last_done_;
  std::vector<RequestRecord> records_;
};

}  // namespace

BenchOutcome run_benchmark(const BenchConfig& cfg, const std::vector<Prompt>& prompts,
                           const std::function<void(const Progress&)>& on_progress) {
  WS_CHECK_ARG(!prompts.empty(), "no prompts to send");
  WS_CHECK_ARG(cfg.num_requests > 0 || cfg.duration_s > 0, "give a request count or a duration");
  WS_CHECK_ARG(cfg.concurrency >= 0, "concurrency must be >= 0");
  WS_CHECK_ARG(cfg.concurrency > 0 || cfg.request_rate > 0,
               "unlimited concurrency needs a request rate");
  WS_CHECK_ARG(cfg.request_timeout_s > 0, "request timeout must be > 0");
  WS_CHECK_ARG(cfg.threads >= 1, "need at least one io thread");

  HttpTarget target = parse_http_url(cfg.url);
  asio::io_context ioc;
  tcp::resolver::results_type endpoints;
  {
    boost::system::error_code ec;
    tcp::resolver resolver(ioc);
    endpoints = resolver.resolve(target.host, target.port, ec);
    WS_CHECK_CODE(kUnavailable, !ec, "cannot resolve {}:{}: {}", target.host, target.port,
                  ec.message());
  }
  StreamRequestOptions sopt;
  sopt.host_header = target.host + ":" + target.port;
  sopt.path = target.base_path + endpoint_path(cfg.request.endpoint);
  sopt.api_key = cfg.api_key;
  sopt.endpoint = cfg.request.endpoint;
  sopt.idle_timeout_s = cfg.request_timeout_s;

  auto work = asio::make_work_guard(ioc);
  std::vector<std::thread> threads;
  for (int i = 0; i < cfg.threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });

  Tracker tracker;
  size_t next_prompt = 0;
  Clock::time_point phase_start = Clock::now();
  auto launch = [&](int64_t index, bool warmup) {
    const Prompt& p = prompts[next_prompt++ % prompts.size()];
    RequestRecord r;
    r.index = index;
    r.warmup = warmup;
    Clock::time_point now = Clock::now();
    r.start_s = seconds(now - phase_start);
    tracker.started();
    start_stream_request(ioc, endpoints, sopt, build_request_body(p, cfg.request), std::move(r),
                         now,
                         [&tracker](RequestRecord&& rec) { tracker.finished(std::move(rec)); });
  };
  Progress progress;
  auto report = [&](int64_t sent) {
    if (!on_progress) return;
    progress.sent = sent;
    progress.elapsed_s = seconds(Clock::now() - phase_start);
    tracker.snapshot(progress);
    on_progress(progress);
  };
  auto drain = [&](int64_t sent) {
    while (!tracker.wait_idle(Clock::now() + kProgressEvery)) report(sent);
  };

  try {
    // Warm-up: same path, results discarded.
    if (cfg.warmup_requests > 0) {
      progress.warmup = true;
      progress.total = cfg.warmup_requests;
      int64_t limit = cfg.concurrency > 0 ? cfg.concurrency : cfg.warmup_requests;
      for (int64_t i = 0; i < cfg.warmup_requests; ++i) {
        while (!tracker.wait_slot(limit, Clock::now() + kProgressEvery)) report(i);
        launch(i, true);
      }
      drain(cfg.warmup_requests);
      tracker.reset_counts();
    }

    progress = Progress{};
    progress.total = cfg.num_requests;
    progress.duration_s = cfg.duration_s;
    ArrivalProcess arrivals(cfg.request_rate, cfg.burstiness, cfg.seed);
    phase_start = Clock::now();
    Clock::time_point next_arrival = phase_start;
    auto end_time = phase_start + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(cfg.duration_s));
    auto out_of_time = [&] { return cfg.duration_s > 0 && Clock::now() >= end_time; };
    Clock::time_point last_report = phase_start;
    int64_t sent = 0;
    for (; cfg.num_requests <= 0 || sent < cfg.num_requests; ++sent) {
      if (sent > 0)
        next_arrival += std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(arrivals.next_gap_s()));
      // Sleep until the arrival time (waking for progress), then until a slot is free.
      while (Clock::now() < next_arrival && !out_of_time()) {
        auto wake = std::min({next_arrival, Clock::now() + kProgressEvery,
                              cfg.duration_s > 0 ? end_time : next_arrival});
        std::this_thread::sleep_until(wake);
        if (Clock::now() - last_report >= kProgressEvery) {
          report(sent);
          last_report = Clock::now();
        }
      }
      while (!out_of_time() && !tracker.wait_slot(cfg.concurrency, Clock::now() + kProgressEvery))
        report(sent);
      if (out_of_time()) break;
      launch(sent, false);
      if (Clock::now() - last_report >= kProgressEvery) {
        report(sent + 1);
        last_report = Clock::now();
      }
    }
    drain(sent);
    report(sent);
    BenchOutcome out;
    auto last = tracker.last_done();
    out.duration_s = seconds((last ? *last : Clock::now()) - phase_start);
    work.reset();
    for (auto& t : threads) t.join();
    out.records = tracker.take();
    return out;
  } catch (...) {
    // Every request ends by its idle timeout at the latest; wait for them before unwinding.
    tracker.wait_idle(Clock::time_point::max());
    work.reset();
    for (auto& t : threads) t.join();
    throw;
  }
}

}  // namespace wideserve::loadgen
