#include "router/kv_index.h"

#include <mutex>

namespace wideserve::router {

ApplyResult KvIndex::apply(const WorkerRank& w, const runtime::KvEvent& e) {
  std::unique_lock lk(mu_);
  auto it = ranks_.find(w);
  if (it == ranks_.end()) return ApplyResult::kGap;
  Rank& r = it->second;
  if (e.event_id <= r.last_event_id) return ApplyResult::kStale;
  if (e.event_id != r.last_event_id + 1) return ApplyResult::kGap;
  switch (e.kind) {
    case runtime::KvEventKind::kStored:
      // A parent we do not hold means we missed its Stored event: our view is wrong.
      if (e.parent_hash && !r.blocks.count(*e.parent_hash)) return ApplyResult::kGap;
      for (const auto& b : e.blocks) r.blocks.insert(b.hash);
      break;
    case runtime::KvEventKind::kRemoved:
      for (uint64_t h : e.removed) r.blocks.erase(h);
      break;
    case runtime::KvEventKind::kCleared:
      r.blocks.clear();
      break;
  }
  r.last_event_id = e.event_id;
  return ApplyResult::kApplied;
}

void KvIndex::reset(const WorkerRank& w, const runtime::KvState& s) {
  std::unique_lock lk(mu_);
  Rank& r = ranks_[w];
  r.last_event_id = s.last_event_id;
  r.blocks.clear();
  r.blocks.insert(s.blocks.begin(), s.blocks.end());
}

void KvIndex::remove_worker(const std::string& instance_id) {
  std::unique_lock lk(mu_);
  std::erase_if(ranks_, [&](const auto& kv) { return kv.first.instance_id == instance_id; });
}

int64_t KvIndex::leading(const Rank& r, std::span<const uint64_t> hashes) {
  int64_t n = 0;
  while (n < static_cast<int64_t>(hashes.size()) && r.blocks.count(hashes[n])) ++n;
  return n;
}

std::unordered_map<WorkerRank, int64_t, WorkerRankHash> KvIndex::overlap(
    std::span<const uint64_t> hashes) const {
  std::shared_lock lk(mu_);
  std::unordered_map<WorkerRank, int64_t, WorkerRankHash> out;
  for (const auto& [w, r] : ranks_) out[w] = leading(r, hashes);
  return out;
}

int64_t KvIndex::overlap(const WorkerRank& w, std::span<const uint64_t> hashes) const {
  std::shared_lock lk(mu_);
  auto it = ranks_.find(w);
  return it == ranks_.end() ? 0 : leading(it->second, hashes);
}

bool KvIndex::known(const WorkerRank& w) const {
  std::shared_lock lk(mu_);
  return ranks_.count(w) > 0;
}

int64_t KvIndex::num_blocks(const WorkerRank& w) const {
  std::shared_lock lk(mu_);
  auto it = ranks_.find(w);
  return it == ranks_.end() ? 0 : static_cast<int64_t>(it->second.blocks.size());
}

std::optional<uint64_t> KvIndex::last_event_id(const WorkerRank& w) const {
  std::shared_lock lk(mu_);
  auto it = ranks_.find(w);
  if (it == ranks_.end()) return std::nullopt;
  return it->second.last_event_id;
}

std::vector<WorkerRank> KvIndex::ranks() const {
  std::shared_lock lk(mu_);
  std::vector<WorkerRank> out;
  for (const auto& [w, r] : ranks_) out.push_back(w);
  return out;
}

}  // namespace wideserve::router
