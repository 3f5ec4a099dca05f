#include "model/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/check.h"
#include "common/float_types.h"
#include "common/thread_pool.h"

namespace wideserve::model {
namespace fs = std::filesystem;

namespace {
std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}
int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
}  // namespace

Checkpoint::Checkpoint(const std::string& dir, int64_t fp8_block_rows, int64_t fp8_block_cols)
    : dir_(dir),
      block_rows_(fp8_block_rows > 0 ? fp8_block_rows : 128),
      block_cols_(fp8_block_cols > 0 ? fp8_block_cols : 128) {
  WS_CHECK_CODE(kNotFound, fs::is_directory(dir), "model path {} is not a directory", dir);
  std::vector<std::string> files;
  fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  std::unordered_map<std::string, std::string> weight_map;
  if (fs::exists(index_path)) {
    std::ifstream f(index_path);
    std::stringstream ss;
    ss << f.rdbuf();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(ss.str());
    } catch (const nlohmann::json::exception& e) {
      WS_THROW(kDataLoss, "{}: invalid JSON: {}", index_path.string(), e.what());
    }
    WS_CHECK_CODE(kDataLoss, j.contains("weight_map") && j["weight_map"].is_object(),
                  "{}: no weight_map object", index_path.string());
    std::set<std::string> uniq;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      WS_CHECK_CODE(kDataLoss, it.value().is_string(), "{}: weight_map['{}'] is not a file name",
                    index_path.string(), it.key());
      std::string fn = it.value().get<std::string>();
      WS_CHECK_CODE(kDataLoss,
                    fn.find('/') == std::string::npos && fn.find("..") == std::string::npos,
                    "{}: weight_map['{}'] names a file outside the directory: {}",
                    index_path.string(), it.key(), fn);
      weight_map[it.key()] = fn;
      uniq.insert(fn);
    }
    files.assign(uniq.begin(), uniq.end());
  } else {
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".safetensors") files.push_back(e.path().filename().string());
    std::sort(files.begin(), files.end());
    WS_CHECK_CODE(kNotFound, !files.empty(),
                  "{}: no *.safetensors files and no model.safetensors.index.json", dir);
  }
  for (const auto& fn : files) {
    files_.push_back(std::make_unique<SafetensorsFile>((fs::path(dir) / fn).string()));
    for (const auto& [name, tv] : files_.back()->tensors()) {
      auto [it, inserted] = index_.emplace(name, &tv);
      WS_CHECK_CODE(kDataLoss, inserted, "tensor '{}' appears in both {} and {}", name,
                    it->second->file, tv.file);
    }
  }
  // The index must agree with the files: a listed tensor missing from its shard is corruption.
  for (const auto& [name, fn] : weight_map) {
    auto it = index_.find(name);
    WS_CHECK_CODE(kDataLoss, it != index_.end(), "{}: tensor '{}' listed in the index is not in {}",
                  dir, name, fn);
    WS_CHECK_CODE(kDataLoss, fs::path(it->second->file).filename() == fn,
                  "{}: tensor '{}' listed in {} but found in {}", dir, name, fn, it->second->file);
  }
}

const TensorView& Checkpoint::view(const std::string& name) const {
  auto it = index_.find(name);
  WS_CHECK_CODE(kNotFound, it != index_.end(), "checkpoint {}: missing tensor '{}'", dir_, name);
  return *it->second;
}

std::string Checkpoint::scale_name_for(const std::string& name) const {
  const std::string suffix = ".weight";
  if (name.size() > suffix.size() &&
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    std::string s = name + "_scale_inv";  // NAME.weight_scale_inv, as DeepSeek stores it
    if (has(s)) return s;
  }
  return name + "_scale_inv";
}

void Checkpoint::load_f32(const std::string& name, const std::vector<int64_t>& shape, float* out) {
  const TensorView& tv = view(name);
  WS_CHECK_CODE(kDataLoss, tv.shape == shape, "{}: tensor '{}' has shape {}, expected {}", tv.file,
                name, shape_str(tv.shape), shape_str(shape));
  used_.insert(name);
  const int64_t n = tv.numel();
  switch (tv.dtype) {
    case DType::kF32: {
      std::memcpy(out, tv.data, n * 4);
      return;
    }
    case DType::kBF16:
    case DType::kF16: {
      const auto* src = reinterpret_cast<const uint16_t*>(tv.data);
      bool bf = tv.dtype == DType::kBF16;
      parallel_for(n, 1 << 16, [&](size_t b, size_t e) {
        for (size_t i = b; i < e; ++i) out[i] = bf ? bf16_to_float(src[i]) : f16_to_float(src[i]);
      });
      return;
    }
    case DType::kF8E4M3: {
      // Weights are [rows, cols] or [experts, rows, cols]; scales per block of the last two dims.
      WS_CHECK_CODE(kDataLoss, shape.size() == 2 || shape.size() == 3,
                    "{}: FP8 tensor '{}' must be 2-D or 3-D, has shape {}", tv.file, name,
                    shape_str(shape));
      std::string sname = scale_name_for(name);
      const TensorView& sv = view(sname);
      const int64_t batch = shape.size() == 3 ? shape[0] : 1;
      const int64_t rows = shape[shape.size() - 2], cols = shape.back();
      const int64_t sr = ceil_div(rows, block_rows_), sc = ceil_div(cols, block_cols_);
      std::vector<int64_t> want =
          shape.size() == 3 ? std::vector<int64_t>{batch, sr, sc} : std::vector<int64_t>{sr, sc};
      std::vector<float> scales(batch * sr * sc);
      WS_CHECK_CODE(kDataLoss, sv.dtype == DType::kF32 || sv.dtype == DType::kBF16,
                    "{}: scale tensor '{}' has dtype {}, expected F32 or BF16", sv.file, sname,
                    dtype_name(sv.dtype));
      load_f32(sname, want, scales.data());
      const auto* src = reinterpret_cast<const uint8_t*>(tv.data);
      float lut[256];
      for (int i = 0; i < 256; ++i) lut[i] = fp8_e4m3_to_float(static_cast<uint8_t>(i));
      parallel_for(batch * rows, 64, [&](size_t b, size_t e) {
        for (size_t r = b; r < e; ++r) {
          const int64_t bi = r / rows, ri = r % rows;
          const float* srow = scales.data() + (bi * sr + ri / block_rows_) * sc;
          const uint8_t* in = src + r * cols;
          float* o = out + r * cols;
          for (int64_t c = 0; c < cols; ++c) o[c] = lut[in[c]] * srow[c / block_cols_];
        }
      });
      return;
    }
    default:
      WS_THROW(kDataLoss, "{}: tensor '{}' has dtype {}, expected F32, BF16, F16 or F8_E4M3",
               tv.file, name, dtype_name(tv.dtype));
  }
}

std::vector<float> Checkpoint::load_f32(const std::string& name,
                                        const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> v(n);
  load_f32(name, shape, v.data());
  return v;
}

std::vector<std::string> Checkpoint::unused_tensors() const {
  std::vector<std::string> r;
  for (const auto& [name, tv] : index_)
    if (!used_.count(name)) r.push_back(name);
  std::sort(r.begin(), r.end());
  return r;
}

std::vector<std::string> Checkpoint::tensor_names() const {
  std::vector<std::string> r;
  for (const auto& [name, tv] : index_) r.push_back(name);
  std::sort(r.begin(), r.end());
  return r;
}

}  // namespace wideserve::model
