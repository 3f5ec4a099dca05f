// KV block hashes shared by workers (which publish them) and the KV-aware router (which looks them
// up): Dynamo's scheme. A block's local hash is XXH3-64 (seed 1337) over its token ids as
// little-endian u32; its block (sequence) hash chains the parent's: the first block's is its local
// hash, block i's is XXH3-64 (seed 1337) over the little-endian u64 pair (hash of block i-1, local
// hash of block i). A block hash thus names the whole prefix up to and including the block.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace wideserve::kvcache {

// Dynamo's XXH3 seed for KV block hashes.
inline constexpr uint64_t kBlockHashSeed = 1337;

// XXH3-64 of one block's tokens (little-endian u32 each).
uint64_t local_block_hash(std::span<const int32_t> tokens);
// The chained hash of a block whose parent block hash is `parent`.
uint64_t chain_block_hash(uint64_t parent, uint64_t local);
// Chained hashes of every whole block of `tokens` (a trailing partial block is ignored).
std::vector<uint64_t> block_hashes(std::span<const int32_t> tokens, int64_t block_size);

}  // namespace wideserve::kvcache
