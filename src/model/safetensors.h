// Memory-mapped safetensors files: header parsing with full validation, zero-copy tensor views.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace wideserve::model {

// Element types found in checkpoints.
enum class DType { kF32, kF16, kBF16, kF8E4M3, kI64, kI32, kI16, kI8, kU8, kBool, kF64 };

// Bytes per element.
size_t dtype_size(DType t);
// Safetensors spelling ("BF16", "F8_E4M3", ...).
const char* dtype_name(DType t);
// Parses a safetensors dtype string; returns false if unknown.
bool parse_dtype(const std::string& s, DType* out);

// One tensor inside a mapped file.
struct TensorView {
  std::string name;
  std::string file;  // path of the file holding it, for error messages
  DType dtype;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;
  size_t nbytes = 0;
  int64_t numel() const;
};

// A read-only mmap of one .safetensors file.
class SafetensorsFile {
 public:
  // Opens and validates; throws Error(kNotFound / kDataLoss) naming the file and tensor.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A tensor to be written: its bytes are produced on demand so that large files stream.
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  // Fills `out` (exactly numel * dtype_size bytes).
  std::function<void(std::byte* out)> fill;
};

// Writes a safetensors file (header first, then each tensor's bytes in order, 8-byte aligned
// header).
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata);

}  // namespace wideserve::model
