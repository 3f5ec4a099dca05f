#include "model/model_config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/check.h"

namespace wideserve::model {
namespace {

using nlohmann::json;

// Reads a required integer key.
int64_t req_int(const json& j, const char* key, const std::string& src) {
  WS_CHECK_CODE(kInvalidArgument, j.contains(key) && !j[key].is_null(),
                "{}: config is missing required key '{}'", src, key);
  WS_CHECK_CODE(kInvalidArgument, j[key].is_number_integer(), "{}: '{}' must be an integer, got {}",
                src, key, j[key].dump());
  int64_t v = j[key].get<int64_t>();
  WS_CHECK_CODE(kInvalidArgument, v >= 0, "{}: '{}' must be >= 0, got {}", src, key, v);
  return v;
}

int64_t opt_int(const json& j, const char* key, int64_t def, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return def;
  return req_int(j, key, src);
}

double opt_num(const json& j, const char* key, double def, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return def;
  WS_CHECK_CODE(kInvalidArgument, j[key].is_number(), "{}: '{}' must be a number, got {}", src, key,
                j[key].dump());
  return j[key].get<double>();
}

bool opt_bool(const json& j, const char* key, bool def, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return def;
  WS_CHECK_CODE(kInvalidArgument, j[key].is_boolean(), "{}: '{}' must be a boolean, got {}", src,
                key, j[key].dump());
  return j[key].get<bool>();
}

std::string opt_str(const json& j, const char* key, const std::string& def,
                    const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return def;
  WS_CHECK_CODE(kInvalidArgument, j[key].is_string(), "{}: '{}' must be a string, got {}", src, key,
                j[key].dump());
  return j[key].get<std::string>();
}

// Both spellings: transformers 5's `rope_parameters` (theta inside) or `rope_scaling` +
// `rope_theta`.
RopeConfig parse_rope(const json& j, const std::string& src) {
  RopeConfig r;
  json params = json::object();
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
    params = j["rope_parameters"];
  } else if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
    params = j["rope_scaling"];
  }
  r.theta = opt_num(params, "rope_theta", opt_num(j, "rope_theta", 10000.0, src), src);
  std::string type = opt_str(params, "rope_type", opt_str(params, "type", "default", src), src);
  if (type == "yarn") {
    r.yarn = true;
    r.factor = opt_num(params, "factor", 0.0, src);
    r.original_max_position_embeddings =
        opt_int(params, "original_max_position_embeddings",
                opt_int(j, "max_position_embeddings", 0, src), src);
    if (r.factor == 0.0) {
      WS_CHECK_CODE(kInvalidArgument, r.original_max_position_embeddings > 0,
                    "{}: yarn rope needs 'factor' or 'original_max_position_embeddings'", src);
      r.factor = static_cast<double>(opt_int(j, "max_position_embeddings", 0, src)) /
                 static_cast<double>(r.original_max_position_embeddings);
    }
    r.beta_fast = opt_num(params, "beta_fast", 32.0, src);
    r.beta_slow = opt_num(params, "beta_slow", 1.0, src);
    if (r.beta_fast == 0) r.beta_fast = 32.0;
    if (r.beta_slow == 0) r.beta_slow = 1.0;
    r.mscale = opt_num(params, "mscale", 0.0, src);
    r.mscale_all_dim = opt_num(params, "mscale_all_dim", 0.0, src);
    r.attention_factor = opt_num(params, "attention_factor", 0.0, src);
    r.truncate = opt_bool(params, "truncate", true, src);
  } else {
    WS_CHECK_CODE(kInvalidArgument, type == "default",
                  "{}: rope type '{}' is not supported (default or yarn)", src, type);
  }
  r.interleave = opt_bool(j, "rope_interleave", true, src);
  return r;
}

}  // namespace

bool ModelConfig::is_moe_layer(int64_t layer) const {
  return n_routed_experts > 0 && layer >= first_k_dense_replace &&
         layer % std::max<int64_t>(1, moe_layer_freq) == 0;
}

double ModelConfig::attention_scale() const {
  double s = 1.0 / std::sqrt(static_cast<double>(qk_head_dim()));
  if (rope.yarn && rope.mscale_all_dim != 0.0 && rope.factor > 1.0) {
    double m = 0.1 * rope.mscale_all_dim * std::log(rope.factor) + 1.0;
    s *= m * m;
  }
  return s;
}

ModelConfig parse_model_config(const json& j, const std::string& src) {
  WS_CHECK_CODE(kInvalidArgument, j.is_object(), "{}: config must be a JSON object", src);
  ModelConfig c;
  std::string arch;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string())
    arch = j["architectures"][0].get<std::string>();
  std::string model_type = opt_str(j, "model_type", "", src);
  if (arch.empty()) {
    if (model_type == "deepseek_v3") arch = "DeepseekV3ForCausalLM";
    if (model_type == "deepseek_v2") arch = "DeepseekV2ForCausalLM";
  }
  WS_CHECK_CODE(kInvalidArgument,
                arch == "DeepseekV3ForCausalLM" || arch == "DeepseekV2ForCausalLM",
                "{}: unsupported architecture '{}' (DeepseekV3ForCausalLM, DeepseekV2ForCausalLM)",
                src, arch.empty() ? model_type : arch);
  c.architecture = arch;
  const bool v3 = arch == "DeepseekV3ForCausalLM";
  c.vocab_size = req_int(j, "vocab_size", src);
  c.hidden_size = req_int(j, "hidden_size", src);
  c.intermediate_size = req_int(j, "intermediate_size", src);
  c.num_hidden_layers = req_int(j, "num_hidden_layers", src);
  c.num_attention_heads = req_int(j, "num_attention_heads", src);
  c.q_lora_rank = opt_int(j, "q_lora_rank", 0, src);
  c.kv_lora_rank = req_int(j, "kv_lora_rank", src);
  c.qk_nope_head_dim = req_int(j, "qk_nope_head_dim", src);
  c.qk_rope_head_dim = req_int(j, "qk_rope_head_dim", src);
  c.v_head_dim = req_int(j, "v_head_dim", src);
  c.n_routed_experts = opt_int(j, "n_routed_experts", 0, src);
  if (c.n_routed_experts > 0) {
    c.moe_intermediate_size = req_int(j, "moe_intermediate_size", src);
    c.num_experts_per_tok = req_int(j, "num_experts_per_tok", src);
  }
  c.n_shared_experts = opt_int(j, "n_shared_experts", 0, src);
  c.n_group = opt_int(j, "n_group", 1, src);
  c.topk_group = opt_int(j, "topk_group", 1, src);
  c.first_k_dense_replace = opt_int(j, "first_k_dense_replace", v3 ? 3 : 0, src);
  c.moe_layer_freq = opt_int(j, "moe_layer_freq", 1, src);
  c.norm_topk_prob = opt_bool(j, "norm_topk_prob", v3, src);
  c.routed_scaling_factor = opt_num(j, "routed_scaling_factor", v3 ? 2.5 : 1.0, src);
  std::string scoring = opt_str(j, "scoring_func", v3 ? "sigmoid" : "softmax", src);
  if (scoring == "sigmoid")
    c.scoring_func = ScoringFunc::kSigmoid;
  else if (scoring == "softmax")
    c.scoring_func = ScoringFunc::kSoftmax;
  else
    WS_THROW(kInvalidArgument, "{}: scoring_func '{}' not supported (sigmoid, softmax)", src,
             scoring);
  std::string topk = opt_str(j, "topk_method", v3 ? "noaux_tc" : "greedy", src);
  if (topk == "noaux_tc")
    c.topk_method = TopkMethod::kNoauxTc;
  else if (topk == "group_limited_greedy")
    c.topk_method = TopkMethod::kGroupLimitedGreedy;
  else if (topk == "greedy")
    c.topk_method = TopkMethod::kGreedy;
  else
    WS_THROW(kInvalidArgument,
             "{}: topk_method '{}' not supported (noaux_tc, group_limited_greedy, greedy)", src,
             topk);
  c.rms_norm_eps = opt_num(j, "rms_norm_eps", 1e-6, src);
  c.max_position_embeddings = opt_int(j, "max_position_embeddings", 4096, src);
  c.attention_bias = opt_bool(j, "attention_bias", false, src);
  c.tie_word_embeddings = opt_bool(j, "tie_word_embeddings", false, src);
  c.num_nextn_predict_layers = opt_int(j, "num_nextn_predict_layers", 0, src);
  std::string act = opt_str(j, "hidden_act", "silu", src);
  WS_CHECK_CODE(kInvalidArgument, act == "silu", "{}: hidden_act '{}' not supported (silu)", src,
                act);
  c.rope = parse_rope(j, src);
  if (j.contains("eos_token_id")) {
    const auto& e = j["eos_token_id"];
    if (e.is_number_integer())
      c.eos_token_ids.push_back(e.get<int32_t>());
    else if (e.is_array())
      for (const auto& x : e)
        if (x.is_number_integer()) c.eos_token_ids.push_back(x.get<int32_t>());
  }
  c.bos_token_id =
      static_cast<int32_t>(j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()
                               ? j["bos_token_id"].get<int64_t>()
                               : -1);
  if (j.contains("quantization_config") && j["quantization_config"].is_object()) {
    const auto& q = j["quantization_config"];
    std::string method = opt_str(q, "quant_method", "", src);
    WS_CHECK_CODE(kInvalidArgument, method == "fp8",
                  "{}: quantization_config.quant_method '{}' not supported (fp8)", src, method);
    std::string fmt = opt_str(q, "fmt", "e4m3", src);
    WS_CHECK_CODE(kInvalidArgument, fmt == "e4m3", "{}: fp8 fmt '{}' not supported (e4m3)", src,
                  fmt);
    c.fp8_block_rows = c.fp8_block_cols = 128;
    if (q.contains("weight_block_size")) {
      const auto& b = q["weight_block_size"];
      WS_CHECK_CODE(kInvalidArgument,
                    b.is_array() && b.size() == 2 && b[0].is_number_integer() &&
                        b[1].is_number_integer() && b[0].get<int64_t>() > 0 &&
                        b[1].get<int64_t>() > 0,
                    "{}: quantization_config.weight_block_size must be [rows, cols]", src);
      c.fp8_block_rows = b[0].get<int64_t>();
      c.fp8_block_cols = b[1].get<int64_t>();
    }
  }
  // Cross-field validation: every later shape computation relies on these.
  WS_CHECK_CODE(kInvalidArgument,
                c.vocab_size > 0 && c.hidden_size > 0 && c.num_attention_heads > 0,
                "{}: vocab_size, hidden_size and num_attention_heads must be > 0", src);
  WS_CHECK_CODE(kInvalidArgument, c.qk_rope_head_dim % 2 == 0, "{}: qk_rope_head_dim must be even",
                src);
  if (c.n_routed_experts > 0) {
    WS_CHECK_CODE(kInvalidArgument,
                  c.num_experts_per_tok > 0 && c.num_experts_per_tok <= c.n_routed_experts,
                  "{}: num_experts_per_tok {} must be in [1, n_routed_experts={}]", src,
                  c.num_experts_per_tok, c.n_routed_experts);
    if (c.topk_method != TopkMethod::kGreedy) {
      WS_CHECK_CODE(kInvalidArgument, c.n_group > 0 && c.n_routed_experts % c.n_group == 0,
                    "{}: n_routed_experts {} must be divisible by n_group {}", src,
                    c.n_routed_experts, c.n_group);
      WS_CHECK_CODE(kInvalidArgument, c.topk_group > 0 && c.topk_group <= c.n_group,
                    "{}: topk_group {} must be in [1, n_group={}]", src, c.topk_group, c.n_group);
      WS_CHECK_CODE(kInvalidArgument,
                    c.topk_group * (c.n_routed_experts / c.n_group) >= c.num_experts_per_tok,
                    "{}: topk_group * experts per group < num_experts_per_tok", src);
    }
  }
  return c;
}

ModelConfig load_model_config(const std::string& model_dir) {
  std::string path = model_dir + "/config.json";
  std::ifstream f(path);
  WS_CHECK_CODE(kNotFound, f.good(), "cannot open {}", path);
  std::stringstream ss;
  ss << f.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::exception& e) {
    WS_THROW(kInvalidArgument, "{}: invalid JSON: {}", path, e.what());
  }
  return parse_model_config(j, path);
}

}  // namespace wideserve::model
