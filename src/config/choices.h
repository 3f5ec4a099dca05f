// Allowed values of the string-valued flags (SGLang's and Dynamo's lists), shared by --help text
// and validation so that the two never disagree.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace wideserve::config {

using Choices = std::span<const std::string_view>;

inline constexpr std::string_view kLogLevels[] = {"debug", "info", "warning", "error", "critical"};
inline constexpr std::string_view kEngineKinds[] = {"model", "mock"};
inline constexpr std::string_view kDevices[] = {"auto", "cpu", "cuda"};
inline constexpr std::string_view kLoadFormats[] = {"auto", "safetensors", "dummy"};
inline constexpr std::string_view kDisaggregationModes[] = {"null", "prefill", "decode"};
// SGLang's names plus ours: nixl and ucx both run our UCX agent, tcp the socket fallback.
inline constexpr std::string_view kTransferBackends[] = {
    "mooncake", "nixl", "ascend", "fake", "mori", "mooncake_tcp", "ucx", "tcp"};
// SGLang has renamed these over releases; every spelling of a recent release is accepted.
inline constexpr std::string_view kLoadBalanceMethods[] = {"auto",
                                                           "round_robin",
                                                           "shortest_queue",
                                                           "minimum_cache_usage",
                                                           "minimum_tokens",
                                                           "follow_bootstrap_room",
                                                           "total_requests",
                                                           "total_tokens",
                                                           "decode_round_robin"};
inline constexpr std::string_view kMoeA2aBackends[] = {
    "none", "deepep", "mooncake", "nixl", "mori", "ascend_fuseep", "flashinfer", "megamoe"};
inline constexpr std::string_view kDeepepModes[] = {"normal", "low_latency", "auto"};
inline constexpr std::string_view kEpDispatchAlgorithms[] = {"static", "dynamic", "fake"};
inline constexpr std::string_view kEplbAlgorithms[] = {"auto",
                                                       "deepseek",
                                                       "deepseek_hierarchical",
                                                       "deepseek_vec",
                                                       "deepseek_vec_hierarchical",
                                                       "elasticity_aware"};
inline constexpr std::string_view kAttentionBackends[] = {"triton",
                                                          "torch_native",
                                                          "flex_attention",
                                                          "dsa",
                                                          "nsa",
                                                          "dsv4",
                                                          "compressed",
                                                          "cutlass_mla",
                                                          "fa3",
                                                          "fa4",
                                                          "flashinfer",
                                                          "flashmla",
                                                          "trtllm_mla",
                                                          "cutedsl_mla",
                                                          "tokenspeed_mla",
                                                          "trtllm_mha",
                                                          "dual_chunk_flash_attn",
                                                          "aiter",
                                                          "wave",
                                                          "intel_amx",
                                                          "ascend",
                                                          "intel_xpu"};
inline constexpr std::string_view kSchedulePolicies[] = {"fcfs",       "lpm", "random",
                                                         "dfs-weight", "lof", "priority"};
// Parsers this build implements (src/tokenizer); '-' and '_' are interchangeable.
inline constexpr std::string_view kReasoningParsers[] = {"deepseek_r1", "deepseek_v3"};
inline constexpr std::string_view kToolCallParsers[] = {"deepseek_v3", "deepseek_v3_1"};
inline constexpr std::string_view kRouterModes[] = {"round-robin", "random", "kv"};

// "a, b, c" for messages and --help.
std::string join_choices(Choices choices);

// Throws Error(kInvalidArgument) "FLAG must be one of a, b (got 'v')" unless value is a choice.
void check_choice(std::string_view flag, std::string_view value, Choices choices);

}  // namespace wideserve::config
