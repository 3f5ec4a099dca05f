// A checkpoint directory: config + safetensors (single file or sharded with an index), with
// float32 loading that dequantizes BF16/F16/FP8-block-scaled tensors and tracks unused tensors.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/safetensors.h"

namespace wideserve::model {

// Opened checkpoint directory; all tensor names across all shards.
class Checkpoint {
 public:
  // Opens DIR/model.safetensors.index.json's shards, else every DIR/*.safetensors file.
  // fp8_block_{rows,cols}: the quantization block (0 = no FP8 expected, but FP8 still loads if
  // scales are present).
  Checkpoint(const std::string& dir, int64_t fp8_block_rows, int64_t fp8_block_cols);

  const std::string& dir() const { return dir_; }
  bool has(const std::string& name) const { return index_.count(name) > 0; }
  // The raw view; throws kNotFound naming the tensor and the directory.
  const TensorView& view(const std::string& name) const;

  // Loads `name` as float32 into `out` (numel of `shape` floats), checking the stored shape.
  // FP8 tensors are multiplied by their block scales (NAME_scale_inv / NAME.weight_scale_inv).
  void load_f32(const std::string& name, const std::vector<int64_t>& shape, float* out);
  // Same into a new vector.
  std::vector<float> load_f32(const std::string& name, const std::vector<int64_t>& shape);

  // Names that were never loaded (scales of loaded FP8 tensors count as loaded).
  std::vector<std::string> unused_tensors() const;
  // All tensor names.
  std::vector<std::string> tensor_names() const;

 private:
  std::string scale_name_for(const std::string& name) const;

  std::string dir_;
  int64_t block_rows_, block_cols_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, const TensorView*> index_;
  std::set<std::string> used_;
};

}  // namespace wideserve::model
