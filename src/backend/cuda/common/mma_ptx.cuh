// PTX wrappers shared by the mma.sync kernels (MLA attention v3 and v4, the GEMVs and the fused
// small-batch MoE) and the cp.async users: shared-memory addresses, 16-byte cp.async, ldmatrix,
// the bf16 m16n8k16 MMA and the e4m3 / bf16 GEMV steps, fp32 accumulation. Device-only; include
// from .cu files.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace wideserve::cuda {

// A generic pointer into shared memory as the 32-bit shared address PTX wants.
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
// 16 bytes global -> shared, bypassing L1 (cp.async.cg); the bytes past src_bytes (0 or 16) are
// zero-filled. Completes with cp.async.commit_group / wait_group or an mbarrier arrive.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src,
                                            uint32_t src_bytes = 16) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst),
               "l"(__cvta_generic_to_global(src)), "r"(src_bytes)
               : "memory");
}
// Four 8x8 b16 matrices from shared memory (one row address per lane).
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
// The same, transposed.
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
// Two floats as one bf16x2 word (lo in the low half), round to nearest: an A-fragment register.
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}
// c += a (16x16 bf16, row) * b (16x8 bf16, col), fp32 accumulators.
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// GEMV step over 64 bytes of k: lane (g, t) = (lane / 4, lane % 4) holds w, the 16 bytes of weight
// row g at k offset t * 16, and x, the same 16 bytes of A row g (token g; zero for no token). Its
// bytes 0-7 act as the lane's B (and A) fragment k 4t..4t+3, 16+4t..16+4t+3 of one m16n8k32 MMA
// and bytes 8-15 of a second: k is permuted the same way in A and B, so the sum is the exact dot
// over the 64 bytes. c[0], c[1] += token g . weight rows 2t, 2t+1 (A rows 8-15 are zero).
__device__ __forceinline__ void mma_e4m3_chunk64(float (&c)[4], const uint4& x, const uint4& w) {
  asm("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(x.x), "r"(0u), "r"(x.y), "r"(0u), "r"(w.x), "r"(w.y));
  asm("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(x.z), "r"(0u), "r"(x.w), "r"(0u), "r"(w.z), "r"(w.w));
}

// The same over 64 bytes = 32 bf16 of k with two m16n8k16 bf16 MMAs (lane words 0-1, then 2-3).
__device__ __forceinline__ void mma_bf16_chunk64(float (&c)[4], const uint4& x, const uint4& w) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(x.x), "r"(0u), "r"(x.y), "r"(0u), "r"(w.x), "r"(w.y));
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(x.z), "r"(0u), "r"(x.w), "r"(0u), "r"(w.z), "r"(w.w));
}

}  // namespace wideserve::cuda
