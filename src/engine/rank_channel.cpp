#include "engine/rank_channel.h"

#include <cstring>

#include "common/check.h"

namespace wideserve::engine {
namespace {

class Writer {
 public:
  template <typename T>
  void pod(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void bytes(std::string_view b) {
    pod<uint64_t>(b.size());
    out_.append(b);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view d, const char* what) : d_(d), what_(what) {}
  template <typename T>
  T pod() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, d_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string_view bytes() {
    const uint64_t n = pod<uint64_t>();
    need(n);
    std::string_view v = d_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  uint64_t count() {
    const uint64_t n = pod<uint64_t>();
    // Every element takes at least one byte: a corrupt count fails here, not in an allocation.
    WS_CHECK_CODE(kDataLoss, n <= d_.size() - pos_, "malformed {}: count {}", what_, n);
    return n;
  }
  void end() const {
    WS_CHECK_CODE(kDataLoss, pos_ == d_.size(), "malformed {}: {} trailing bytes", what_,
                  d_.size() - pos_);
  }

 private:
  void need(uint64_t n) const {
    WS_CHECK_CODE(kDataLoss, n <= d_.size() - pos_, "malformed {}: truncated", what_);
  }
  std::string_view d_;
  size_t pos_ = 0;
  const char* what_;
};

void write_stats(Writer& w, const EngineStats& s) {
  for (int64_t v :
       {s.running, s.waiting, s.pages_total, s.pages_free, s.pages_cached, s.pages_evictable,
        s.prefix_hit_tokens, s.generated_tokens, s.retractions, s.steps})
    w.pod<int64_t>(v);
}

EngineStats read_stats(Reader& r) {
  EngineStats s;
  for (int64_t* v :
       {&s.running, &s.waiting, &s.pages_total, &s.pages_free, &s.pages_cached, &s.pages_evictable,
        &s.prefix_hit_tokens, &s.generated_tokens, &s.retractions, &s.steps})
    *v = r.pod<int64_t>();
  return s;
}

}  // namespace

std::string encode_plan(const RankPlan& p, const RankWire& w) {
  Writer o;
  o.pod<int32_t>(static_cast<int32_t>(p.command));
  o.pod<uint64_t>(p.work.size());
  for (const auto& k : p.work) {
    o.pod<int32_t>(k.rank);
    o.pod<uint64_t>(k.adds.size());
    for (const auto& a : k.adds) o.bytes(w.encode_request(a));
    o.pod<uint64_t>(k.aborts.size());
    for (uint64_t id : k.aborts) o.pod<uint64_t>(id);
  }
  return o.take();
}

RankPlan decode_plan(std::string_view data, const RankWire& w) {
  Reader r(data, "rank plan");
  RankPlan p;
  const int32_t c = r.pod<int32_t>();
  WS_CHECK_CODE(kDataLoss, c >= 1 && c <= 4, "malformed rank plan: command {}", c);
  p.command = static_cast<RankCommand>(c);
  p.work.resize(r.count());
  for (auto& k : p.work) {
    k.rank = r.pod<int32_t>();
    k.adds.resize(r.count());
    for (auto& a : k.adds) a = w.decode_request(r.bytes());
    k.aborts.resize(r.count());
    for (auto& id : k.aborts) id = r.pod<uint64_t>();
  }
  r.end();
  return p;
}

std::string encode_report(const RankReport& rep, const RankWire& w) {
  Writer o;
  o.pod<uint8_t>(rep.has_work ? 1 : 0);
  write_stats(o, rep.stats);
  o.pod<uint64_t>(rep.outputs.size());
  for (const auto& x : rep.outputs) {
    o.pod<uint8_t>(x.done ? 1 : 0);
    o.bytes(w.encode_output(x.output));
  }
  o.pod<uint64_t>(rep.kv_changes.size());
  for (const auto& c : rep.kv_changes) {
    o.pod<uint8_t>(static_cast<uint8_t>(c.kind));
    o.pod<uint8_t>(c.parent.has_value() ? 1 : 0);
    o.pod<uint64_t>(c.parent.value_or(0));
    o.pod<uint64_t>(c.blocks.size());
    for (const auto& b : c.blocks) {
      o.pod<uint64_t>(b.hash);
      o.pod<uint64_t>(b.tokens_hash);
    }
    o.pod<uint64_t>(c.removed.size());
    for (uint64_t h : c.removed) o.pod<uint64_t>(h);
  }
  return o.take();
}

RankReport decode_report(std::string_view data, const RankWire& w) {
  Reader r(data, "rank report");
  RankReport rep;
  rep.has_work = r.pod<uint8_t>() != 0;
  rep.stats = read_stats(r);
  rep.outputs.resize(r.count());
  for (auto& x : rep.outputs) {
    x.done = r.pod<uint8_t>() != 0;
    x.output = w.decode_output(r.bytes());
  }
  rep.kv_changes.resize(r.count());
  for (auto& c : rep.kv_changes) {
    const uint8_t kind = r.pod<uint8_t>();
    WS_CHECK_CODE(kDataLoss, kind <= 2, "malformed rank report: cache change kind {}", kind);
    c.kind = static_cast<kvcache::KvCacheChange::Kind>(kind);
    const bool has_parent = r.pod<uint8_t>() != 0;
    const uint64_t parent = r.pod<uint64_t>();
    if (has_parent) c.parent = parent;
    c.blocks.resize(r.count());
    for (auto& b : c.blocks) {
      b.hash = r.pod<uint64_t>();
      b.tokens_hash = r.pod<uint64_t>();
    }
    c.removed.resize(r.count());
    for (auto& h : c.removed) h = r.pod<uint64_t>();
  }
  r.end();
  return rep;
}

void add_stats(EngineStats& into, const EngineStats& s) {
  into.running += s.running;
  into.waiting += s.waiting;
  into.pages_total += s.pages_total;
  into.pages_free += s.pages_free;
  into.pages_cached += s.pages_cached;
  into.pages_evictable += s.pages_evictable;
  into.prefix_hit_tokens += s.prefix_hit_tokens;
  into.generated_tokens += s.generated_tokens;
  into.retractions += s.retractions;
}

}  // namespace wideserve::engine
