// `wideserve eplb`: DeepSeek's expert-parallel load balancer on a JSON load file; prints the
// placement as JSON {"phy2log", "log2phy", "logcnt"} with the reference's shapes.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/check.h"
#include "moe/eplb.h"

namespace wideserve::cli {
namespace {

struct EplbArgs {
  std::string weight, algorithm = "deepseek";
  int num_replicas = 0, num_groups = 0, num_nodes = 0, num_gpus = 0;
};

// Reads [[load per logical expert] per layer] from a file ("-" = stdin). Integer loads are
// converted straight to float32 (torch: int64 tensor then .float()), others via double.
std::vector<std::vector<float>> read_weight(const std::string& path) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), {});
  } else {
    std::ifstream f(path);
    WS_CHECK_CODE(kNotFound, f.good(), "--weight: cannot open {}", path);
    text.assign(std::istreambuf_iterator<char>(f), {});
  }
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  WS_CHECK_ARG(!j.is_discarded(), "--weight {}: not valid JSON", path);
  WS_CHECK_ARG(j.is_array() && !j.empty(),
               "--weight {}: expected a non-empty array [[load per logical expert] per layer]",
               path);
  std::vector<std::vector<float>> w;
  for (size_t l = 0; l < j.size(); ++l) {
    const auto& row = j[l];
    WS_CHECK_ARG(row.is_array(), "--weight {}: layer {} is not an array of numbers", path, l);
    std::vector<float> r;
    for (size_t e = 0; e < row.size(); ++e) {
      const auto& v = row[e];
      WS_CHECK_ARG(v.is_number(), "--weight {}: layer {} expert {} is not a number: {}", path, l, e,
                   v.dump());
      if (v.is_number_integer() && !v.is_number_unsigned()) {
        r.push_back(static_cast<float>(v.get<int64_t>()));
      } else if (v.is_number_unsigned()) {
        r.push_back(static_cast<float>(v.get<uint64_t>()));
      } else {
        r.push_back(static_cast<float>(v.get<double>()));
      }
    }
    w.push_back(std::move(r));
  }
  return w;
}

WS_REGISTER_COMMAND(
    "eplb", "Expert-parallel load balancer (DeepSeek EPLB) on a JSON load file", [](CLI::App& app) {
      auto a = std::make_shared<EplbArgs>();
      app.add_option("--weight", a->weight,
                     "JSON file [[load per logical expert] per layer] (- = stdin)")
          ->required();
      app.add_option("--num-replicas", a->num_replicas,
                     "Physical experts per layer (logical + redundant), a multiple of --num-gpus")
          ->required();
      app.add_option("--num-groups", a->num_groups, "Expert groups")->required();
      app.add_option("--num-nodes", a->num_nodes, "Server nodes")->required();
      app.add_option("--num-gpus", a->num_gpus, "GPUs (EP ranks)")->required();
      app.add_option("--eplb-algorithm", a->algorithm, "deepseek|deepseek_hierarchical|auto");
      return [a] {
        const auto algorithm = moe::parse_eplb_algorithm(a->algorithm);
        const auto w = read_weight(a->weight);
        const auto r = moe::rebalance_experts(w, a->num_replicas, a->num_groups, a->num_nodes,
                                              a->num_gpus, algorithm);
        nlohmann::json out = {{"phy2log", r.phy2log}, {"log2phy", r.log2phy}, {"logcnt", r.logcnt}};
        std::printf("%s\n", out.dump().c_str());
        return 0;
      };
    });

}  // namespace
}  // namespace wideserve::cli
