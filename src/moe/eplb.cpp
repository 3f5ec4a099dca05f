// DeepSeek EPLB, step for step: (1) pack expert groups onto nodes, (2) replicate the hottest
// experts inside each node, (3) pack the replicas onto the node's GPUs. Exactness with the torch
// reference needs its float32 arithmetic order and its tie-breaking, which the helpers below
// reproduce (docs/eplb.md lists them).
#include "moe/eplb.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>

#include "common/check.h"

namespace wideserve::moe {

namespace detail {
namespace {

// One element of the sort: a value and the index it came from.
struct Keyed {
  float value;
  int64_t index;
};

// torch's descending comparator (no NaN reaches here: inputs are validated finite).
inline bool desc(const Keyed& a, const Keyed& b) {
  return a.value > b.value;
}

constexpr int64_t kInsertionThreshold = 16;  // libstdc++ _S_threshold

// The routines below follow libstdc++'s std::sort step for step, so that equal keys end up in
// the same order as in torch (which calls std::sort); another standard library may differ.
void unguarded_linear_insert(Keyed* a, int64_t last) {
  Keyed val = a[last];
  int64_t next = last - 1;
  while (desc(val, a[next])) {
    a[last] = a[next];
    last = next;
    --next;
  }
  a[last] = val;
}

void insertion_sort(Keyed* a, int64_t first, int64_t last) {
  if (first == last) return;
  for (int64_t i = first + 1; i != last; ++i) {
    if (desc(a[i], a[first])) {
      Keyed val = a[i];
      for (int64_t k = i; k > first; --k) a[k] = a[k - 1];
      a[first] = val;
    } else {
      unguarded_linear_insert(a, i);
    }
  }
}

void push_heap(Keyed* a, int64_t hole, int64_t top, Keyed value) {
  int64_t parent = (hole - 1) / 2;
  while (hole > top && desc(a[parent], value)) {
    a[hole] = a[parent];
    hole = parent;
    parent = (hole - 1) / 2;
  }
  a[hole] = value;
}

// Sift down on the heap a[0..len) starting at `hole`, then sift `value` up (libstdc++ order).
void adjust_heap(Keyed* a, int64_t hole, int64_t len, Keyed value) {
  const int64_t top = hole;
  int64_t child = hole;
  while (child < (len - 1) / 2) {
    child = 2 * (child + 1);
    if (desc(a[child], a[child - 1])) --child;
    a[hole] = a[child];
    hole = child;
  }
  if ((len & 1) == 0 && child == (len - 2) / 2) {
    child = 2 * (child + 1);
    a[hole] = a[child - 1];
    hole = child - 1;
  }
  push_heap(a, hole, top, value);
}

// The depth-limit fallback: make_heap + sort_heap over the whole range.
void heap_sort(Keyed* a, int64_t len) {
  if (len >= 2) {
    for (int64_t parent = (len - 2) / 2;; --parent) {
      adjust_heap(a, parent, len, a[parent]);
      if (parent == 0) break;
    }
  }
  for (int64_t last = len - 1; last > 0; --last) {
    Keyed value = a[last];
    a[last] = a[0];
    adjust_heap(a, 0, last, value);
  }
}

void move_median_to_first(Keyed* a, int64_t result, int64_t x, int64_t y, int64_t z) {
  int64_t pick;
  if (desc(a[x], a[y])) {
    pick = desc(a[y], a[z]) ? y : (desc(a[x], a[z]) ? z : x);
  } else {
    pick = desc(a[x], a[z]) ? x : (desc(a[y], a[z]) ? z : y);
  }
  std::swap(a[result], a[pick]);
}

int64_t unguarded_partition(Keyed* a, int64_t first, int64_t last, int64_t pivot) {
  while (true) {
    while (desc(a[first], a[pivot])) ++first;
    --last;
    while (desc(a[pivot], a[last])) --last;
    if (!(first < last)) return first;
    std::swap(a[first], a[last]);
    ++first;
  }
}

void introsort_loop(Keyed* a, int64_t first, int64_t last, int64_t depth_limit) {
  while (last - first > kInsertionThreshold) {
    if (depth_limit == 0) {
      heap_sort(a + first, last - first);
      return;
    }
    --depth_limit;
    const int64_t mid = first + (last - first) / 2;
    move_median_to_first(a, first, first + 1, mid, last - 1);
    const int64_t cut = unguarded_partition(a, first + 1, last, first);
    introsort_loop(a, cut, last, depth_limit);
    last = cut;
  }
}

// Cascade sum of `size` rows of `nrows` columns (torch's multi_row_sum): element (i, k) is
// get(i, k); accumulators are promoted through 4 levels every 2^level_power rows.
template <int64_t kRows, typename Get>
std::array<float, kRows> multi_row_sum(Get get, int64_t size) {
  constexpr int64_t kLevels = 4;
  const int64_t ceil_log2 = size <= 2 ? 1 : std::bit_width(static_cast<uint64_t>(size - 1));
  const int64_t level_power = std::max<int64_t>(4, ceil_log2 / kLevels);
  const int64_t level_step = int64_t{1} << level_power;
  const int64_t level_mask = level_step - 1;
  float acc[kLevels][kRows] = {};
  int64_t i = 0;
  while (i + level_step <= size) {
    for (int64_t j = 0; j < level_step; ++j, ++i) {
      for (int64_t k = 0; k < kRows; ++k) acc[0][k] += get(i, k);
    }
    for (int64_t j = 1; j < kLevels; ++j) {
      for (int64_t k = 0; k < kRows; ++k) {
        acc[j][k] += acc[j - 1][k];
        acc[j - 1][k] = 0.0f;
      }
      if ((i & (level_mask << (j * level_power))) != 0) break;
    }
  }
  for (; i < size; ++i) {
    for (int64_t k = 0; k < kRows; ++k) acc[0][k] += get(i, k);
  }
  std::array<float, kRows> out{};
  for (int64_t k = 0; k < kRows; ++k) {
    float s = acc[0][k];
    for (int64_t j = 1; j < kLevels; ++j) s += acc[j][k];
    out[k] = s;
  }
  return out;
}

// torch's row_sum: 4 interleaved partial sums, tail into the first, then combined.
template <typename Get>
float row_sum(Get get, int64_t size) {
  constexpr int64_t kIlp = 4;
  const int64_t size_ilp = size / kIlp;
  auto partial =
      multi_row_sum<kIlp>([&](int64_t i, int64_t k) { return get(i * kIlp + k); }, size_ilp);
  for (int64_t i = size_ilp * kIlp; i < size; ++i) partial[0] += get(i);
  for (int64_t k = 1; k < kIlp; ++k) partial[0] += partial[k];
  return partial[0];
}

}  // namespace

std::vector<int64_t> torch_sort_desc_indices(const float* x, int64_t n) {
  std::vector<Keyed> a(n);
  for (int64_t i = 0; i < n; ++i) a[i] = {x[i], i};
  if (n > 1) {
    const int64_t depth = 2 * (std::bit_width(static_cast<uint64_t>(n)) - 1);
    introsort_loop(a.data(), 0, n, depth);
    if (n > kInsertionThreshold) {
      insertion_sort(a.data(), 0, kInsertionThreshold);
      for (int64_t i = kInsertionThreshold; i < n; ++i) unguarded_linear_insert(a.data(), i);
    } else {
      insertion_sort(a.data(), 0, n);
    }
  }
  std::vector<int64_t> out(n);
  for (int64_t i = 0; i < n; ++i) out[i] = a[i].index;
  return out;
}

float torch_float_sum(const float* x, int64_t n, int lanes) {
  WS_CHECK(lanes > 0);
  if (n < lanes) return row_sum([&](int64_t i) { return x[i]; }, n);
  // Vectorized inner sum: lane l sums x[l], x[l + lanes], ...; the tail, then the lanes in order.
  const int64_t vec_size = n / lanes;
  float acc = 0.0f;
  for (int64_t k = vec_size * lanes; k < n; ++k) acc += x[k];
  for (int l = 0; l < lanes; ++l) {
    acc += row_sum([&](int64_t i) { return x[i * lanes + l]; }, vec_size);
  }
  return acc;
}

}  // namespace detail

namespace {

using Matrix = std::vector<std::vector<float>>;
using IndexMatrix = std::vector<std::vector<int64_t>>;

// Packs each row's items into num_packs packs of equal count, heaviest first into the lightest
// pack that still has room (lowest pack id on equal weight). Outputs pack and rank per item.
void balanced_packing(const Matrix& weight, int64_t num_packs, IndexMatrix* pack_index,
                      IndexMatrix* rank_in_pack) {
  const int64_t n = weight.empty() ? 0 : static_cast<int64_t>(weight[0].size());
  WS_CHECK(n % num_packs == 0);
  const int64_t per_pack = n / num_packs;
  pack_index->assign(weight.size(), std::vector<int64_t>(n, -1));
  rank_in_pack->assign(weight.size(), std::vector<int64_t>(n, -1));
  for (size_t r = 0; r < weight.size(); ++r) {
    auto& pack = (*pack_index)[r];
    auto& rank = (*rank_in_pack)[r];
    if (per_pack == 1) {
      for (int64_t i = 0; i < n; ++i) pack[i] = i, rank[i] = 0;
      continue;
    }
    std::vector<float> pack_weight(num_packs, 0.0f);
    std::vector<int64_t> pack_items(num_packs, 0);
    for (int64_t item : detail::torch_sort_desc_indices(weight[r].data(), n)) {
      int64_t best = -1;
      for (int64_t p = 0; p < num_packs; ++p) {
        if (pack_items[p] >= per_pack) continue;
        if (best < 0 || pack_weight[p] < pack_weight[best]) best = p;
      }
      WS_CHECK(best >= 0);
      pack[item] = best;
      rank[item] = pack_items[best]++;
      pack_weight[best] += weight[r][item];
    }
  }
}

// Adds num_phy - num_log replicas per row, each to the expert with the largest load per replica
// (first such expert on ties). phy2log starts as the identity for the first num_log slots.
void replicate_experts(const Matrix& weight, int64_t num_phy, IndexMatrix* phy2log,
                       IndexMatrix* rank, IndexMatrix* logcnt) {
  const int64_t num_log = static_cast<int64_t>(weight[0].size());
  WS_CHECK(num_phy >= num_log);
  phy2log->assign(weight.size(), std::vector<int64_t>(num_phy));
  rank->assign(weight.size(), std::vector<int64_t>(num_phy, 0));
  logcnt->assign(weight.size(), std::vector<int64_t>(num_log, 1));
  for (size_t r = 0; r < weight.size(); ++r) {
    auto& p2l = (*phy2log)[r];
    auto& cnt = (*logcnt)[r];
    for (int64_t i = 0; i < num_phy; ++i) p2l[i] = i;
    for (int64_t i = num_log; i < num_phy; ++i) {
      int64_t best = 0;
      float best_load = weight[r][0] / static_cast<float>(cnt[0]);
      for (int64_t j = 1; j < num_log; ++j) {
        const float load = weight[r][j] / static_cast<float>(cnt[j]);
        if (load > best_load) best = j, best_load = load;
      }
      p2l[i] = best;
      (*rank)[r][i] = cnt[best]++;
    }
  }
}

// Inverse of a permutation per row.
IndexMatrix inverse(const IndexMatrix& perm) {
  IndexMatrix inv(perm.size());
  for (size_t r = 0; r < perm.size(); ++r) {
    inv[r].assign(perm[r].size(), 0);
    for (size_t i = 0; i < perm[r].size(); ++i) inv[r][perm[r][i]] = static_cast<int64_t>(i);
  }
  return inv;
}

// The reference's hierarchical policy; the global policy is this with 1 group and 1 node.
// Outputs phy2log, the replica rank of each physical slot, and logcnt.
void rebalance_hierarchical(const Matrix& weight, int64_t num_phy, int64_t num_groups,
                            int64_t num_nodes, int64_t num_gpus, IndexMatrix* out_phy2log,
                            IndexMatrix* out_rank, IndexMatrix* out_logcnt) {
  const int64_t layers = static_cast<int64_t>(weight.size());
  const int64_t num_log = static_cast<int64_t>(weight[0].size());
  const int64_t group_size = num_log / num_groups;
  const int64_t groups_per_node = num_groups / num_nodes;
  const int64_t phy_per_gpu = num_phy / num_gpus;
  const int64_t log_per_node = num_log / num_nodes;
  const int64_t phy_per_node = num_phy / num_nodes;

  // Step 1: groups onto nodes by their summed load. log2mlog numbers experts node-major.
  Matrix group_load(layers, std::vector<float>(num_groups));
  for (int64_t l = 0; l < layers; ++l) {
    for (int64_t g = 0; g < num_groups; ++g) {
      group_load[l][g] = detail::torch_float_sum(weight[l].data() + g * group_size, group_size);
    }
  }
  IndexMatrix group_pack, group_rank;
  balanced_packing(group_load, num_nodes, &group_pack, &group_rank);
  IndexMatrix log2mlog(layers, std::vector<int64_t>(num_log));
  for (int64_t l = 0; l < layers; ++l) {
    for (int64_t g = 0; g < num_groups; ++g) {
      const int64_t base = (group_pack[l][g] * groups_per_node + group_rank[l][g]) * group_size;
      for (int64_t j = 0; j < group_size; ++j) log2mlog[l][g * group_size + j] = base + j;
    }
  }
  const IndexMatrix mlog2log = inverse(log2mlog);

  // Step 2: replicas within each node; one row per (layer, node).
  Matrix node_load(layers * num_nodes, std::vector<float>(log_per_node));
  for (int64_t l = 0; l < layers; ++l) {
    for (int64_t m = 0; m < num_log; ++m) {
      node_load[l * num_nodes + m / log_per_node][m % log_per_node] = weight[l][mlog2log[l][m]];
    }
  }
  IndexMatrix phy2mlog, phyrank, mlogcnt;
  replicate_experts(node_load, phy_per_node, &phy2mlog, &phyrank, &mlogcnt);

  // Step 3: each node's replicas onto its GPUs by load per replica.
  Matrix phy_load(layers * num_nodes, std::vector<float>(phy_per_node));
  for (size_t r = 0; r < phy_load.size(); ++r) {
    for (int64_t p = 0; p < phy_per_node; ++p) {
      const int64_t m = phy2mlog[r][p];
      phy_load[r][p] = node_load[r][m] / static_cast<float>(mlogcnt[r][m]);
    }
  }
  IndexMatrix pack, rank;
  balanced_packing(phy_load, num_gpus / num_nodes, &pack, &rank);
  IndexMatrix phy2pphy(phy_load.size(), std::vector<int64_t>(phy_per_node));
  for (size_t r = 0; r < phy_load.size(); ++r) {
    for (int64_t p = 0; p < phy_per_node; ++p)
      phy2pphy[r][p] = pack[r][p] * phy_per_gpu + rank[r][p];
  }
  const IndexMatrix pphy2phy = inverse(phy2pphy);

  out_phy2log->assign(layers, std::vector<int64_t>(num_phy));
  out_rank->assign(layers, std::vector<int64_t>(num_phy));
  for (int64_t l = 0; l < layers; ++l) {
    for (int64_t node = 0; node < num_nodes; ++node) {
      const int64_t r = l * num_nodes + node;
      for (int64_t q = 0; q < phy_per_node; ++q) {
        const int64_t p = pphy2phy[r][q];
        const int64_t mlog = phy2mlog[r][p] + node * log_per_node;
        (*out_phy2log)[l][node * phy_per_node + q] = mlog2log[l][mlog];
        (*out_rank)[l][node * phy_per_node + q] = phyrank[r][p];
      }
    }
  }
  out_logcnt->assign(layers, std::vector<int64_t>(num_log));
  for (int64_t l = 0; l < layers; ++l) {
    for (int64_t e = 0; e < num_log; ++e) {
      const int64_t m = log2mlog[l][e];
      (*out_logcnt)[l][e] = mlogcnt[l * num_nodes + m / log_per_node][m % log_per_node];
    }
  }
}

void validate(const Matrix& weight, int num_replicas, int num_groups, int num_nodes, int num_gpus,
              bool hierarchical) {
  WS_CHECK_ARG(!weight.empty(), "--weight: no layers (expected [[load per logical expert] ...])");
  const size_t num_log = weight[0].size();
  WS_CHECK_ARG(num_log > 0, "--weight: layer 0 has no experts");
  for (size_t l = 0; l < weight.size(); ++l) {
    WS_CHECK_ARG(weight[l].size() == num_log,
                 "--weight: layer {} has {} experts, layer 0 has {} (all layers must match)", l,
                 weight[l].size(), num_log);
    for (size_t e = 0; e < num_log; ++e) {
      WS_CHECK_ARG(std::isfinite(weight[l][e]),
                   "--weight: load of layer {} expert {} is not a finite float32 ({})", l, e,
                   weight[l][e]);
    }
  }
  WS_CHECK_ARG(num_gpus >= 1, "--num-gpus must be >= 1 (got {})", num_gpus);
  WS_CHECK_ARG(num_nodes >= 1, "--num-nodes must be >= 1 (got {})", num_nodes);
  WS_CHECK_ARG(num_groups >= 1, "--num-groups must be >= 1 (got {})", num_groups);
  WS_CHECK_ARG(num_replicas >= static_cast<int64_t>(num_log),
               "--num-replicas ({}) must be >= the number of logical experts ({})", num_replicas,
               num_log);
  WS_CHECK_ARG(num_replicas % num_gpus == 0,
               "--num-replicas ({}) must be a multiple of --num-gpus ({})", num_replicas, num_gpus);
  if (!hierarchical) return;
  WS_CHECK_ARG(num_groups % num_nodes == 0,
               "--num-groups ({}) must be a multiple of --num-nodes ({}) for the hierarchical "
               "policy",
               num_groups, num_nodes);
  WS_CHECK_ARG(num_log % num_groups == 0,
               "--num-groups ({}) must divide the number of logical experts ({})", num_groups,
               num_log);
  WS_CHECK_ARG(num_gpus % num_nodes == 0, "--num-gpus ({}) must be a multiple of --num-nodes ({})",
               num_gpus, num_nodes);
}

}  // namespace

EplbAlgorithm parse_eplb_algorithm(std::string_view name) {
  if (name == "deepseek") return EplbAlgorithm::kDeepseek;
  if (name == "deepseek_hierarchical") return EplbAlgorithm::kDeepseekHierarchical;
  if (name == "auto") return EplbAlgorithm::kAuto;
  WS_THROW(kInvalidArgument,
           "--eplb-algorithm: unknown '{}' (expected deepseek|deepseek_hierarchical|auto)", name);
}

std::string_view eplb_algorithm_name(EplbAlgorithm algorithm) {
  switch (algorithm) {
    case EplbAlgorithm::kDeepseek:
      return "deepseek";
    case EplbAlgorithm::kDeepseekHierarchical:
      return "deepseek_hierarchical";
    case EplbAlgorithm::kAuto:
      return "auto";
  }
  return "?";
}

EplbResult rebalance_experts(const std::vector<std::vector<float>>& weight, int num_replicas,
                             int num_groups, int num_nodes, int num_gpus, EplbAlgorithm algorithm) {
  const bool hierarchical = algorithm == EplbAlgorithm::kDeepseekHierarchical ||
                            (num_groups > 0 && num_nodes > 0 && num_groups % num_nodes == 0);
  validate(weight, num_replicas, num_groups, num_nodes, num_gpus, hierarchical);
  EplbResult out;
  out.hierarchical = hierarchical;
  IndexMatrix rank;
  if (hierarchical) {
    rebalance_hierarchical(weight, num_replicas, num_groups, num_nodes, num_gpus, &out.phy2log,
                           &rank, &out.logcnt);
  } else {
    rebalance_hierarchical(weight, num_replicas, 1, 1, num_gpus, &out.phy2log, &rank, &out.logcnt);
  }
  // log2phy's last dimension is the largest replica count over all layers (the reference's
  // logcnt.max()); shorter lists are padded with -1.
  int64_t max_cnt = 0;
  for (const auto& row : out.logcnt)
    max_cnt = std::max(max_cnt, *std::max_element(row.begin(), row.end()));
  const size_t num_log = weight[0].size();
  out.log2phy.assign(weight.size(), IndexMatrix(num_log, std::vector<int64_t>(max_cnt, -1)));
  for (size_t l = 0; l < weight.size(); ++l) {
    for (int64_t p = 0; p < num_replicas; ++p) {
      out.log2phy[l][out.phy2log[l][p]][rank[l][p]] = p;
    }
  }
  return out;
}

EplbResult rebalance_experts(const std::vector<std::vector<double>>& weight, int num_replicas,
                             int num_groups, int num_nodes, int num_gpus, EplbAlgorithm algorithm) {
  std::vector<std::vector<float>> w(weight.size());
  for (size_t l = 0; l < weight.size(); ++l) {
    w[l].reserve(weight[l].size());
    for (double v : weight[l]) w[l].push_back(static_cast<float>(v));
  }
  return rebalance_experts(w, num_replicas, num_groups, num_nodes, num_gpus, algorithm);
}

}  // namespace wideserve::moe
