// Request plane end to end over TCP on 127.0.0.1: RequestServer with a fake streaming engine,
// RequestClient with collecting handlers.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/check.h"
#include "runtime/codec.h"
#include "runtime/request_client.h"
#include "runtime/request_server.h"

namespace wideserve::runtime {
namespace {

using namespace std::chrono_literals;
using engine::FinishReason;

template <typename F>
bool wait_until(F pred, std::chrono::milliseconds timeout = 5000ms) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// What the fake engine does with each request.
struct FakeSpec {
  int tokens = 5;          // per sample; < 0: never finishes
  int index0_tokens = -2;  // >= -1: override for sample 0
  bool honour_abort = true;
  bool throw_on_generate = false;
  bool reject_whole_request = false;  // one kError output for all samples, like Engine
};

// A worker: RequestServer + an "engine" thread emitting one token per open sample per tick.
// Token j of request r, sample i is r * 1000 + i * 100 + j.
class FakeWorker {
 public:
  explicit FakeWorker(FakeSpec spec, std::string bind = "tcp://127.0.0.1:0") : spec_(spec) {
    RequestServer::Handlers h;
    h.on_generate = [this](const PeerRequest& key, GenerateRequest req) {
      ++generates;
      if (spec_.throw_on_generate) WS_THROW(kInvalidArgument, "bad request {}", req.request_id);
      std::lock_guard<std::mutex> lock(mu_);
      Job j;
      j.key = key;
      j.n = std::max(1, req.params.n);
      j.logprobs = req.params.top_logprobs >= 0;
      j.emitted.assign(j.n, 0);
      j.done.assign(j.n, false);
      jobs_[key] = std::move(j);
    };
    h.on_abort = [this](const PeerRequest& key) {
      ++aborts;
      if (!spec_.honour_abort) return;
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(key);
      if (it != jobs_.end()) it->second.aborted = true;
    };
    server_ = std::make_unique<RequestServer>(bind, std::move(h));
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeWorker() { stop(); }

  std::string endpoint() const { return server_->endpoint(); }
  RequestServer& server() { return *server_; }
  size_t jobs() {
    std::lock_guard<std::mutex> lock(mu_);
    return jobs_.size();
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    server_->stop();
  }

  std::atomic<int> generates{0};
  std::atomic<int> aborts{0};

 private:
  struct Job {
    PeerRequest key;
    int n = 1;
    bool logprobs = false;
    bool aborted = false;
    std::vector<int> emitted;
    std::vector<bool> done;
  };

  int limit(int index) const {
    return index == 0 && spec_.index0_tokens >= -1 ? spec_.index0_tokens : spec_.tokens;
  }

  void loop() {
    while (!stop_) {
      std::vector<std::pair<PeerRequest, GenerateOutput>> outs;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto it = jobs_.begin(); it != jobs_.end();) {
          Job& j = it->second;
          bool all_done = true;
          for (int i = 0; i < j.n; ++i) {
            if (j.done[i]) continue;
            GenerateOutput o;
            o.output.id = j.key.request_id;
            o.output.index = i;
            o.output.prompt_tokens = 3;
            if (spec_.reject_whole_request) {
              o.output.finish = FinishReason::kError;
              o.output.error = "prompt too long";
              outs.emplace_back(j.key, std::move(o));
              std::fill(j.done.begin(), j.done.end(), true);
              break;
            }
            if (j.aborted) {
              o.output.finish = FinishReason::kAbort;
            } else {
              int32_t tok = static_cast<int32_t>(j.key.request_id * 1000 + i * 100 + j.emitted[i]);
              o.output.new_tokens = {tok};
              if (j.logprobs) o.output.logprobs.push_back({tok, -0.5f, {{tok, -0.5f}}});
              ++j.emitted[i];
              if (limit(i) >= 0 && j.emitted[i] >= limit(i)) o.output.finish = FinishReason::kStop;
            }
            o.output.completion_tokens = j.emitted[i];
            if (o.output.finish != FinishReason::kNone)
              j.done[i] = true;
            else
              all_done = false;
            outs.emplace_back(j.key, std::move(o));
          }
          it = all_done || spec_.reject_whole_request ? jobs_.erase(it) : std::next(it);
        }
      }
      for (auto& [k, o] : outs) server_->send(k, std::move(o));
      std::this_thread::sleep_for(500us);
    }
  }

  FakeSpec spec_;
  std::mutex mu_;
  std::unordered_map<PeerRequest, Job> jobs_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<RequestServer> server_;
  std::thread thread_;
};

// Everything a client handler saw, per request.
struct Seen {
  std::vector<std::vector<int32_t>> tokens;       // per sample index
  std::vector<std::vector<FinishReason>> finals;  // per sample index
  std::vector<std::string> errors;
  int outputs = 0;
  bool logprobs_ok = true;
};

class Collector {
 public:
  OutputHandler handler(uint64_t id, int n) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      Seen& s = seen_[id];
      s.tokens.resize(n);
      s.finals.resize(n);
    }
    return [this, id](const engine::RequestOutput& o) {
      std::lock_guard<std::mutex> lock(mu_);
      Seen& s = seen_[id];
      ++s.outputs;
      EXPECT_EQ(o.id, id);
      ASSERT_LT(static_cast<size_t>(o.index), s.tokens.size());
      EXPECT_TRUE(s.finals[o.index].empty()) << "output after the final one";
      s.tokens[o.index].insert(s.tokens[o.index].end(), o.new_tokens.begin(), o.new_tokens.end());
      for (size_t i = 0; i < o.logprobs.size(); ++i)
        if (o.logprobs[i].token != o.new_tokens[i] || o.logprobs[i].top.size() != 1)
          s.logprobs_ok = false;
      if (o.finish != FinishReason::kNone) {
        s.finals[o.index].push_back(o.finish);
        s.errors.push_back(o.error);
        ++finals_;
      }
    };
  }
  Seen get(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_[id];
  }
  int finals() {
    std::lock_guard<std::mutex> lock(mu_);
    return finals_;
  }
  int outputs(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_[id].outputs;
  }

 private:
  std::mutex mu_;
  std::map<uint64_t, Seen> seen_;
  int finals_ = 0;
};

GenerateRequest make_req(uint64_t id, int n = 1, int top_logprobs = -1) {
  GenerateRequest r;
  r.request_id = id;
  r.token_ids = {1, 2, 3};
  r.params.n = n;
  r.params.top_logprobs = top_logprobs;
  return r;
}

TEST(RequestServer, EndpointResolvesWildcardAndPort) {
  RequestServer a("tcp://0.0.0.0:0", {});
  EXPECT_EQ(a.endpoint().rfind("tcp://127.0.0.1:", 0), 0u) << a.endpoint();
  EXPECT_NE(a.endpoint(), "tcp://127.0.0.1:0");
  RequestServerOptions o;
  o.advertise_host = "10.1.2.3";
  RequestServer b("tcp://*:0", {}, o);
  EXPECT_EQ(b.endpoint().rfind("tcp://10.1.2.3:", 0), 0u) << b.endpoint();
  // The port is taken now.
  try {
    RequestServer c(a.endpoint(), {});
    ADD_FAILURE() << "bound twice";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
  }
}

TEST(RequestPlane, StreamsEverySampleInOrder) {
  FakeWorker w(FakeSpec{});
  Collector col;  // outlives the client, whose destructor may still call handlers
  RequestClient c;
  c.generate(w.endpoint(), make_req(7, 2, 1), col.handler(7, 2));
  EXPECT_EQ(c.inflight(w.endpoint()), 1u);
  ASSERT_TRUE(wait_until([&] { return col.finals() == 2; }));
  Seen s = col.get(7);
  for (int i = 0; i < 2; ++i) {
    std::vector<int32_t> want;
    for (int j = 0; j < 5; ++j) want.push_back(7000 + i * 100 + j);
    EXPECT_EQ(s.tokens[i], want);
    EXPECT_EQ(s.finals[i], std::vector<FinishReason>{FinishReason::kStop});
  }
  EXPECT_TRUE(s.logprobs_ok);
  EXPECT_EQ(s.outputs, 10);
  EXPECT_TRUE(wait_until([&] { return c.inflight(w.endpoint()) == 0; }));
  // Done requests are gone: the id can be reused.
  c.generate(w.endpoint(), make_req(8), col.handler(8, 1));
  ASSERT_TRUE(wait_until([&] { return col.finals() == 3; }));
}

TEST(RequestPlane, DuplicateIdInFlightIsRejected) {
  FakeSpec spec;
  spec.tokens = -1;
  FakeWorker w(spec);
  Collector col;  // outlives the client, whose destructor may still call handlers
  RequestClient c;
  c.generate(w.endpoint(), make_req(1), col.handler(1, 1));
  try {
    c.generate(w.endpoint(), make_req(1), col.handler(1, 1));
    ADD_FAILURE() << "duplicate accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

TEST(RequestPlane, AbortEndsEverySampleWithTheWorkersAbort) {
  FakeSpec spec;
  spec.tokens = -1;  // streams forever
  FakeWorker w(spec);
  Collector col;  // outlives the client, whose destructor may still call handlers
  RequestClient c;
  c.generate(w.endpoint(), make_req(3, 3), col.handler(3, 3));
  ASSERT_TRUE(wait_until([&] { return col.outputs(3) >= 9; }));
  c.abort(w.endpoint(), 3);
  c.abort(w.endpoint(), 3);    // idempotent
  c.abort(w.endpoint(), 999);  // unknown: ignored
  ASSERT_TRUE(wait_until([&] { return col.finals() == 3; }));
  Seen s = col.get(3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(s.finals[i], std::vector<FinishReason>{FinishReason::kAbort});
    EXPECT_GE(s.tokens[i].size(), 3u);
  }
  EXPECT_EQ(w.aborts.load(), 1);
  EXPECT_EQ(c.inflight(w.endpoint()), 0u);
  EXPECT_TRUE(wait_until([&] { return w.jobs() == 0; }));
}

TEST(RequestPlane, AbortIgnoredByWorkerEndsAfterGrace) {
  FakeSpec spec;
  spec.tokens = -1;
  spec.honour_abort = false;
  FakeWorker w(spec);
  RequestClientOptions o;
  o.abort_grace = 200ms;
  Collector col;  // outlives the client, whose destructor may still call handlers
  RequestClient c(o);
  c.generate(w.endpoint(), make_req(5, 2), col.handler(5, 2));
  ASSERT_TRUE(wait_until([&] { return col.outputs(5) >= 2; }));
  auto t0 = std::chrono::steady_clock::now();
  c.abort(w.endpoint(), 5);
  ASSERT_TRUE(wait_until([&] { return col.finals() == 2; }));
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 190ms);
  EXPECT_LT(waited, 2000ms);
  Seen s = col.get(5);
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(s.finals[i], std::vector<FinishReason>{FinishReason::kAbort});
  EXPECT_EQ(c.inflight(w.endpoint()), 0u);
  // Later worker outputs for the request are dropped, not delivered.
  std::this_thread::sleep_for(20ms);
  EXPECT_GT(c.dropped_frames(), 0u);
}

TEST(RequestPlane, TwoHundredConcurrentRequestsFromSeveralThreads) {
  FakeSpec spec;
  spec.tokens = 20;
  FakeWorker w1(spec), w2(spec);
  Collector col;  // outlives the client, whose destructor may still call handlers
  RequestClient c;
  constexpr int kThreads = 4, kPerThread = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int k = 0; k < kPerThread; ++k) {
        uint64_t id = 1 + t * kPerThread + k;
        int n = 1 + static_cast<int>(id % 2);
        c.generate(id % 2 ? w1.endpoint() : w2.endpoint(), make_req(id, n), col.handler(id, n));
      }
    });
  for (auto& t : threads) t.join();
  int want_finals = 0;
  for (uint64_t id = 1; id <= kThreads * kPerThread; ++id) want_finals += 1 + id % 2;
  ASSERT_TRUE(wait_until([&] { return col.finals() == want_finals; }, 10000ms))
      << col.finals() << " of " << want_finals;
  for (uint64_t id = 1; id <= kThreads * kPerThread; ++id) {
    Seen s = col.get(id);
    for (size_t i = 0; i < s.tokens.size(); ++i) {
      ASSERT_EQ(s.tokens[i].size(), 20u) << id;
      for (int j = 0; j < 20; ++j)
        ASSERT_EQ(s.tokens[i][j], static_cast<int32_t>(id * 1000 + i * 100 + j));
      EXPECT_EQ(s.finals[i], std::vector<FinishReason>{FinishReason::kStop});
    }
  }
  EXPECT_EQ(c.inflight(w1.endpoint()), 0u);
  EXPECT_EQ(c.inflight(w2.endpoint()), 0u);
  EXPECT_EQ(w1.generates + w2.generates, kThreads * kPerThread);
}

TEST(RequestPlane, FailEndpointGivesOneErrorPerOpenSample) {
  FakeSpec spec;
  spec.tokens = -1;        // samples 1 and 2 never finish
  spec.index0_tokens = 2;  // sample 0 finishes quickly
  FakeWorker w(spec);
  Collector col;  // outlives the client, whose destructor may still call handlers
  RequestClient c;
  constexpr int kRequests = 10;
  for (uint64_t id = 1; id <= kRequests; ++id)
    c.generate(w.endpoint(), make_req(id, 3), col.handler(id, 3));
  ASSERT_TRUE(wait_until([&] { return col.finals() == kRequests; }));  // every sample 0
  ASSERT_TRUE(wait_until([&] { return col.outputs(kRequests) >= 6; }));
  EXPECT_EQ(c.inflight(w.endpoint()), static_cast<size_t>(kRequests));
  c.fail_endpoint(w.endpoint(), "worker w1 at x missed heartbeats");
  EXPECT_EQ(c.inflight(w.endpoint()), 0u);
  ASSERT_TRUE(wait_until([&] { return col.finals() == 3 * kRequests; }));
  std::this_thread::sleep_for(50ms);  // nothing more may arrive
  EXPECT_EQ(col.finals(), 3 * kRequests);
  for (uint64_t id = 1; id <= kRequests; ++id) {
    Seen s = col.get(id);
    EXPECT_EQ(s.finals[0], std::vector<FinishReason>{FinishReason::kStop});
    for (int i = 1; i < 3; ++i)
      EXPECT_EQ(s.finals[i], std::vector<FinishReason>{FinishReason::kError}) << id << " " << i;
    int with_reason = 0;
    for (const auto& e : s.errors) with_reason += e == "worker w1 at x missed heartbeats";
    EXPECT_EQ(with_reason, 2);
  }
  // The endpoint can be used again afterwards (a fresh connection).
  c.generate(w.endpoint(), make_req(100, 1), col.handler(100, 1));
  ASSERT_TRUE(wait_until([&] { return col.get(100).outputs >= 2; }));
}

// A worker declared lost may only be stalled: fail_endpoint sends it one abort per failed request
// before closing, so a worker that reads its socket again drops them instead of serving nobody.
TEST(RequestPlane, FailEndpointTellsTheWorkerToAbortItsRequests) {
  FakeSpec spec;
  spec.tokens = -1;  // never finishes
  FakeWorker w(spec);
  Collector col;
  RequestClient c;
  for (uint64_t id = 1; id <= 4; ++id)
    c.generate(w.endpoint(), make_req(id, 1), col.handler(id, 1));
  ASSERT_TRUE(wait_until([&] { return w.jobs() == 4; }));
  c.fail_endpoint(w.endpoint(), "worker w1 at x missed heartbeats");
  ASSERT_TRUE(wait_until([&] { return col.finals() == 4; }));
  EXPECT_TRUE(wait_until([&] { return w.aborts.load() == 4; }));
  EXPECT_TRUE(wait_until([&] { return w.jobs() == 0; }));  // the worker ended them all
}

TEST(RequestPlane, HandlerThrowGivesEverySampleAnError) {
  FakeSpec spec;
  spec.throw_on_generate = true;
  FakeWorker w(spec);
  Collector col;  // outlives the client, whose destructor may still call handlers
  RequestClient c;
  c.generate(w.endpoint(), make_req(9, 3), col.handler(9, 3));
  ASSERT_TRUE(wait_until([&] { return col.finals() == 3; }));
  Seen s = col.get(9);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(s.finals[i], std::vector<FinishReason>{FinishReason::kError});
  EXPECT_NE(s.errors[0].find("bad request 9"), std::string::npos) << s.errors[0];
  EXPECT_EQ(c.inflight(w.endpoint()), 0u);
}

TEST(RequestPlane, OneErrorOutputEndsAllSamples) {
  FakeSpec spec;
  spec.reject_whole_request = true;
  FakeWorker w(spec);
  Collector col;  // outlives the client, whose destructor may still call handlers
  RequestClient c;
  c.generate(w.endpoint(), make_req(4, 3), col.handler(4, 3));
  ASSERT_TRUE(wait_until([&] { return col.finals() == 3; }));
  Seen s = col.get(4);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(s.finals[i], std::vector<FinishReason>{FinishReason::kError});
    EXPECT_EQ(s.errors[i], "prompt too long");
  }
  EXPECT_EQ(c.inflight(w.endpoint()), 0u);
}

TEST(RequestPlane, MalformedFramesAreDroppedAndServingGoesOn) {
  FakeWorker w(FakeSpec{});
  {
    zmq::context_t ctx;
    zmq::socket_t raw(ctx, zmq::socket_type::dealer);
    raw.set(zmq::sockopt::linger, 1000);
    raw.connect(w.endpoint());
    raw.send(zmq::str_buffer("garbage"));
    std::string wrong = encode(Unregister{"x"});  // valid frame, wrong plane
    raw.send(zmq::buffer(wrong));
    raw.send(zmq::buffer(std::string("\xdd\xff\xff\xff\xff", 5)));
  }
  ASSERT_TRUE(wait_until([&] { return w.server().dropped_frames() == 3; }));
  Collector col;  // outlives the client, whose destructor may still call handlers
  RequestClient c;
  c.generate(w.endpoint(), make_req(1), col.handler(1, 1));
  ASSERT_TRUE(wait_until([&] { return col.finals() == 1; }));
}

TEST(RequestPlane, OutputsForUnknownRequestsAreDropped) {
  std::unique_ptr<RequestServer> server;
  RequestServer::Handlers h;
  h.on_generate = [&](const PeerRequest& key, GenerateRequest req) {
    GenerateOutput stray;
    stray.output.id = key.request_id + 1000;
    stray.output.finish = FinishReason::kStop;
    server->send(PeerRequest{key.peer, key.request_id + 1000}, stray);
    GenerateOutput bad_index;
    bad_index.output.id = key.request_id;
    bad_index.output.index = 5;
    server->send(key, bad_index);
    GenerateOutput done;
    done.output.id = key.request_id;
    done.output.finish = FinishReason::kLength;
    server->send(key, done);
  };
  server = std::make_unique<RequestServer>("tcp://127.0.0.1:0", h);
  Collector col;  // outlives the client, whose destructor may still call handlers
  RequestClient c;
  c.generate(server->endpoint(), make_req(1), col.handler(1, 1));
  ASSERT_TRUE(wait_until([&] { return col.finals() == 1; }));
  EXPECT_EQ(col.get(1).outputs, 1);
  EXPECT_EQ(c.dropped_frames(), 2u);
}

TEST(RequestPlane, DeadServerDoesNotHangTheClient) {
  FakeSpec spec;
  spec.tokens = -1;
  auto w = std::make_unique<FakeWorker>(spec);
  std::string ep = w->endpoint();
  Collector col;  // outlives the client, whose destructor may still call handlers
  auto c = std::make_unique<RequestClient>();
  for (uint64_t id = 1; id <= 5; ++id) c->generate(ep, make_req(id, 2), col.handler(id, 2));
  ASSERT_TRUE(wait_until([&] { return col.outputs(5) >= 2; }));
  auto t0 = std::chrono::steady_clock::now();
  w.reset();  // the worker dies mid-stream
  // Requests and aborts to the dead endpoint return at once.
  for (uint64_t id = 10; id < 60; ++id) c->generate(ep, make_req(id), col.handler(id, 1));
  c->abort(ep, 1);
  EXPECT_EQ(c->inflight(ep), 55u);
  c->fail_endpoint(ep, "worker gone");
  ASSERT_TRUE(wait_until([&] { return col.finals() == 5 * 2 + 50; }));
  // Requests in flight when the client goes away end with an error too.
  c->generate(ep, make_req(100), col.handler(100, 1));
  c.reset();
  EXPECT_EQ(col.get(100).finals[0], std::vector<FinishReason>{FinishReason::kError});
  EXPECT_EQ(col.get(100).errors.back(), "request client stopped");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3000ms);
}

TEST(RequestPlane, BadEndpointFailsItsRequests) {
  Collector col;  // outlives the client, whose destructor may still call handlers
  RequestClient c;
  c.generate("not-an-endpoint", make_req(1, 2), col.handler(1, 2));
  ASSERT_TRUE(wait_until([&] { return col.finals() == 2; }));
  EXPECT_NE(col.get(1).errors[0].find("cannot connect"), std::string::npos);
  EXPECT_EQ(c.inflight("not-an-endpoint"), 0u);
}

}  // namespace
}  // namespace wideserve::runtime
