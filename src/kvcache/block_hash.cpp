#include "kvcache/block_hash.h"

#include <xxhash.h>

#include <bit>
#include <cstring>

#include "common/check.h"

namespace wideserve::kvcache {
namespace {

static_assert(std::endian::native == std::endian::little,
              "block hashes are defined over little-endian bytes");

}  // namespace

uint64_t local_block_hash(std::span<const int32_t> tokens) {
  // int32 and u32 share their bytes; on a little-endian host the span already is the byte layout.
  return XXH3_64bits_withSeed(tokens.data(), tokens.size() * sizeof(int32_t), kBlockHashSeed);
}

uint64_t chain_block_hash(uint64_t parent, uint64_t local) {
  uint64_t pair[2] = {parent, local};
  return XXH3_64bits_withSeed(pair, sizeof(pair), kBlockHashSeed);
}

std::vector<uint64_t> block_hashes(std::span<const int32_t> tokens, int64_t block_size) {
  WS_CHECK_ARG(block_size > 0, "KV block size must be positive, got {}", block_size);
  const size_t n = tokens.size() / static_cast<size_t>(block_size);
  std::vector<uint64_t> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const uint64_t local = local_block_hash(tokens.subspan(i * block_size, block_size));
    out.push_back(i == 0 ? local : chain_block_hash(out.back(), local));
  }
  return out;
}

}  // namespace wideserve::kvcache
