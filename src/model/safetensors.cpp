#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/check.h"

namespace wideserve::model {
namespace {
// The format's own limit: larger headers are rejected rather than parsed.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DTypeInfo {
  DType t;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::kF32, "F32", 4},        {DType::kF16, "F16", 2}, {DType::kBF16, "BF16", 2},
    {DType::kF8E4M3, "F8_E4M3", 1}, {DType::kI64, "I64", 8}, {DType::kI32, "I32", 4},
    {DType::kI16, "I16", 2},        {DType::kI8, "I8", 1},   {DType::kU8, "U8", 1},
    {DType::kBool, "BOOL", 1},      {DType::kF64, "F64", 8},
};
}  // namespace

size_t dtype_size(DType t) {
  for (const auto& d : kDTypes)
    if (d.t == t) return d.size;
  return 0;
}

const char* dtype_name(DType t) {
  for (const auto& d : kDTypes)
    if (d.t == t) return d.name;
  return "?";
}

bool parse_dtype(const std::string& s, DType* out) {
  for (const auto& d : kDTypes) {
    if (s == d.name) {
      *out = d.t;
      return true;
    }
  }
  return false;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  WS_CHECK_CODE(kNotFound, fd >= 0, "cannot open checkpoint file {}: {}", path,
                std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    WS_THROW(kDataLoss, "cannot stat {}: {}", path, std::strerror(errno));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    map_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map_ == MAP_FAILED) {
      map_ = nullptr;
      ::close(fd);
      WS_THROW(kDataLoss, "cannot mmap {}: {}", path, std::strerror(errno));
    }
  }
  ::close(fd);
  // From here on the destructor does not run if we throw: unmap on failure ourselves.
  try {
    WS_CHECK_CODE(kDataLoss, size_ >= 8, "{}: truncated safetensors file ({} bytes, no header)",
                  path, size_);
    uint64_t hlen;
    std::memcpy(&hlen, map_, 8);  // little-endian on every platform we build for
    WS_CHECK_CODE(kDataLoss, hlen <= kMaxHeaderBytes,
                  "{}: oversized safetensors header ({} bytes, limit {})", path, hlen,
                  kMaxHeaderBytes);
    WS_CHECK_CODE(kDataLoss, hlen <= size_ - 8,
                  "{}: truncated file: header claims {} bytes but file has {}", path, hlen, size_);
    const char* hbeg = static_cast<const char*>(map_) + 8;
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(hbeg, hbeg + hlen);
    } catch (const nlohmann::json::exception& e) {
      WS_THROW(kDataLoss, "{}: corrupt safetensors header: {}", path, e.what());
    }
    WS_CHECK_CODE(kDataLoss, header.is_object(), "{}: corrupt safetensors header (not an object)",
                  path);
    const std::byte* data = static_cast<const std::byte*>(map_) + 8 + hlen;
    const uint64_t data_size = size_ - 8 - hlen;
    for (auto it = header.begin(); it != header.end(); ++it) {
      const std::string& name = it.key();
      const auto& v = it.value();
      if (name == "__metadata__") {
        if (v.is_object())
          for (auto m = v.begin(); m != v.end(); ++m)
            if (m.value().is_string()) metadata_[m.key()] = m.value().get<std::string>();
        continue;
      }
      WS_CHECK_CODE(kDataLoss,
                    v.is_object() && v.contains("dtype") && v["dtype"].is_string() &&
                        v.contains("shape") && v["shape"].is_array() &&
                        v.contains("data_offsets") && v["data_offsets"].is_array() &&
                        v["data_offsets"].size() == 2,
                    "{}: tensor '{}': malformed header entry", path, name);
      TensorView tv;
      tv.name = name;
      tv.file = path;
      std::string ds = v["dtype"].get<std::string>();
      WS_CHECK_CODE(kDataLoss, parse_dtype(ds, &tv.dtype), "{}: tensor '{}': unknown dtype '{}'",
                    path, name, ds);
      uint64_t numel = 1;
      for (const auto& d : v["shape"]) {
        WS_CHECK_CODE(kDataLoss,
                      d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0),
                      "{}: tensor '{}': bad shape {}", path, name, v["shape"].dump());
        uint64_t dim = d.get<uint64_t>();
        WS_CHECK_CODE(kDataLoss, dim < (1ull << 40) && (dim == 0 || numel <= (1ull << 50) / dim),
                      "{}: tensor '{}': shape {} too large", path, name, v["shape"].dump());
        numel *= dim;
        tv.shape.push_back(static_cast<int64_t>(dim));
      }
      const auto& off = v["data_offsets"];
      WS_CHECK_CODE(kDataLoss, off[0].is_number_unsigned() && off[1].is_number_unsigned(),
                    "{}: tensor '{}': bad data_offsets", path, name);
      uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
      WS_CHECK_CODE(kDataLoss, b <= e, "{}: tensor '{}': data_offsets [{}, {}] reversed", path,
                    name, b, e);
      WS_CHECK_CODE(kDataLoss, e <= data_size,
                    "{}: truncated file: tensor '{}' ends at byte {} of a {}-byte data section",
                    path, name, e, data_size);
      tv.nbytes = e - b;
      WS_CHECK_CODE(kDataLoss, tv.nbytes == numel * dtype_size(tv.dtype),
                    "{}: tensor '{}': {} bytes stored but shape {} of {} needs {}", path, name,
                    tv.nbytes, v["shape"].dump(), ds, numel * dtype_size(tv.dtype));
      tv.data = data + b;
      tensors_.emplace(name, std::move(tv));
    }
  } catch (...) {
    if (map_) ::munmap(map_, size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, size_);
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    uint64_t n = dtype_size(t.dtype);
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    header[t.name] = {
        {"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string hs = header.dump();
  while ((hs.size() + 8) % 8 != 0) hs.push_back(' ');
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  WS_CHECK_CODE(kInvalidArgument, f, "cannot write {}: {}", tmp, std::strerror(errno));
  uint64_t hlen = hs.size();
  bool ok =
      std::fwrite(&hlen, 8, 1, f) == 1 && std::fwrite(hs.data(), 1, hs.size(), f) == hs.size();
  std::vector<std::byte> buf;
  for (const auto& t : tensors) {
    if (!ok) break;
    uint64_t n = dtype_size(t.dtype);
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    buf.resize(n);
    t.fill(buf.data());
    ok = std::fwrite(buf.data(), 1, n, f) == n;
  }
  ok = (std::fclose(f) == 0) && ok;
  WS_CHECK_CODE(kResourceExhausted, ok, "writing {} failed (disk full?)", tmp);
  WS_CHECK_CODE(kInternal, std::rename(tmp.c_str(), path.c_str()) == 0, "rename {} -> {} failed",
                tmp, path);
}

}  // namespace wideserve::model
