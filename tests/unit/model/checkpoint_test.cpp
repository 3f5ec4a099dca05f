// Bad checkpoints fail with a clear error naming the file and tensor, never a crash.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "model/deepseek_model.h"

namespace wideserve::model {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

// A scratch copy of a small fixture, with helpers to edit its safetensors header and config.
class BrokenCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ws_ckpt_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::copy(fs::path(WS_TEST_FIXTURES) / "tiny-bf16-b-small", dir_);
    for (auto& e : fs::directory_iterator(dir_))
      fs::permissions(e.path(), fs::perms::owner_read | fs::perms::owner_write);
    file_ = (dir_ / "model.safetensors").string();
    std::ifstream f(file_, std::ios::binary);
    uint64_t n;
    f.read(reinterpret_cast<char*>(&n), 8);
    std::string h(n, '\0');
    f.read(h.data(), n);
    header_ = json::parse(h);
    data_.assign(std::istreambuf_iterator<char>(f), {});
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& header_text, const std::string& data) {
    std::ofstream f(file_, std::ios::binary | std::ios::trunc);
    uint64_t n = header_text.size();
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << header_text << data;
  }
  void write() { write(header_.dump(), data_); }

  // Loads and returns the error message (empty if loading succeeded).
  std::string load_error() {
    try {
      DeepseekModel::load(dir_.string());
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
  std::string file_;
  json header_;
  std::string data_;
};

#define EXPECT_CONTAINS(s, sub) EXPECT_NE((s).find(sub), std::string::npos) << "message: " << (s)

TEST_F(BrokenCheckpointTest, IntactLoads) {
  EXPECT_EQ(load_error(), "");
}

TEST_F(BrokenCheckpointTest, MissingTensorIsNamed) {
  header_.erase("model.layers.1.self_attn.kv_b_proj.weight");
  write();
  auto e = load_error();
  EXPECT_CONTAINS(e, "missing tensor 'model.layers.1.self_attn.kv_b_proj.weight'");
}

TEST_F(BrokenCheckpointTest, ExtraTensorIsNamedWithItsFile) {
  header_["model.layers.0.mystery.weight"] = {
      {"dtype", "BF16"}, {"shape", {1}}, {"data_offsets", {0, 2}}};
  write();
  auto e = load_error();
  EXPECT_CONTAINS(e, "unexpected tensor 'model.layers.0.mystery.weight'");
  EXPECT_CONTAINS(e, "model.safetensors");
}

TEST_F(BrokenCheckpointTest, MtpLayerTensorsAreSkipped) {
  // Layer index == num_hidden_layers is the MTP module: present in real checkpoints, not used.
  header_["model.layers.3.eh_proj.weight"] = {
      {"dtype", "BF16"}, {"shape", {1}}, {"data_offsets", {0, 2}}};
  write();
  EXPECT_EQ(load_error(), "");
}

TEST_F(BrokenCheckpointTest, WrongShapeIsNamed) {
  auto& t = header_["model.layers.0.self_attn.o_proj.weight"];
  auto shape = t["shape"].get<std::vector<int64_t>>();
  t["shape"] = {shape[1], shape[0]};
  write();
  auto e = load_error();
  EXPECT_CONTAINS(e, "'model.layers.0.self_attn.o_proj.weight' has shape");
}

TEST_F(BrokenCheckpointTest, UnknownDtypeIsNamed) {
  header_["model.norm.weight"]["dtype"] = "Q4_K";
  write();
  auto e = load_error();
  EXPECT_CONTAINS(e, "unknown dtype 'Q4_K'");
  EXPECT_CONTAINS(e, "model.norm.weight");
}

TEST_F(BrokenCheckpointTest, NonFloatDtypeIsRejected) {
  auto& t = header_["model.norm.weight"];
  t["dtype"] = "I16";
  write();
  EXPECT_CONTAINS(load_error(), "has dtype I16");
}

TEST_F(BrokenCheckpointTest, TruncatedFile) {
  write(header_.dump(), data_.substr(0, data_.size() / 2));
  EXPECT_CONTAINS(load_error(), "truncated file");
}

TEST_F(BrokenCheckpointTest, FileShorterThanHeaderLength) {
  std::ofstream(file_, std::ios::binary | std::ios::trunc) << "abc";
  EXPECT_CONTAINS(load_error(), "truncated");
}

TEST_F(BrokenCheckpointTest, CorruptHeader) {
  std::string h = header_.dump();
  h[h.size() / 2] = '\x01';
  h[0] = '[';
  write(h, data_);
  EXPECT_CONTAINS(load_error(), "corrupt safetensors header");
}

TEST_F(BrokenCheckpointTest, OversizedHeader) {
  std::ofstream f(file_, std::ios::binary | std::ios::trunc);
  uint64_t n = 1ull << 40;
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << "{}";
  f.close();
  EXPECT_CONTAINS(load_error(), "oversized safetensors header");
}

TEST_F(BrokenCheckpointTest, OffsetsPastTheEnd) {
  header_["model.norm.weight"]["data_offsets"] = {0, data_.size() + 100};
  write();
  EXPECT_CONTAINS(load_error(), "truncated file: tensor 'model.norm.weight'");
}

TEST_F(BrokenCheckpointTest, ConfigMissingKeyIsNamed) {
  json cfg = json::parse(std::ifstream(dir_ / "config.json"));
  cfg.erase("kv_lora_rank");
  std::ofstream(dir_ / "config.json") << cfg.dump();
  EXPECT_CONTAINS(load_error(), "missing required key 'kv_lora_rank'");
}

TEST_F(BrokenCheckpointTest, ConfigBadValueIsNamed) {
  json cfg = json::parse(std::ifstream(dir_ / "config.json"));
  cfg["num_experts_per_tok"] = 99;
  std::ofstream(dir_ / "config.json") << cfg.dump();
  EXPECT_CONTAINS(load_error(), "num_experts_per_tok 99");
}

TEST_F(BrokenCheckpointTest, MissingDirectory) {
  fs::remove_all(dir_);
  EXPECT_CONTAINS(load_error(), "config.json");
}

TEST_F(BrokenCheckpointTest, IndexNamingMissingShard) {
  json idx = {{"weight_map", {{"model.norm.weight", "model-00002-of-00002.safetensors"}}}};
  std::ofstream(dir_ / "model.safetensors.index.json") << idx.dump();
  EXPECT_CONTAINS(load_error(), "model-00002-of-00002.safetensors");
}

}  // namespace
}  // namespace wideserve::model
