// Expert-parallelism load balancer: DeepSeek's EPLB (github.com/deepseek-ai/EPLB) reimplemented so
// that it returns bit-for-bit the reference's phy2log / log2phy / logcnt for the same input.
// See docs/eplb.md for the algorithm and for which torch CPU behaviours are reproduced.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wideserve::moe {

// Which policy picks the placement: the reference's rule, or hierarchical forced.
enum class EplbAlgorithm {
  kDeepseek,              // hierarchical when num_groups % num_nodes == 0, else global
  kDeepseekHierarchical,  // always hierarchical (the group/node divisibility must hold)
  kAuto,                  // today the same as kDeepseek
};

// Parses "deepseek" | "deepseek_hierarchical" | "auto"; errors name --eplb-algorithm.
EplbAlgorithm parse_eplb_algorithm(std::string_view name);

// The flag spelling of an algorithm.
std::string_view eplb_algorithm_name(EplbAlgorithm algorithm);

// A placement, with the reference's shapes.
struct EplbResult {
  std::vector<std::vector<int64_t>> phy2log;               // [layers][num_replicas]: logical id
  std::vector<std::vector<std::vector<int64_t>>> log2phy;  // [layers][logical][max logcnt], -1 pad
  std::vector<std::vector<int64_t>> logcnt;                // [layers][logical]: replica count
  bool hierarchical = false;                               // which policy produced it
};

// Places num_replicas physical experts (logical + redundant) on num_gpus GPUs in num_nodes nodes.
// weight: [layers][logical experts] loads, converted to float32 as the reference does.
// Errors (kInvalidArgument) name the CLI flag: --weight, --num-replicas, --num-groups, ...
EplbResult rebalance_experts(const std::vector<std::vector<float>>& weight, int num_replicas,
                             int num_groups, int num_nodes, int num_gpus,
                             EplbAlgorithm algorithm = EplbAlgorithm::kDeepseek);

// Same, from double loads (each rounded to float32 first, like torch's .float()).
EplbResult rebalance_experts(const std::vector<std::vector<double>>& weight, int num_replicas,
                             int num_groups, int num_nodes, int num_gpus,
                             EplbAlgorithm algorithm = EplbAlgorithm::kDeepseek);

namespace detail {

// Indices of x sorted by descending value, with the tie order of torch.sort(descending=True) on
// CPU (libstdc++ introsort on (value, index) pairs; not stable for n > 16).
std::vector<int64_t> torch_sort_desc_indices(const float* x, int64_t n);

// Sum of x[0..n) in float32 in the order of torch's CPU sum kernel over a contiguous last dim
// (cascade + 4-way ILP; `lanes` = floats per SIMD vector: 8 for AVX2/default, 16 for AVX512).
float torch_float_sum(const float* x, int64_t n, int lanes = 8);

}  // namespace detail

}  // namespace wideserve::moe
