// CPU reference of launch_mla_token (tests): float64 sums, bf16 rounding where the kernels round.
#pragma once

#include <cstdint>
#include <vector>

namespace wideserve::cuda {

// Host copies of MlaTokenParams' inputs (bf16 values as floats). kv_cache holds every slot; the
// token's own slot is not read (its row is made from kv_a).
struct MlaTokenRefInputs {
  std::vector<float> q;          // [heads, q_stride]
  std::vector<float> kv_a;       // [576]
  std::vector<float> kv_a_norm;  // [512]
  std::vector<float> w_kv_b;     // [heads][256][512]
  std::vector<float> inv_freq;   // [32]
  float attention_factor = 1.f;
  std::vector<float> kv_cache;  // [slots, 576]
  std::vector<int32_t> page_table;
  int64_t position = 0, seq_len = 0, heads = 0, q_stride = 0, page_size = 0;
  float eps = 1e-6f, softmax_scale = 1.f;
};

// out: [heads * 128] W_UV output before its bf16 rounding; latent: the token's cache row [576].
void mla_token_ref(const MlaTokenRefInputs& in, std::vector<double>& out,
                   std::vector<float>& latent);

}  // namespace wideserve::cuda
