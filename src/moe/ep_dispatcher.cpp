#include "moe/ep_dispatcher.h"

#include <chrono>
#include <cstring>

#include "common/check.h"

namespace wideserve::moe {
namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

DeepepMode parse_deepep_mode(const std::string& s) {
  if (s == "normal") return DeepepMode::kNormal;
  if (s == "low_latency") return DeepepMode::kLowLatency;
  if (s == "auto") return DeepepMode::kAuto;
  WS_THROW(kInvalidArgument, "--deepep-mode must be normal, low_latency or auto (got '{}')", s);
}

EpDispatcher::EpDispatcher(dist::ProcessGroup& pg, int64_t hidden, int32_t top_k,
                           int32_t local_experts, int64_t max_tokens_per_rank)
    : pg_(pg), H_(hidden), K_(top_k), local_(local_experts), max_tokens_(max_tokens_per_rank) {
  WS_CHECK_ARG(hidden > 0 && top_k > 0 && local_experts > 0 && max_tokens_per_rank > 0,
               "dispatcher: hidden {}, top_k {}, local experts {}, max tokens {}", hidden, top_k,
               local_experts, max_tokens_per_rank);
}

// One token record on the wire: H floats, K int32 local expert ids (-1 = not on this rank),
// K float weights.
void EpDispatcher::dispatch(DispatchMode mode, const float* x, int64_t rows, const int32_t* phys,
                            const float* w) {
  const double t0 = now_s();
  const int n = pg_.size();
  mode_ = mode;
  rows_ = rows;
  const int64_t rec = H_ * 4 + K_ * 8;
  sent_rows_.assign(n, {});
  std::vector<std::vector<char>> blocks(n);
  for (int64_t t = 0; t < rows; ++t) {
    for (int d = 0; d < n; ++d) {
      bool any = false;
      for (int32_t k = 0; k < K_ && !any; ++k) any = phys[t * K_ + k] / local_ == d;
      if (!any) continue;
      sent_rows_[d].push_back(t);
      auto& b = blocks[d];
      const size_t off = b.size();
      b.resize(off + rec);
      std::memcpy(b.data() + off, x + t * H_, H_ * 4);
      int32_t* e = reinterpret_cast<int32_t*>(b.data() + off + H_ * 4);
      float* ww = reinterpret_cast<float*>(b.data() + off + H_ * 4 + K_ * 4);
      for (int32_t k = 0; k < K_; ++k) {
        const int32_t p = phys[t * K_ + k];
        e[k] = p / local_ == d ? p % local_ : -1;
        ww[k] = w[t * K_ + k];
      }
    }
  }
  recv_counts_.assign(n, 0);
  std::vector<char> recv;
  int64_t sent_bytes = 0;
  if (mode == DispatchMode::kNormal) {
    auto got = dist::exchange_blobs(pg_, blocks);
    int64_t total = 0;
    for (int r = 0; r < n; ++r) {
      recv_counts_[r] = static_cast<int64_t>(got[r].size()) / rec;
      total += static_cast<int64_t>(got[r].size());
      sent_bytes += static_cast<int64_t>(blocks[r].size());
    }
    recv.reserve(total);
    for (auto& g : got) recv.insert(recv.end(), g.begin(), g.end());
  } else {
    // Fixed blocks: int64 count, then max_tokens records. A rank over the limit sends its count
    // and no tokens, so that every rank sees it and fails the same way.
    const int64_t block = 8 + max_tokens_ * rec;
    std::vector<char> in(block * n, 0), out(block * n);
    for (int d = 0; d < n; ++d) {
      const int64_t cnt = rows > max_tokens_ ? rows : static_cast<int64_t>(sent_rows_[d].size());
      std::memcpy(in.data() + d * block, &cnt, 8);
      if (rows <= max_tokens_ && !blocks[d].empty())
        std::memcpy(in.data() + d * block + 8, blocks[d].data(), blocks[d].size());
    }
    pg_.all_to_all(in.data(), block, out.data());
    sent_bytes = block * n;
    for (int r = 0; r < n; ++r) {
      int64_t cnt;
      std::memcpy(&cnt, out.data() + r * block, 8);
      WS_CHECK_CODE(kResourceExhausted, cnt <= max_tokens_,
                    "low_latency dispatch: rank {} has {} tokens in one step, more than "
                    "SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK={} (raise it, or use "
                    "--deepep-mode normal/auto)",
                    r, cnt, max_tokens_);
      recv_counts_[r] = cnt;
    }
    for (int r = 0; r < n; ++r)
      recv.insert(recv.end(), out.begin() + r * block + 8,
                  out.begin() + r * block + 8 + recv_counts_[r] * rec);
  }
  recv_n_ = 0;
  for (int64_t c : recv_counts_) recv_n_ += c;
  recv_x_.resize(recv_n_ * H_);
  recv_e_.resize(recv_n_ * K_);
  recv_w_.resize(recv_n_ * K_);
  for (int64_t j = 0; j < recv_n_; ++j) {
    const char* p = recv.data() + j * rec;
    std::memcpy(&recv_x_[j * H_], p, H_ * 4);
    std::memcpy(&recv_e_[j * K_], p + H_ * 4, K_ * 4);
    std::memcpy(&recv_w_[j * K_], p + H_ * 4 + K_ * 4, K_ * 4);
  }
  ++counters_.calls;
  for (const auto& s : sent_rows_) counters_.tokens_sent += static_cast<int64_t>(s.size());
  counters_.bytes_sent += sent_bytes;
  counters_.bytes_received += mode == DispatchMode::kNormal
                                  ? recv_n_ * rec
                                  : static_cast<int64_t>(n) * (8 + max_tokens_ * rec);
  counters_.dispatch_seconds += now_s() - t0;
}

void EpDispatcher::combine(const float* y, float* out) {
  const double t0 = now_s();
  const int n = pg_.size();
  const int64_t row_bytes = H_ * 4;
  std::vector<char> back;
  if (mode_ == DispatchMode::kNormal) {
    std::vector<int64_t> send(n), recv(n);
    for (int r = 0; r < n; ++r) {
      send[r] = recv_counts_[r] * row_bytes;
      recv[r] = static_cast<int64_t>(sent_rows_[r].size()) * row_bytes;
    }
    int64_t total = 0;
    for (int64_t b : recv) total += b;
    back.resize(total);
    pg_.all_to_all_v(y, send, back.data(), recv);
    counters_.bytes_sent += recv_n_ * row_bytes;
    counters_.bytes_received += total;
  } else {
    const int64_t block = max_tokens_ * row_bytes;
    std::vector<char> in(block * n, 0), out_buf(block * n);
    int64_t off = 0;
    for (int r = 0; r < n; ++r) {
      if (recv_counts_[r])
        std::memcpy(in.data() + r * block, y + off * H_, recv_counts_[r] * row_bytes);
      off += recv_counts_[r];
    }
    pg_.all_to_all(in.data(), block, out_buf.data());
    for (int r = 0; r < n; ++r)
      back.insert(back.end(), out_buf.begin() + r * block,
                  out_buf.begin() + r * block + sent_rows_[r].size() * row_bytes);
    counters_.bytes_sent += block * n;
    counters_.bytes_received += block * n;
  }
  std::memset(out, 0, rows_ * row_bytes);
  const float* b = reinterpret_cast<const float*>(back.data());
  for (int r = 0; r < n; ++r)
    for (int64_t t : sent_rows_[r]) {
      float* o = out + t * H_;
      for (int64_t i = 0; i < H_; ++i) o[i] += b[i];
      b += H_;
    }
  counters_.combine_seconds += now_s() - t0;
}

}  // namespace wideserve::moe
