// The decode CUDA graphs' fixed MLA split workspace covers every (batch, context) bucket's plan
// (a smaller batch or context can split more than the largest bucket: sizing it for the largest
// alone let batch-96 graphs write past it on the H200, an illegal address in a served run), and
// graph steps at split-heavy buckets agree with eager steps. DeepSeek-V2-Lite dimensions cut to
// one layer, random weights on the device.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "backend/cuda/attention/mla.h"
#include "backend/cuda/gpu_test_util.h"
#include "backend/cuda/model/cuda_model.h"
#include "backend/cuda/model/preset_config_dir.h"
#include "backend/cuda/ops/ops.h"

namespace wideserve::cuda {
namespace {

class CudaGraphWorkspace : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (device_count() == 0) return;
    dir_ = test::make_preset_config_dir("v2-lite", 1, "graph_ws_v2lite");
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  static std::unique_ptr<CudaModel> load(int64_t graph_bs) {
    CudaModelOptions o;
    o.page_size = 64;
    o.max_seqs = 160;
    o.max_step_tokens = 512;
    o.num_pages = 96 * 16 + 8;
    o.load_format = "dummy";
    o.seed = 5;
    o.cuda_graph_max_bs = graph_bs;
    return CudaModel::load(dir_, o);
  }
  static std::string dir_;
};
std::string CudaGraphWorkspace::dir_;

TEST_F(CudaGraphWorkspace, CoversEveryBucketsPlan) {
  WS_REQUIRE_GPU();
  auto m = load(160);
  const int64_t heads = m->config().num_attention_heads;
  const int64_t max_ctx = m->config().max_position_embeddings;
  size_t largest_only = mla_workspace_bytes(160, heads, max_ctx);
  size_t need_max = 0;
  for (int64_t b : m->graph_batch_buckets())
    for (int64_t ctx : graph_context_buckets(max_ctx)) {
      const size_t need = mla_workspace_bytes(b, heads, ctx);
      need_max = std::max(need_max, need);
      EXPECT_LE(need, m->graph_workspace_bytes()) << "batch " << b << " context " << ctx;
    }
  EXPECT_EQ(m->graph_workspace_bytes(), need_max);
  std::printf("[graph-ws] %lld heads: fixed workspace %.1f MiB, largest bucket alone %.1f MiB\n",
              static_cast<long long>(heads), need_max / 1048576.0, largest_only / 1048576.0);
}

// Batches 48 and 96 over ~900 cached tokens (context bucket 1024): the split-heavy plans. Graph
// and eager steps split differently (bucket bound vs the real longest length), so a few greedy
// ids may flip on random weights' near-ties; a wrong or overwritten workspace changes most.
TEST_F(CudaGraphWorkspace, SplitHeavyGraphStepsMatchEager) {
  WS_REQUIRE_GPU();
  auto graph = load(160);
  auto eager = load(0);
  for (auto* m : {graph.get(), eager.get()}) {
    launch_fill_random_bf16(static_cast<__nv_bfloat16*>(m->kv_data()),
                            static_cast<int64_t>(m->kv_bytes() / 2), 11, 1.0f, nullptr);
  }
  WS_CUDA_CHECK(cudaDeviceSynchronize());
  for (int64_t B : {48, 96}) {
    std::vector<std::vector<int32_t>> pg(B), tok(B);
    std::vector<model::SequenceInput> in(B);
    for (int64_t b = 0; b < B; ++b) {
      for (int32_t j = 0; j < 16; ++j) pg[b].push_back(static_cast<int32_t>(b * 16 + j));
      tok[b] = {static_cast<int32_t>((b * 7919) % 100000)};
      in[b] = {tok[b], 850 + b, pg[b], false};  // ragged: 851..946 tokens
    }
    std::vector<int32_t> g1, g2, e;
    graph->forward_greedy(in, &g1);  // captures
    graph->forward_greedy(in, &g2);  // replays
    eager->forward_greedy(in, &e);
    ASSERT_EQ(g1.size(), static_cast<size_t>(B));
    EXPECT_EQ(g1, g2) << "batch " << B << ": replay differs from the captured run";
    int same = 0;
    for (int64_t b = 0; b < B; ++b) same += g2[b] == e[b];
    EXPECT_GE(same, B * 9 / 10) << "batch " << B;
    std::printf("[graph-ws] batch %lld: %d of %lld greedy ids equal eager\n",
                static_cast<long long>(B), same, static_cast<long long>(B));
  }
}

}  // namespace
}  // namespace wideserve::cuda
