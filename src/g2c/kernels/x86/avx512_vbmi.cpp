// Q4_0 decode of the AVX-512 table on CPUs with AVX512_VBMI (Zen 4, Ice Lake and later): four blocks
// per step. Compiled with the avx512 flags plus -mavx512vbmi; the table installs it only when CPUID
// reports VBMI (make() in x86/avx512.cpp), so the rest of the table still runs on Skylake/Cascade Lake.
//
// Why: Q4_0 decode is bound by instructions, not DRAM, on two Zen 4 cores (the same weights as Q8_0
// streamed at 27 GB/s against Q8_0's 36). Four 18-byte blocks are 72 contiguous bytes: two loads and one
// vpermt2b gather their 64 quant bytes, one vpermw their four fp16 scales (each repeated over the 4
// lanes of its block), so a step is ~15 instructions for 128 weights instead of ~28 for two block pairs.
//   activation, prepared once per call: xa [nb/4][64] = x[0..15] of blocks 0..3, xb [nb/4][64] =
//   x[16..31] of blocks 0..3, seed [nb/4][16] = -8 * sum(x) of block b in lane 4b, dx [nb/4][16] = dx of
//   block l/4 in lane l.
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "g2c/kernels/dcheck.hpp"
#include "g2c/quant/blocks.hpp"

// Software prefetch distance in bytes (0: none). tinyllama-1.1b Q4_0 tg64, 2 threads: none 48.3,
// 1 KiB 52.3, 2 KiB 54.8, 4 KiB 54.0 tok/s.
#ifndef G2C_Q4_PF
#define G2C_Q4_PF 2048
#endif

namespace g2c::kernels::avx512::detail {

void q4_0_matvec_vbmi(std::int64_t n, const void* w, std::size_t rb, const void* x, float* y, std::int64_t r0,
                      std::int64_t r1);
float q4_0_vec_dot_vbmi(std::int64_t n, const void* w, const void* x);

namespace {

using quant::BlockQ4_0;
using quant::BlockQ8_0;

struct Prep {
  std::vector<std::int8_t> xa, xb;  // [ng][64]
  std::vector<std::int32_t> seed;   // [ng][16]
  std::vector<float> dx;            // [ng][16]
};

void prepare(const BlockQ8_0* x, std::int64_t nb, Prep& p) {
  const std::int64_t ng = nb / 4;
  p.xa.resize(static_cast<std::size_t>(ng * 64));
  p.xb.resize(static_cast<std::size_t>(ng * 64));
  p.seed.assign(static_cast<std::size_t>(ng * 16), 0);
  p.dx.resize(static_cast<std::size_t>(ng * 16));
  for (std::int64_t g = 0; g < ng; ++g)
    for (int b = 0; b < 4; ++b) {
      const BlockQ8_0& xb = x[4 * g + b];
      std::memcpy(p.xa.data() + g * 64 + 16 * b, xb.qs, 16);
      std::memcpy(p.xb.data() + g * 64 + 16 * b, xb.qs + 16, 16);
      int s = 0;
      for (int k = 0; k < 32; ++k) s += xb.qs[k];
      p.seed[static_cast<std::size_t>(g * 16 + 4 * b)] = -8 * s;
      const float d = _cvtsh_ss(xb.d);
      for (int l = 0; l < 4; ++l) p.dx[static_cast<std::size_t>(g * 16 + 4 * b + l)] = d;
    }
}

// Blocks past the last group of four, one at a time (rows whose length is not a multiple of 128).
float tail_blocks(const std::uint8_t* w, const BlockQ8_0* x, std::int64_t b0, std::int64_t nb) {
  float sum = 0.0f;
  for (std::int64_t ib = b0; ib < nb; ++ib) {
    const auto& wb = reinterpret_cast<const BlockQ4_0*>(w)[ib];
    int s = 0;
    for (int k = 0; k < 16; ++k) s += ((wb.qs[k] & 0x0f) - 8) * x[ib].qs[k] + ((wb.qs[k] >> 4) - 8) * x[ib].qs[k + 16];
    sum += _cvtsh_ss(wb.d) * _cvtsh_ss(x[ib].d) * static_cast<float>(s);
  }
  return sum;
}

// acc + group g (blocks 4g..4g+3) of row w, as 16 lanes of scaled partial sums.
struct PrepView {
  const std::int8_t* xa;
  const std::int8_t* xb;
  const std::int32_t* seed;
  const float* dx;
};

inline __m512 step4(const std::uint8_t* w, const PrepView& p, std::int64_t g, __m512i qidx, __m512i didx, __m512i lo4,
                    __m512 acc) {
  const std::uint8_t* q = w + 72 * g;
#if G2C_Q4_PF
  _mm_prefetch(reinterpret_cast<const char*>(q) + G2C_Q4_PF, _MM_HINT_T0);
#endif
  const __m512i z0 = _mm512_loadu_si512(q);
  const __m512i z1 = _mm512_maskz_loadu_epi8(0xff, q + 64);  // masked: never reads past the group
  const __m512i nib = _mm512_permutex2var_epi8(z0, qidx, z1);
  const __m512i lo = _mm512_and_si512(nib, lo4);
  const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(nib, 4), lo4);
  __m512i i = _mm512_dpbusd_epi32(_mm512_loadu_si512(p.seed + 16 * g), lo, _mm512_loadu_si512(p.xa + 64 * g));
  i = _mm512_dpbusd_epi32(i, hi, _mm512_loadu_si512(p.xb + 64 * g));
  const __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(didx, z0)));
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), _mm512_mul_ps(dw, _mm512_loadu_ps(p.dx + 16 * g)), acc);
}

float dot_row(std::int64_t nb, const std::uint8_t* w, const BlockQ8_0* x, const PrepView& p) {
  // Byte j of the quants: block j/16, quant byte j%16, at 18 * (j/16) + 2 + j%16 of the 72 bytes.
  alignas(64) static const std::uint8_t kQIdx[64] = {2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17,
                                                     20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35,
                                                     38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53,
                                                     56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71};
  const __m512i qidx = _mm512_load_si512(kQIdx);
  // Word l (l < 16) = the fp16 scale of block l/4 (word 9 * (l/4)).
  const __m512i didx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 27, 27, 27, 27, 18, 18, 18, 18,
                                        9, 9, 9, 9, 0, 0, 0, 0);
  const __m512i lo4 = _mm512_set1_epi8(0x0f);
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  const std::int64_t ng = nb / 4;
  std::int64_t g = 0;
  for (; g + 2 <= ng; g += 2) {
    acc0 = step4(w, p, g, qidx, didx, lo4, acc0);
    acc1 = step4(w, p, g + 1, qidx, didx, lo4, acc1);
  }
  if (g < ng) acc0 = step4(w, p, g, qidx, didx, lo4, acc0);
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + tail_blocks(w, x, 4 * ng, nb);
}

}  // namespace

void q4_0_matvec_vbmi(std::int64_t n, const void* w, std::size_t rb, const void* x, float* y, std::int64_t r0,
                      std::int64_t r1) {
  G2C_DCHECK_MATVEC(GgmlType::Q4_0, n, w, x, y, r0, r1);
  thread_local Prep prep;
  const auto* xq = static_cast<const BlockQ8_0*>(x);
  prepare(xq, n / 32, prep);
  const auto* wb = static_cast<const std::uint8_t*>(w);
  const PrepView view{prep.xa.data(), prep.xb.data(), prep.seed.data(), prep.dx.data()};
  for (std::int64_t r = r0; r < r1; ++r) y[r] = dot_row(n / 32, wb + r * rb, xq, view);
}

float q4_0_vec_dot_vbmi(std::int64_t n, const void* w, const void* x) {
  float out;
  q4_0_matvec_vbmi(n, w, 0, x, &out, 0, 1);
  return out;
}

}  // namespace g2c::kernels::avx512::detail
