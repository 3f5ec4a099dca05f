#include "tokenizer/bpe_model.h"

#include <climits>
#include <queue>

#include <nlohmann/json.hpp>

#include "common/check.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/unicode_util.h"

namespace wideserve::tokenizer {

using nlohmann::json;

// Open-addressing map (a, b) -> Merge: the merge loop's hot lookup.
class BpeModel::MergeMap {
 public:
  explicit MergeMap(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Slot{kEmpty, {}});
    mask_ = cap - 1;
  }
  // Inserts or overwrites (a repeated pair keeps its last rank, as HF's map does).
  void insert(int32_t a, int32_t b, Merge m) {
    uint64_t k = key(a, b);
    for (size_t i = slot(k);; i = (i + 1) & mask_) {
      if (slots_[i].key == k || slots_[i].key == kEmpty) {
        slots_[i] = Slot{k, m};
        return;
      }
    }
  }
  const Merge* find(int32_t a, int32_t b) const {
    uint64_t k = key(a, b);
    for (size_t i = slot(k);; i = (i + 1) & mask_) {
      if (slots_[i].key == k) return &slots_[i].merge;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  // Key and value side by side: one cache line per probe.
  struct Slot {
    uint64_t key;
    Merge merge;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  size_t slot(uint64_t k) const {
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDull;
    k ^= k >> 33;
    return k & mask_;
  }
  std::vector<Slot> slots_;
  size_t mask_;
};

// Word -> ids, sharded by hash; bounded (stops inserting when full, like HF's cache).
class BpeModel::WordCache {
 public:
  static constexpr size_t kMinWordBytes = 4;
  static constexpr size_t kMaxWordBytes = 256;
  static constexpr size_t kShards = 64;
  static constexpr size_t kMaxPerShard = 4096;

  bool lookup(std::string_view key, std::vector<int32_t>& out) const {
    const Shard& s = shards_[shard_of(key)];
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.map.find(key);
    if (it == s.map.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }
  void insert(std::string_view key, const int32_t* ids, size_t n) {
    Shard& s = shards_[shard_of(key)];
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.map.size() >= kMaxPerShard) return;
    s.map.emplace(std::string(key), std::vector<int32_t>(ids, ids + n));
  }

 private:
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
  };
  static size_t shard_of(std::string_view key) { return StringHash{}(key) % kShards; }
  std::array<Shard, kShards> shards_;
};

BpeModel::~BpeModel() = default;

BpeModel::BpeModel(const json& model) : cache_(std::make_unique<WordCache>()) {
  WS_CHECK_CODE(kDataLoss, model.is_object(), "tokenizer.json: 'model' must be an object");
  if (auto t = model.find("type"); t != model.end()) {
    WS_CHECK_CODE(kUnimplemented, t->is_string() && *t == "BPE",
                  "tokenizer.json: model type {} is not supported (only BPE)", t->dump());
  }
  auto v = model.find("vocab");
  WS_CHECK_CODE(kDataLoss, v != model.end() && v->is_object(),
                "tokenizer.json: model.vocab must be an object of token -> id");
  vocab_.reserve(v->size());
  int32_t max_id = -1;
  for (auto it = v->begin(); it != v->end(); ++it) {
    WS_CHECK_CODE(kDataLoss,
                  it.value().is_number_integer() && it.value().get<int64_t>() >= 0 &&
                      it.value().get<int64_t>() < INT32_MAX,
                  "tokenizer.json: model.vocab['{}'] must be a non-negative integer id", it.key());
    int32_t id = it.value().get<int32_t>();
    vocab_.emplace(it.key(), id);
    max_id = std::max(max_id, id);
  }
  id_to_token_.resize(max_id + 1);
  for (const auto& [tok, id] : vocab_) id_to_token_[id] = tok;

  prefix_ = model.value("continuing_subword_prefix", json()).is_string()
                ? model["continuing_subword_prefix"].get<std::string>()
                : "";
  suffix_ = model.value("end_of_word_suffix", json()).is_string()
                ? model["end_of_word_suffix"].get<std::string>()
                : "";
  fuse_unk_ = model.value("fuse_unk", false);
  byte_fallback_ = model.value("byte_fallback", false);
  ignore_merges_ = model.value("ignore_merges", false);
  if (auto u = model.find("unk_token"); u != model.end() && u->is_string()) {
    auto it = vocab_.find(u->get<std::string>());
    WS_CHECK_CODE(kDataLoss, it != vocab_.end(), "tokenizer.json: unk_token '{}' not in vocab",
                  u->get<std::string>());
    unk_id_ = it->second;
  }

  const auto& bl = byte_to_utf8();
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_.find(bl[b]);
    byte_level_ids_[b] = it == vocab_.end() ? -1 : it->second;
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    auto f = vocab_.find(std::string_view(name));
    byte_fallback_ids_[b] = f == vocab_.end() ? -1 : f->second;
  }

  auto m = model.find("merges");
  WS_CHECK_CODE(kDataLoss, m == model.end() || m->is_array(),
                "tokenizer.json: model.merges must be an array");
  size_t n = m == model.end() ? 0 : m->size();
  merges_ = std::make_unique<MergeMap>(n);
  for (size_t rank = 0; rank < n; ++rank) {
    const json& e = (*m)[rank];
    std::string a, b;
    if (e.is_string()) {
      const std::string& s = e.get_ref<const std::string&>();
      size_t sp = s.find(' ', 1);
      WS_CHECK_CODE(kDataLoss, sp != std::string::npos,
                    "tokenizer.json: merge #{} '{}' is not 'left right'", rank, s);
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else {
      WS_CHECK_CODE(kDataLoss,
                    e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string(),
                    "tokenizer.json: merge #{} must be a string or a pair of strings", rank);
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    }
    auto ia = vocab_.find(a), ib = vocab_.find(b);
    WS_CHECK_CODE(kDataLoss, ia != vocab_.end() && ib != vocab_.end(),
                  "tokenizer.json: merge #{} '{} {}' uses a token missing from the vocab", rank, a,
                  b);
    std::string merged = a + (b.compare(0, prefix_.size(), prefix_) == 0 && !prefix_.empty()
                                  ? b.substr(prefix_.size())
                                  : b);
    auto im = vocab_.find(merged);
    WS_CHECK_CODE(kDataLoss, im != vocab_.end(),
                  "tokenizer.json: merge #{} result '{}' is missing from the vocab", rank, merged);
    merges_->insert(ia->second, ib->second, Merge{static_cast<int32_t>(rank), im->second});
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || id >= static_cast<int32_t>(id_to_token_.size())) return nullptr;
  return id_to_token_[id].empty() ? nullptr : &id_to_token_[id];
}

const BpeModel::Merge* BpeModel::find_merge(int32_t a, int32_t b) const {
  return merges_->find(a, b);
}

void BpeModel::initial_symbols(const Piece& word, std::vector<int32_t>& syms) const {
  if (word.byte_level && prefix_.empty() && suffix_.empty()) {
    bool all_known = true;
    for (char ch : word.text) {
      int32_t id = byte_level_ids_[static_cast<uint8_t>(ch)];
      all_known &= id >= 0;
      syms.push_back(id);
    }
    if (all_known) return;
    syms.clear();
  }
  std::string mapped;
  std::string_view text = word.text;
  if (word.byte_level) {
    mapped = bytes_to_byte_level(text);
    text = mapped;
  }
  std::string tok;
  bool last_unk = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t b = pos;
    pos += utf8_len(static_cast<unsigned char>(text[pos]));
    std::string_view ch = text.substr(b, pos - b);
    tok.clear();
    if (b > 0) tok += prefix_;
    tok += ch;
    if (pos == text.size()) tok += suffix_;
    if (auto it = vocab_.find(tok); it != vocab_.end()) {
      syms.push_back(it->second);
      last_unk = false;
      continue;
    }
    if (byte_fallback_) {
      bool ok = true;
      for (char c : ch) ok &= byte_fallback_ids_[static_cast<uint8_t>(c)] >= 0;
      if (ok) {
        for (char c : ch) syms.push_back(byte_fallback_ids_[static_cast<uint8_t>(c)]);
        last_unk = false;
        continue;
      }
    }
    if (unk_id_) {
      if (!(fuse_unk_ && last_unk)) syms.push_back(*unk_id_);
      last_unk = true;
    }
    // Without an unk token an unknown character is dropped, as HF does.
  }
}

// Few symbols: keep each adjacent pair's rank in an array and rescan it (no heap overhead).
void BpeModel::merge_small(std::vector<int32_t>& syms) const {
  size_t n = syms.size();
  int32_t ranks[64];
  int32_t ids[64];
  auto set = [&](size_t i) {
    const Merge* m = find_merge(syms[i], syms[i + 1]);
    ranks[i] = m ? m->rank : INT32_MAX;
    ids[i] = m ? m->id : -1;
  };
  for (size_t i = 0; i + 1 < n; ++i) set(i);
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i)
      if (ranks[i] < ranks[best]) best = i;
    if (ranks[best] == INT32_MAX) break;
    syms[best] = ids[best];
    for (size_t i = best + 1; i + 1 < n; ++i) {
      syms[i] = syms[i + 1];
      if (i + 1 < n - 1) {
        ranks[i] = ranks[i + 1];
        ids[i] = ids[i + 1];
      }
    }
    --n;
    if (best > 0) set(best - 1);
    if (best + 1 < n) set(best);
  }
  syms.resize(n);
}

// Many symbols: linked list plus a min-heap of (rank, position), stale entries skipped.
void BpeModel::merge_large(std::vector<int32_t>& syms) const {
  const int32_t n = static_cast<int32_t>(syms.size());
  std::vector<int32_t> next(n), prev(n);
  for (int32_t i = 0; i < n; ++i) {
    next[i] = i + 1;
    prev[i] = i - 1;
  }
  struct Cand {
    int32_t rank, pos, left, right, id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<Cand> storage;
  storage.reserve(n);
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap(std::greater<Cand>(),
                                                                        std::move(storage));
  auto push = [&](int32_t i, int32_t j) {
    if (const Merge* m = find_merge(syms[i], syms[j]))
      heap.push({m->rank, i, syms[i], syms[j], m->id});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i, i + 1);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    int32_t i = c.pos;
    if (syms[i] != c.left) continue;
    int32_t j = next[i];
    if (j >= n || syms[j] != c.right) continue;
    syms[i] = c.id;
    syms[j] = -1;
    next[i] = next[j];
    if (next[j] < n) prev[next[j]] = i;
    if (prev[i] >= 0) push(prev[i], i);
    if (next[i] < n) push(i, next[i]);
  }
  size_t w = 0;
  for (int32_t i = 0; i < n; i = next[i]) syms[w++] = syms[i];
  syms.resize(w);
}

void BpeModel::tokenize(const Piece& word, std::vector<int32_t>& out) const {
  if (word.text.empty()) return;
  thread_local std::string key;
  // Short words merge faster than a locked cache lookup; long ones are rare and uncacheable.
  bool cacheable =
      word.text.size() >= WordCache::kMinWordBytes && word.text.size() <= WordCache::kMaxWordBytes;
  if (cacheable) {
    key.assign(1, word.byte_level ? '\x01' : '\x00');
    key.append(word.text);
    if (cache_->lookup(key, out)) return;
  }
  if (ignore_merges_) {
    std::string whole = word.byte_level ? bytes_to_byte_level(word.text) : std::string(word.text);
    if (auto it = vocab_.find(whole); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  thread_local std::vector<int32_t> syms;
  syms.clear();
  initial_symbols(word, syms);
  if (syms.size() <= 24) {
    merge_small(syms);
  } else {
    merge_large(syms);
  }
  out.insert(out.end(), syms.begin(), syms.end());
  if (cacheable) cache_->insert(key, syms.data(), syms.size());
}

}  // namespace wideserve::tokenizer
