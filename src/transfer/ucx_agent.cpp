#include "transfer/ucx_agent.h"

#include "common/check.h"
#include "common/logging.h"
#include "transfer/agent_core.h"

#include <sys/epoll.h>
#include <ucp/api/ucp.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <list>
#include <map>

namespace wideserve::transfer {
namespace {

using Clock = std::chrono::steady_clock;

constexpr unsigned kNotifyAmId = 0x5753;  // "WS"
constexpr size_t kMaxInflightPerTransfer = 256;
constexpr size_t kIssueBudget = 512;  // puts issued per loop turn before progressing UCX again

std::string ucs_error(ucs_status_t s) {
  return ucs_status_string(s);
}

struct LocalRegion {
  char* base = nullptr;
  size_t length = 0;
  MemoryKind kind = MemoryKind::kHost;
  ucp_mem_h memh = nullptr;
  std::string rkey;  // packed
};

struct UcxPeer;

enum class Phase { kIssuing, kFlushing, kNotifying, kFinished };

struct UcxTransfer {
  uint64_t id = 0;
  UcxPeer* peer = nullptr;
  std::vector<PlannedOp> ops;
  std::vector<ucp_mem_h> local_memh;  // per op, or null
  size_t next_op = 0;
  size_t inflight = 0;  // UCX requests whose callback has not run yet
  Phase phase = Phase::kIssuing;
  std::string header;  // our agent name (AM header)
  std::string notify;
  class UcxAgent* agent = nullptr;
};

struct UcxPeer {
  std::string name;
  uint64_t gen = 0;
  ucp_ep_h ep = nullptr;
  std::vector<RemoteRegion> regions;
  std::vector<ucp_rkey_h> rkeys;
  bool failed = false;
  std::string error;
  std::list<UcxTransfer*> active;
  Clock::time_point last_progress;
};

class UcxAgent final : public AgentBase {
 public:
  explicit UcxAgent(const AgentOptions& opts);
  ~UcxAgent() override;

  const char* backend() const override { return "ucx"; }
  RegionId register_memory(void* base, size_t bytes, MemoryKind kind) override;
  void deregister_memory(RegionId region) override;
  std::string metadata() const override;
  void add_remote(const std::string& peer_name, const std::string& metadata) override;
  void remove_remote(const std::string& peer_name) override;
  TransferHandle write(const std::string& peer, std::span<const WriteOp> ops,
                       std::string notify) override;

  // UCX callbacks (progress thread).
  void on_op_done(UcxTransfer* t, ucs_status_t s, const char* what);
  void on_flush_done(UcxTransfer* t, ucs_status_t s);
  void on_ep_error(ucp_ep_h ep, ucs_status_t s) { ep_errors_.push_back({ep, s}); }
  void on_notification(std::string peer, std::string msg) {
    inbox_.push({std::move(peer), std::move(msg)});
  }

 private:
  void run() override;
  void stop_transfer(uint64_t id) override;
  bool issue();
  void check_timeouts();
  void handle_ep_errors();
  void collect_finished();
  void start_transfer(std::unique_ptr<UcxTransfer> t, const std::string& peer, uint64_t gen);
  void finish(UcxTransfer* t, TransferState state, std::string error);
  void send_notification(UcxTransfer* t);
  void drop_peer(UcxPeer* p, const std::string& reason);
  void close_ep(ucp_ep_h ep);
  ucp_mem_h find_local_memh(const void* addr, size_t len) const;
  ucp_request_param_t op_param(UcxTransfer* t) const;

  ucp_context_h context_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  std::string worker_address_;
  int epfd_ = -1;
  int worker_efd_ = -1;

  std::atomic<RegionId> next_region_{1};

  // Progress-thread state.
  std::map<RegionId, LocalRegion> regions_;
  std::map<std::string, std::unique_ptr<UcxPeer>> peers_;
  std::vector<std::unique_ptr<UcxPeer>> retired_peers_;  // kept alive for callbacks' pointers
  std::map<uint64_t, std::unique_ptr<UcxTransfer>> transfers_;
  std::vector<std::pair<ucp_ep_h, ucs_status_t>> ep_errors_;
  std::vector<void*> closing_;  // ep close requests in flight
};

void put_cb(void* req, ucs_status_t s, void* user) {
  auto* t = static_cast<UcxTransfer*>(user);
  t->agent->on_op_done(t, s, "put");
  ucp_request_free(req);
}

void flush_cb(void* req, ucs_status_t s, void* user) {
  auto* t = static_cast<UcxTransfer*>(user);
  t->agent->on_flush_done(t, s);
  ucp_request_free(req);
}

void am_cb(void* req, ucs_status_t s, void* user) {
  auto* t = static_cast<UcxTransfer*>(user);
  t->agent->on_op_done(t, s, "notification");
  ucp_request_free(req);
}

void ep_error_cb(void* arg, ucp_ep_h ep, ucs_status_t s) {
  static_cast<UcxAgent*>(arg)->on_ep_error(ep, s);
}

ucs_status_t am_recv_cb(void* arg, const void* header, size_t header_length, void* data,
                        size_t length, const ucp_am_recv_param_t* param) {
  auto* agent = static_cast<UcxAgent*>(arg);
  std::string peer(static_cast<const char*>(header), header_length);
  if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
    // Senders force eager; a rendezvous here means a foreign sender.
    WS_LOG_ERROR("transfer: dropped a rendezvous notification from '{}'", peer);
    return UCS_OK;
  }
  agent->on_notification(std::move(peer), std::string(static_cast<const char*>(data), length));
  return UCS_OK;
}

UcxAgent::UcxAgent(const AgentOptions& opts) : AgentBase(opts) {
  ucp_config_t* config = nullptr;
  ucs_status_t s = ucp_config_read(nullptr, nullptr, &config);
  WS_CHECK_CODE(kUnavailable, s == UCS_OK, "ucp_config_read: {}", ucs_error(s));
  auto modify = [&](const char* key, const std::string& value) {
    if (value.empty()) return;
    ucs_status_t ms = ucp_config_modify(config, key, value.c_str());
    if (ms != UCS_OK) ucp_config_release(config);
    WS_CHECK_ARG(ms == UCS_OK, "bad UCX {} '{}': {}", key, value, ucs_error(ms));
  };
  modify("TLS", opts_.ucx_transports);
  modify("NET_DEVICES", opts_.ucx_net_devices);

  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_NAME;
  params.features = UCP_FEATURE_RMA | UCP_FEATURE_AM | UCP_FEATURE_WAKEUP;
  params.name = opts_.name.c_str();
  s = ucp_init(&params, config, &context_);
  ucp_config_release(config);
  WS_CHECK_CODE(kUnavailable, s == UCS_OK, "ucp_init (UCX_TLS='{}'): {}", opts_.ucx_transports,
                ucs_error(s));

  ucp_worker_params_t wp{};
  wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  wp.thread_mode = UCS_THREAD_MODE_SINGLE;  // only the progress thread touches the worker
  s = ucp_worker_create(context_, &wp, &worker_);
  if (s != UCS_OK) ucp_cleanup(context_);
  WS_CHECK_CODE(kUnavailable, s == UCS_OK, "ucp_worker_create: {}", ucs_error(s));

  ucp_address_t* addr = nullptr;
  size_t addr_len = 0;
  s = ucp_worker_get_address(worker_, &addr, &addr_len);
  WS_CHECK_CODE(kUnavailable, s == UCS_OK, "ucp_worker_get_address: {}", ucs_error(s));
  worker_address_.assign(reinterpret_cast<const char*>(addr), addr_len);
  ucp_worker_release_address(worker_, addr);

  ucp_am_handler_param_t hp{};
  hp.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_FLAGS |
                  UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG;
  hp.id = kNotifyAmId;
  hp.flags = UCP_AM_FLAG_WHOLE_MSG;
  hp.cb = am_recv_cb;
  hp.arg = this;
  s = ucp_worker_set_am_recv_handler(worker_, &hp);
  WS_CHECK_CODE(kUnavailable, s == UCS_OK, "ucp_worker_set_am_recv_handler: {}", ucs_error(s));

  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  WS_CHECK(epfd_ >= 0, "epoll_create1 failed");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = cmdq_.wake_fd();
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, cmdq_.wake_fd(), &ev);
  if (ucp_worker_get_efd(worker_, &worker_efd_) == UCS_OK) {
    ev.data.fd = worker_efd_;
    ::epoll_ctl(epfd_, EPOLL_CTL_ADD, worker_efd_, &ev);
  } else {
    worker_efd_ = -1;  // no wakeup support: the loop polls every millisecond instead
  }
  start_progress();
}

UcxAgent::~UcxAgent() {
  stop_progress();
  for (auto& [name, p] : peers_)
    drop_peer(p.get(), "transfer agent '" + opts_.name + "' shut down");
  auto deadline =
      Clock::now() + std::min<std::chrono::milliseconds>(opts_.timeout, std::chrono::seconds(2));
  while (!closing_.empty() && Clock::now() < deadline) {
    ucp_worker_progress(worker_);
    std::erase_if(closing_, [](void* r) {
      if (ucp_request_check_status(r) == UCS_INPROGRESS) return false;
      ucp_request_free(r);
      return true;
    });
  }
  for (auto& [id, r] : regions_) ucp_mem_unmap(context_, r.memh);
  if (epfd_ >= 0) ::close(epfd_);
  // Requests still in flight (a stuck close) are owned by the worker and go with it.
  ucp_worker_destroy(worker_);
  ucp_cleanup(context_);
}

void UcxAgent::run() {
  cmdq_.set_owner(std::this_thread::get_id());
  while (!stopping()) {
    bool busy = cmdq_.drain() > 0;
    busy |= issue();
    for (int i = 0; i < 64 && ucp_worker_progress(worker_); ++i) busy = true;
    if (!ep_errors_.empty()) handle_ep_errors();
    check_timeouts();
    collect_finished();
    if (!closing_.empty()) {
      std::erase_if(closing_, [](void* r) {
        if (ucp_request_check_status(r) == UCS_INPROGRESS) return false;
        ucp_request_free(r);
        return true;
      });
    }
    if (busy) continue;
    int wait_ms = transfers_.empty() && closing_.empty() ? 100 : 1;
    if (worker_efd_ >= 0) {
      ucs_status_t s = ucp_worker_arm(worker_);
      if (s == UCS_ERR_BUSY) continue;
    } else {
      wait_ms = 1;
    }
    epoll_event evs[4];
    ::epoll_wait(epfd_, evs, 4, wait_ms);
  }
}

ucp_mem_h UcxAgent::find_local_memh(const void* addr, size_t len) const {
  const char* a = static_cast<const char*>(addr);
  for (const auto& [id, r] : regions_) {
    if (a >= r.base && len <= r.length && size_t(a - r.base) <= r.length - len) return r.memh;
  }
  return nullptr;
}

ucp_request_param_t UcxAgent::op_param(UcxTransfer* t) const {
  ucp_request_param_t p{};
  p.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
  p.user_data = t;
  return p;
}

bool UcxAgent::issue() {
  size_t budget = kIssueBudget;
  bool did = false;
  for (auto& [id, tp] : transfers_) {
    UcxTransfer* t = tp.get();
    if (t->phase != Phase::kIssuing) continue;
    UcxPeer* p = t->peer;
    while (t->next_op < t->ops.size() && t->inflight < kMaxInflightPerTransfer && budget > 0) {
      const PlannedOp& op = t->ops[t->next_op];
      ucp_request_param_t param = op_param(t);
      param.cb.send = put_cb;
      if (ucp_mem_h memh = t->local_memh[t->next_op]) {
        param.op_attr_mask |= UCP_OP_ATTR_FIELD_MEMH;
        param.memh = memh;
      }
      ucs_status_ptr_t r =
          ucp_put_nbx(p->ep, op.op.local, op.op.length, op.op.remote, p->rkeys[op.region], &param);
      ++t->next_op;
      --budget;
      did = true;
      if (UCS_PTR_IS_ERR(r)) {
        finish(t, TransferState::kFailed,
               fmt::format("put to peer '{}' failed: {}", p->name, ucs_error(UCS_PTR_STATUS(r))));
        break;
      }
      if (r != nullptr) {
        ++t->inflight;
      } else {
        p->last_progress = Clock::now();
      }
    }
    if (t->phase == Phase::kIssuing && t->next_op == t->ops.size()) {
      // Every put is posted; the endpoint flush completes once they are all visible remotely.
      t->phase = Phase::kFlushing;
      ucp_request_param_t param = op_param(t);
      param.cb.send = flush_cb;
      ucs_status_ptr_t r = ucp_ep_flush_nbx(p->ep, &param);
      if (UCS_PTR_IS_ERR(r)) {
        finish(t, TransferState::kFailed,
               fmt::format("flush to peer '{}' failed: {}", p->name, ucs_error(UCS_PTR_STATUS(r))));
      } else if (r != nullptr) {
        ++t->inflight;
      } else {
        ++t->inflight;  // on_flush_done expects to release one
        on_flush_done(t, UCS_OK);
      }
    }
    if (budget == 0) break;
  }
  return did;
}

void UcxAgent::on_op_done(UcxTransfer* t, ucs_status_t s, const char* what) {
  --t->inflight;
  t->peer->last_progress = Clock::now();
  if (s != UCS_OK && t->phase != Phase::kFinished) {
    finish(t, TransferState::kFailed,
           fmt::format("{} to peer '{}' failed: {}", what, t->peer->name, ucs_error(s)));
    return;
  }
  if (t->phase == Phase::kNotifying && t->inflight == 0) finish(t, TransferState::kDone, {});
}

void UcxAgent::on_flush_done(UcxTransfer* t, ucs_status_t s) {
  --t->inflight;
  t->peer->last_progress = Clock::now();
  if (t->phase != Phase::kFlushing) return;  // failed or cancelled meanwhile
  if (s != UCS_OK) {
    finish(t, TransferState::kFailed,
           fmt::format("flush to peer '{}' failed: {}", t->peer->name, ucs_error(s)));
    return;
  }
  if (t->notify.empty()) {
    finish(t, TransferState::kDone, {});
    return;
  }
  send_notification(t);
}

void UcxAgent::send_notification(UcxTransfer* t) {
  t->phase = Phase::kNotifying;
  ucp_request_param_t param = op_param(t);
  param.op_attr_mask |= UCP_OP_ATTR_FIELD_FLAGS;
  param.flags = UCP_AM_SEND_FLAG_EAGER;
  param.cb.send = am_cb;
  ucs_status_ptr_t r = ucp_am_send_nbx(t->peer->ep, kNotifyAmId, t->header.data(), t->header.size(),
                                       t->notify.data(), t->notify.size(), &param);
  if (UCS_PTR_IS_ERR(r)) {
    finish(t, TransferState::kFailed,
           fmt::format("notification to peer '{}' failed: {}", t->peer->name,
                       ucs_error(UCS_PTR_STATUS(r))));
  } else if (r != nullptr) {
    ++t->inflight;
  } else if (t->inflight == 0) {
    finish(t, TransferState::kDone, {});
  }
}

void UcxAgent::finish(UcxTransfer* t, TransferState state, std::string error) {
  if (t->phase == Phase::kFinished) return;
  t->phase = Phase::kFinished;
  t->peer->active.remove(t);
  if (state == TransferState::kFailed) WS_LOG_WARN("transfer {}: {}", t->id, error);
  book_.finish(t->id, state, std::move(error));
}

void UcxAgent::collect_finished() {
  std::erase_if(transfers_, [](const auto& kv) {
    return kv.second->phase == Phase::kFinished && kv.second->inflight == 0;
  });
}

void UcxAgent::check_timeouts() {
  auto now = Clock::now();
  for (auto& [name, p] : peers_) {
    if (p->failed || p->active.empty() || now - p->last_progress <= opts_.timeout) continue;
    drop_peer(p.get(), fmt::format("no progress writing to peer '{}' for {} ms (peer dead or "
                                   "unreachable?)",
                                   name, opts_.timeout.count()));
  }
}

void UcxAgent::handle_ep_errors() {
  auto errors = std::move(ep_errors_);
  ep_errors_.clear();
  for (auto [ep, s] : errors) {
    for (auto& [name, p] : peers_) {
      if (p->ep == ep) {
        drop_peer(p.get(), fmt::format("connection to peer '{}' failed: {}", name, ucs_error(s)));
      }
    }
  }
}

void UcxAgent::close_ep(ucp_ep_h ep) {
  ucp_request_param_t p{};
  p.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
  p.flags = UCP_EP_CLOSE_FLAG_FORCE;
  ucs_status_ptr_t r = ucp_ep_close_nbx(ep, &p);
  if (r != nullptr && !UCS_PTR_IS_ERR(r)) closing_.push_back(r);
}

void UcxAgent::drop_peer(UcxPeer* p, const std::string& reason) {
  if (p->failed) return;
  p->failed = true;
  p->error = reason;
  auto active = p->active;
  for (UcxTransfer* t : active) finish(t, TransferState::kFailed, reason);
  for (ucp_rkey_h k : p->rkeys) ucp_rkey_destroy(k);
  p->rkeys.clear();
  if (p->ep) {
    close_ep(p->ep);  // purges outstanding requests; their callbacks see the error
    p->ep = nullptr;
  }
}

RegionId UcxAgent::register_memory(void* base, size_t bytes, MemoryKind kind) {
  WS_CHECK_CODE(kUnimplemented, kind == MemoryKind::kHost,
                "transfer agent: the ucx agent registers host memory only, not {} memory (the tcp "
                "agent stages GPU memory through the host)",
                memory_kind_name(kind));
  WS_CHECK_ARG(base != nullptr && bytes > 0, "register_memory needs a non-empty region");
  return cmdq_.call([&] {
    ucp_mem_map_params_t mp{};
    mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
    mp.address = base;
    mp.length = bytes;
    LocalRegion r{static_cast<char*>(base), bytes, kind, nullptr, {}};
    ucs_status_t s = ucp_mem_map(context_, &mp, &r.memh);
    WS_CHECK_CODE(kResourceExhausted, s == UCS_OK, "ucp_mem_map({} bytes): {}", bytes,
                  ucs_error(s));
    void* rk = nullptr;
    size_t rk_len = 0;
    s = ucp_rkey_pack(context_, r.memh, &rk, &rk_len);
    if (s != UCS_OK) ucp_mem_unmap(context_, r.memh);
    WS_CHECK_CODE(kInternal, s == UCS_OK, "ucp_rkey_pack: {}", ucs_error(s));
    r.rkey.assign(static_cast<const char*>(rk), rk_len);
    ucp_rkey_buffer_release(rk);
    RegionId id = next_region_++;
    regions_.emplace(id, std::move(r));
    return id;
  });
}

void UcxAgent::deregister_memory(RegionId region) {
  cmdq_.call([&] {
    auto it = regions_.find(region);
    WS_CHECK_ARG(it != regions_.end(), "unknown memory region {}", region);
    ucp_mem_unmap(context_, it->second.memh);
    regions_.erase(it);
  });
}

std::string UcxAgent::metadata() const {
  return cmdq_.call([&] {
    nlohmann::json j;
    j["backend"] = "ucx";
    j["name"] = opts_.name;
    j["address"] = base64_encode(worker_address_);
    auto regions = nlohmann::json::array();
    for (const auto& [id, r] : regions_) {
      regions.push_back({{"base", reinterpret_cast<uint64_t>(r.base)},
                         {"length", r.length},
                         {"kind", memory_kind_name(r.kind)},
                         {"rkey", base64_encode(r.rkey)}});
    }
    j["regions"] = std::move(regions);
    return j.dump();
  });
}

void UcxAgent::add_remote(const std::string& peer_name, const std::string& metadata) {
  std::string address;
  auto regions = parse_peer_metadata(peer_name, metadata, "ucx", /*with_rkey=*/true,
                                     [&](const nlohmann::json& j) {
                                       address = base64_decode(j.at("address").get<std::string>());
                                     });
  uint64_t gen = directory_.new_generation();
  cmdq_.call([&] {
    auto p = std::make_unique<UcxPeer>();
    p->name = peer_name;
    p->gen = gen;
    p->regions = regions;
    p->last_progress = Clock::now();
    ucp_ep_params_t ep{};
    ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                    UCP_EP_PARAM_FIELD_ERR_HANDLER;
    ep.address = reinterpret_cast<const ucp_address_t*>(address.data());
    ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
    ep.err_handler.cb = ep_error_cb;
    ep.err_handler.arg = this;
    ucs_status_t s = ucp_ep_create(worker_, &ep, &p->ep);
    if (s == UCS_ERR_UNREACHABLE) {
      // Shared-memory-only transports (UCX_TLS=posix,cma...) cannot report a dead peer in UCX
      // 1.13; connect without peer-failure handling and rely on the no-progress timeout.
      ep.field_mask &= ~uint64_t(UCP_EP_PARAM_FIELD_ERR_HANDLER);
      ep.err_mode = UCP_ERR_HANDLING_MODE_NONE;
      s = ucp_ep_create(worker_, &ep, &p->ep);
      if (s == UCS_OK) {
        WS_LOG_WARN(
            "transfer: UCX transports '{}' cannot detect the death of peer '{}'; relying "
            "on the {} ms no-progress timeout",
            opts_.ucx_transports, peer_name, opts_.timeout.count());
      }
    }
    WS_CHECK_CODE(kUnavailable, s == UCS_OK, "cannot reach transfer peer '{}': {}", peer_name,
                  ucs_error(s));
    for (const auto& r : regions) {
      ucp_rkey_h k = nullptr;
      s = ucp_ep_rkey_unpack(p->ep, r.rkey.data(), &k);
      if (s != UCS_OK) {
        drop_peer(p.get(), "bad rkey");
        retired_peers_.push_back(std::move(p));
        WS_THROW(kInvalidArgument, "bad remote key from peer '{}': {}", peer_name, ucs_error(s));
      }
      p->rkeys.push_back(k);
    }
    auto it = peers_.find(peer_name);
    if (it != peers_.end()) {
      drop_peer(it->second.get(), fmt::format("peer '{}' was replaced", peer_name));
      retired_peers_.push_back(std::move(it->second));
      it->second = std::move(p);
    } else {
      peers_.emplace(peer_name, std::move(p));
    }
  });
  directory_.set(peer_name, gen, std::move(regions));
}

void UcxAgent::remove_remote(const std::string& peer_name) {
  directory_.erase(peer_name);
  cmdq_.call([&] {
    auto it = peers_.find(peer_name);
    if (it == peers_.end()) return;
    drop_peer(it->second.get(), fmt::format("peer '{}' removed", peer_name));
    retired_peers_.push_back(std::move(it->second));
    peers_.erase(it);
  });
}

TransferHandle UcxAgent::write(const std::string& peer, std::span<const WriteOp> ops,
                               std::string notify) {
  auto plan = directory_.plan(peer, ops, notify);
  auto t = std::make_unique<UcxTransfer>();
  t->id = book_.create();
  t->ops = std::move(plan.ops);
  t->header = opts_.name;
  t->notify = std::move(notify);
  t->agent = this;
  TransferHandle h{t->id};
  cmdq_.post([this, tp = t.release(), peer, gen = plan.gen]() mutable {
    start_transfer(std::unique_ptr<UcxTransfer>(tp), peer, gen);
  });
  return h;
}

void UcxAgent::start_transfer(std::unique_ptr<UcxTransfer> t, const std::string& peer,
                              uint64_t gen) {
  UcxPeer* p = admit_transfer(book_, peers_, peer, gen, t->id);
  if (!p) return;
  t->peer = p;
  t->local_memh.reserve(t->ops.size());
  for (const auto& op : t->ops) t->local_memh.push_back(find_local_memh(op.op.local, op.op.length));
  if (p->active.empty()) p->last_progress = Clock::now();
  p->active.push_back(t.get());
  uint64_t id = t->id;
  transfers_.emplace(id, std::move(t));
}

void UcxAgent::stop_transfer(uint64_t id) {
  auto it = transfers_.find(id);
  if (it == transfers_.end()) return;
  UcxTransfer* t = it->second.get();
  if (t->phase == Phase::kFinished) return;
  t->phase = Phase::kFinished;  // status was already set by cancel()/release()
  t->peer->active.remove(t);
}

}  // namespace

std::unique_ptr<TransferAgent> make_ucx_agent(const AgentOptions& opts) {
  return std::make_unique<UcxAgent>(opts);
}

}  // namespace wideserve::transfer
