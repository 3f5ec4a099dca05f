// DeepSeek V2/V3 weights on the GPU: BF16 everywhere, except linears stored as FP8 e4m3 with
// 128x128 block scales, which stay FP8 (DeepSeek's scheme). Loaded from a checkpoint directory, or
// random on the device for benchmarks (--load-format dummy).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <string>
#include <vector>

#include "backend/cuda/common/device_buffer.h"
#include "model/model_config.h"

namespace wideserve::cuda {

// y = x W^T: W [out, in] as bf16, or as e4m3 + scale_inv [ceil(out/128)][ceil(in/128)].
struct DevLinear {
  int64_t out = 0, in = 0;
  bool fp8 = false;
  DeviceBuffer<__nv_bfloat16> w;
  DeviceBuffer<__nv_fp8_e4m3> q;
  DeviceBuffer<float> scale;
};

// Routed experts of one MoE layer: gate_up [E, 2I, H], down [E, H, I] (bf16 or fp8 + scales).
struct DevExperts {
  int64_t num = 0, inter = 0, hidden = 0;
  bool fp8 = false;
  DeviceBuffer<__nv_bfloat16> gate_up, down;
  DeviceBuffer<__nv_fp8_e4m3> gate_up_q, down_q;
  DeviceBuffer<float> gate_up_scale, down_scale;  // [E][2I/128][H/128], [E][H/128][I/128]
};

// One decoder layer.
struct DevLayer {
  DeviceBuffer<__nv_bfloat16> input_norm, post_attention_norm, q_a_norm, kv_a_norm;
  DevLinear q_a, q_b, q, kv_a, o;
  DevLinear qkv_a;  // q_a and kv_a stacked [q_lora + kv_a.out, in] by fuse_qkv_a (then both empty)
  DeviceBuffer<__nv_bfloat16> kv_b;  // [heads * (nope + v), kv_lora] bf16 (absorbed W_UK / W_UV)
  bool is_moe = false;
  DevLinear gate_up, down;  // dense MLP, or the shared experts of a MoE layer
  bool has_shared = false;
  DeviceBuffer<__nv_bfloat16> router;  // [E, H]
  DeviceBuffer<float> router_bias;     // [E] or empty
  DevExperts experts;
};

// The whole model on the device.
struct DevWeights {
  DeviceBuffer<__nv_bfloat16> embed, final_norm, lm_head;
  std::vector<DevLayer> layers;
  size_t bytes = 0;  // device bytes held by weights
};

// Loads a checkpoint directory's tensors (the same names and checks as the CPU loader);
// dequantize_fp8 turns every FP8 tensor into bf16 (tests: the FP8 GEMMs and activation
// quantization against the same weights in bf16).
DevWeights load_dev_weights(const std::string& model_dir, const model::ModelConfig& cfg,
                            bool dequantize_fp8 = false);

// Stacks each layer's q_a and kv_a into qkv_a (one GEMM and one activation quantization for both
// projections of the same input) where they match: same input width and storage, and for FP8 a
// q_a row count that ends on a 128-row scale block. Returns the number of layers fused.
int64_t fuse_qkv_a(DevWeights& w);

// Random weights of the config's shapes, generated on the device; fp8 = FP8 linears and experts
// wherever the shapes allow 128x128 blocks.
DevWeights dummy_dev_weights(const model::ModelConfig& cfg, bool fp8, uint64_t seed);

}  // namespace wideserve::cuda
