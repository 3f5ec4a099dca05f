// The input RMSNorm made by the q + kv_a GEMV pair (CudaModelOptions::norm_in_gemv) in the model
// at DeepSeek-V2-Lite dimensions (the tiny fixtures are too narrow for the GEMV: it needs hidden a
// multiple of 128), two layers (one dense, one MoE), random weights drawn from one seed: the
// same logits and greedy ids bit for bit as the norm launch, eagerly and through CUDA graphs.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "backend/cuda/gpu_test_util.h"
#include "backend/cuda/model/cuda_model.h"
#include "backend/cuda/model/preset_config_dir.h"
#include "backend/cuda/ops/ops.h"

namespace wideserve::cuda {
namespace {

class CudaDecodeGemvModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (device_count() == 0) return;
    dir_ = test::make_preset_config_dir("v2-lite", 2, "decode_gemv_v2lite");
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  static std::unique_ptr<CudaModel> load(bool norm, int64_t graph_bs, bool mla_token = true,
                                         bool norm_inside = true, bool shared_branch = true) {
    CudaModelOptions o;
    o.page_size = 64;
    o.max_seqs = 8;
    o.max_step_tokens = 256;
    o.num_pages = 64;
    o.load_format = "dummy";
    o.seed = 9;
    o.cuda_graph_max_bs = graph_bs;
    o.norm_in_gemv = norm;
    o.mla_token = mla_token;
    o.moe_norm_inside = norm_inside;
    o.moe_shared_branch = shared_branch;
    auto m = CudaModel::load(dir_, o);
    launch_fill_random_bf16(static_cast<__nv_bfloat16*>(m->kv_data()),
                            static_cast<int64_t>(m->kv_bytes() / 2), 13, 1.0f, nullptr);
    WS_CUDA_CHECK(cudaDeviceSynchronize());
    return m;
  }

  // Decode steps of 1 and 2 sequences over ~700 cached tokens, then greedy ids of 1-token steps.
  static std::vector<float> logits(CudaModel& m, std::vector<int32_t>* ids) {
    std::vector<int32_t> p1, p2;
    for (int32_t j = 0; j < 12; ++j) {
      p1.push_back(40 - 2 * j);
      p2.push_back(41 - 2 * j);
    }
    std::vector<float> all;
    for (int64_t pos : {700, 701}) {
      std::vector<int32_t> a{static_cast<int32_t>(pos % 977)}, b{static_cast<int32_t>(pos % 611)};
      std::vector<model::SequenceInput> one{{a, pos, p1, false}};
      std::vector<model::SequenceInput> two{{a, pos + 2, p1, false}, {b, pos - 5, p2, false}};
      for (auto* in : {&one, &two}) {
        std::vector<float> lg;
        m.forward(*in, &lg);
        all.insert(all.end(), lg.begin(), lg.end());
      }
    }
    for (int64_t pos : {710, 711, 712}) {
      std::vector<int32_t> a{static_cast<int32_t>(pos % 977)};
      model::SequenceInput s{a, pos, p1, false};
      std::vector<int32_t> g;
      m.forward_greedy({&s, 1}, &g);
      ids->insert(ids->end(), g.begin(), g.end());
    }
    return all;
  }
  static std::string dir_;
};
std::string CudaDecodeGemvModel::dir_;

TEST_F(CudaDecodeGemvModel, NormInGemvPairIsBitIdentical) {
  WS_REQUIRE_GPU();
  for (int64_t graph_bs : {int64_t{0}, int64_t{4}}) {
    auto on = load(true, graph_bs);
    auto off = load(false, graph_bs);
    std::vector<int32_t> gi, gj;
    const auto a = logits(*on, &gi), b = logits(*off, &gj);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)))
        << "graphs up to " << graph_bs;
    EXPECT_EQ(gi, gj) << "graphs up to " << graph_bs;
  }
}

// The one-token attention core in one clustered launch (CudaModelOptions::mla_token) against
// the separate kernels (rope prep, absorb GEMM, MLA decode, W_UV GEMV): the same logits up to
// summation order (the batch-2 steps run the separate kernels either way), eagerly and through
// CUDA graphs.
TEST_F(CudaDecodeGemvModel, MlaTokenMatchesSeparateKernels) {
  WS_REQUIRE_GPU();
  for (int64_t graph_bs : {int64_t{0}, int64_t{4}}) {
    auto on = load(true, graph_bs, true);
    auto off = load(true, graph_bs, false);
    std::vector<int32_t> gi, gj;
    const auto a = logits(*on, &gi), b = logits(*off, &gj);
    ASSERT_EQ(a.size(), b.size());
    std::vector<double> ref(b.begin(), b.end());
    const double rel = test::rel_l2(a, ref);
    std::printf("[mla-token] graphs up to %ld: logits rel_l2 %.2e, greedy ids %s\n", long(graph_bs),
                rel, gi == gj ? "equal" : "differ");
    EXPECT_LT(rel, 1e-2) << "graphs up to " << graph_bs;
    EXPECT_GT(rel, 0.0) << "the switch changed nothing: the clustered launch did not run";
  }
}

// The post-attention norm made by the router + routing and up launches at one token
// (CudaModelOptions::moe_norm_inside) against the norm launch, both with the shared experts as
// units: the same logits and greedy ids bit for bit, eagerly and through CUDA graphs; and against
// the default branch path (shared experts by cuBLASLt) within summation order.
TEST_F(CudaDecodeGemvModel, MoeNormInsideIsBitIdentical) {
  WS_REQUIRE_GPU();
  for (int64_t graph_bs : {int64_t{0}, int64_t{4}}) {
    auto on = load(true, graph_bs, true, true, false);
    auto off = load(true, graph_bs, true, false, false);
    auto branch = load(true, graph_bs, true, false, true);
    std::vector<int32_t> gi, gj, gk;
    const auto a = logits(*on, &gi), b = logits(*off, &gj), r = logits(*branch, &gk);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)))
        << "graphs up to " << graph_bs;
    EXPECT_EQ(gi, gj) << "graphs up to " << graph_bs;
    const double rel = test::rel_l2(a, std::vector<double>(r.begin(), r.end()));
    std::printf("[norm-inside] graphs up to %ld: against the branch rel_l2 %.2e, ids %s\n",
                long(graph_bs), rel, gi == gk ? "equal" : "differ");
    EXPECT_LT(rel, 1e-2) << "graphs up to " << graph_bs;
  }
}

}  // namespace
}  // namespace wideserve::cuda
