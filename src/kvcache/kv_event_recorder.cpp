#include "kvcache/kv_event_recorder.h"

namespace wideserve::kvcache {

void KvEventRecorder::on_stored(std::optional<uint64_t> parent,
                                std::span<const KvBlockHash> blocks) {
  KvCacheChange c;
  c.kind = KvCacheChange::Kind::kStored;
  c.parent = parent;
  c.blocks.assign(blocks.begin(), blocks.end());
  std::lock_guard<std::mutex> lk(mu_);
  changes_.push_back(std::move(c));
}

void KvEventRecorder::on_removed(std::span<const uint64_t> hashes) {
  KvCacheChange c;
  c.kind = KvCacheChange::Kind::kRemoved;
  c.removed.assign(hashes.begin(), hashes.end());
  std::lock_guard<std::mutex> lk(mu_);
  changes_.push_back(std::move(c));
}

void KvEventRecorder::on_cleared() {
  KvCacheChange c;
  c.kind = KvCacheChange::Kind::kCleared;
  std::lock_guard<std::mutex> lk(mu_);
  changes_.push_back(std::move(c));
}

std::vector<KvCacheChange> KvEventRecorder::take() {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<KvCacheChange> out;
  out.swap(changes_);
  return out;
}

void replay(std::span<const KvCacheChange> changes, KvEventSink& sink) {
  for (const auto& c : changes) {
    switch (c.kind) {
      case KvCacheChange::Kind::kStored:
        sink.on_stored(c.parent, c.blocks);
        break;
      case KvCacheChange::Kind::kRemoved:
        sink.on_removed(c.removed);
        break;
      case KvCacheChange::Kind::kCleared:
        sink.on_cleared();
        break;
    }
  }
}

}  // namespace wideserve::kvcache
