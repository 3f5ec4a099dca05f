#include "dist/gloo_group.h"

#include <gloo/allgather.h>
#include <gloo/alltoall.h>
#include <gloo/alltoallv.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>

#include <cstring>

#include "common/check.h"
#include "dist/tcp_store.h"

namespace wideserve::dist {
namespace {

// Gloo throws its own exception types; the rest of wideserve speaks Error.
template <typename F>
void guarded(const char* what, F&& f) {
  try {
    f();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    WS_THROW(kUnavailable, "gloo {}: {}", what, e.what());
  }
}

class GlooGroup : public ProcessGroup {
 public:
  GlooGroup(int rank, int size, const GlooOptions& o) : rank_(rank), size_(size) {
    WS_CHECK_ARG(size >= 1 && rank >= 0 && rank < size, "gloo group: rank {} of {}", rank, size);
    guarded("rendezvous", [&] {
      store_ = std::make_unique<TcpStore>(o.store_host, o.store_port, o.timeout);
      gloo::rendezvous::PrefixStore prefixed(o.prefix, *store_);
      gloo::transport::tcp::attr attr;
      std::string bind = o.bind_host;
      if (bind.empty() && (o.store_host == "127.0.0.1" || o.store_host == "localhost"))
        bind = "127.0.0.1";
      if (!bind.empty()) attr.hostname = bind;
      device_ = gloo::transport::tcp::CreateDevice(attr);
      auto ctx = std::make_shared<gloo::rendezvous::Context>(rank, size);
      ctx->setTimeout(o.timeout);
      ctx->connectFullMesh(prefixed, device_);
      ctx_ = ctx;
    });
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void barrier() override {
    guarded("barrier", [&] {
      gloo::BarrierOptions opts(ctx_);
      gloo::barrier(opts);
    });
  }

  void all_gather(const void* in, size_t bytes, void* out) override {
    if (bytes == 0) return barrier();
    guarded("all_gather", [&] {
      gloo::AllgatherOptions opts(ctx_);
      opts.setInput(const_cast<char*>(static_cast<const char*>(in)), bytes);
      opts.setOutput(static_cast<char*>(out), bytes * size_);
      gloo::allgather(opts);
    });
  }

  void all_to_all(const void* in, size_t bytes, void* out) override {
    if (bytes == 0) return barrier();
    guarded("all_to_all", [&] {
      gloo::AlltoallOptions opts(ctx_);
      opts.setInput(const_cast<char*>(static_cast<const char*>(in)), bytes * size_);
      opts.setOutput(static_cast<char*>(out), bytes * size_);
      gloo::alltoall(opts);
    });
  }

  void all_to_all_v(const void* in, std::span<const int64_t> send_bytes, void* out,
                    std::span<const int64_t> recv_bytes) override {
    // Gloo rejects null buffers: point empty sides at a dummy byte.
    int64_t ts = 0, tr = 0;
    for (auto b : send_bytes) ts += b;
    for (auto b : recv_bytes) tr += b;
    char dummy_in = 0, dummy_out = 0;
    guarded("all_to_all_v", [&] {
      gloo::AlltoallvOptions opts(ctx_);
      opts.setInput(ts ? const_cast<char*>(static_cast<const char*>(in)) : &dummy_in,
                    std::vector<int64_t>(send_bytes.begin(), send_bytes.end()));
      opts.setOutput(tr ? static_cast<char*>(out) : &dummy_out,
                     std::vector<int64_t>(recv_bytes.begin(), recv_bytes.end()));
      gloo::alltoallv(opts);
    });
  }

  void broadcast(void* data, size_t bytes, int root) override {
    if (bytes == 0) return barrier();
    guarded("broadcast", [&] {
      gloo::BroadcastOptions opts(ctx_);
      opts.setRoot(root);
      if (rank_ == root) opts.setInput(static_cast<char*>(data), bytes);
      opts.setOutput(static_cast<char*>(data), bytes);
      gloo::broadcast(opts);
    });
  }

 private:
  int rank_, size_;
  std::unique_ptr<TcpStore> store_;
  std::shared_ptr<gloo::transport::Device> device_;
  std::shared_ptr<gloo::Context> ctx_;
};

}  // namespace

std::unique_ptr<ProcessGroup> make_gloo_group(int rank, int size, const GlooOptions& opts) {
  return std::make_unique<GlooGroup>(rank, size, opts);
}

}  // namespace wideserve::dist
