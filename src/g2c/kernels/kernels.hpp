#pragma once
// The kernel table (style.md "Kernels"): every operation of the forward pass is reached through one
// table of function pointers, chosen once per process. ref/ref.cpp fills every entry and is the
// specification; an ISA table (x86/avx2.cpp, x86/avx512.cpp) starts as a copy of ref and
// overrides only what it implements, so a missing SIMD kernel silently falls back to ref.
//
// Matrix products are one entry per (weight type, activation type) pair, as ggml's type_traits_cpu:
// TypeKernels[w] says which activation type `act_type` weights of type w are dotted against and how
// to convert f32 activations to it (`from_float`). The ref table keeps activations in F32 for every
// weight type (act_type = F32, from_float = nullptr) and dequantizes one block at a time inside the
// dot; there is never an F32 copy of a quantized weight.
//
// Contract of the product kernels (all shapes outermost first):
//   w      [n_rows][row_bytes]  rows of `n` elements in the weight type (the GGUF/mmap bytes)
//   x      [n_tok][x_stride]    activation rows of `n` elements in act_type (x_stride in bytes)
//   y      [n_tok][ldy]         f32 outputs; entry (it, r) = dot(w row r, x row it)
//   A kernel computes rows [r0, r1) only, so callers split rows across threads. matvec and vec_dot
//   produce bit-identical values for the same (row, activation) on every table; on ref, matmul does
//   too (batched and single-token runs agree exactly), while an ISA table's prefill tiles may sum in
//   another order and agree to float rounding. n is a multiple of the block size.
//   matmul_small has matmul's contract and is meant for 2..kSmallBatch (15) tokens (a decode step of several
//   sequences): one weight row at a time, front to back as matvec reads it, each block dotted with every
//   token's activation while it is in registers or L1, so the weights stream from memory once per step.
//   On ref it is matmul itself.
//   Pointers need no alignment beyond the element type's (mmap'd GGUF data is 32-byte aligned, but
//   kernels must accept any offset).
// Debug and sanitizer builds check these preconditions at every table's entry points (dcheck.hpp);
// Release builds do not check them at all.
#include <array>
#include <cstddef>
#include <cstdint>

#include "g2c/core/cpu.hpp"
#include "g2c/gguf/types.hpp"

namespace g2c::kernels {

using FromFloatFn = void (*)(const float* x, void* y, std::int64_t n);
using VecDotFn = float (*)(std::int64_t n, const void* w, const void* x);
using MatvecFn = void (*)(std::int64_t n, const void* w, std::size_t row_bytes, const void* x, float* y,
                          std::int64_t r0, std::int64_t r1);
using MatmulFn = void (*)(std::int64_t n, const void* w, std::size_t row_bytes, const void* x, std::size_t x_stride,
                          std::int64_t n_tok, float* y, std::int64_t ldy, std::int64_t r0, std::int64_t r1);
// See KernelTable::attend_multi.
using AttendMultiFn = void (*)(const float* q, std::int64_t q_stride, const void* k, const void* v,
                               std::size_t row_stride, const std::int32_t* n_kv, std::int64_t n_tok, std::int64_t n_rep,
                               std::int64_t head_dim, float scale, float* scratch, float* out, std::int64_t out_stride);

struct TypeKernels {
  GgmlType act_type = GgmlType::F32;  // what activations are converted to before the dot
  FromFloatFn from_float = nullptr;   // f32 -> act_type; nullptr when act_type is F32
  VecDotFn vec_dot = nullptr;         // one row
  MatvecFn matvec = nullptr;          // rows [r0, r1) x one activation (decode)
  MatmulFn matmul = nullptr;          // rows [r0, r1) x n_tok activations (prefill)
  MatmulFn matmul_small = nullptr;    // the same for n_tok <= kSmallBatch (batched decode)
  bool supported() const { return vec_dot != nullptr; }
};

// The most tokens a caller should hand matmul_small: from 16 tokens on, avx512's matmul runs the
// packed-panel GEMM, which is faster there.
inline constexpr std::int64_t kSmallBatch = 15;

// RoPE rotation of one token's heads. `cs` [n_rot/2][2] holds (cos, sin) of each rotated pair for this
// position (rope_cache). kNorm rotates (x[2i], x[2i+1]); kNeox rotates (x[i], x[i + n_rot/2]). Dims
// n_rot..head_dim-1 of each head are left as they are.
enum class RopeMode { kNorm = 0, kNeox = 2 };

struct KernelTable {
  const char* isa_name = "ref";
  std::array<TypeKernels, kGgmlTypeCount> types{};

  // Elementwise / row ops over f32, n elements. In-place use (y == x) is allowed unless noted.
  void (*rmsnorm)(const float* x, const float* w, float* y, std::int64_t n, float eps) = nullptr;
  void (*layernorm)(const float* x, const float* w, const float* b, float* y, std::int64_t n,
                    float eps) = nullptr;  // w, b may be nullptr
  void (*add)(const float* a, const float* b, float* y, std::int64_t n) = nullptr;
  void (*softmax)(float* x, std::int64_t n) = nullptr;
  void (*silu)(const float* x, float* y, std::int64_t n) = nullptr;
  void (*swiglu)(const float* gate, const float* up, float* y, std::int64_t n) = nullptr;  // silu(g)*u
  void (*gelu)(const float* x, float* y, std::int64_t n) = nullptr;  // tanh approx., ggml's fp16 table

  // cs[2i] = cos, cs[2i+1] = sin of pos * freq_scale * base^(-2i/n_rot) / freq_factors[i]
  // (freq_factors may be nullptr), the angle advanced by repeated multiplication as ggml does.
  void (*rope_cache)(std::int32_t pos, std::int64_t n_rot, float freq_base, float freq_scale, const float* freq_factors,
                     float* cs) = nullptr;
  // x [n_head][head_dim] rotated in place.
  void (*rope)(float* x, std::int64_t n_head, std::int64_t head_dim, std::int64_t n_rot, const float* cs,
               RopeMode mode) = nullptr;

  // KV cache in kv type t (F32 or F16), indexed by (int)t: store one row, and attention of one query
  // head over n_kv cached rows: out[head_dim] = softmax(scale * q.K^T) V with K, V rows at
  // k + j * row_stride, v + j * row_stride bytes (the head's offset already applied). scratch [n_kv].
  std::array<void (*)(const float* x, void* dst, std::int64_t n), 2> kv_store{};
  std::array<void (*)(const float* q, const void* k, const void* v, std::size_t row_stride, std::int64_t n_kv,
                      std::int64_t head_dim, float scale, float* scratch, float* out),
             2>
      attend{};
  // Attention of n_tok x n_rep queries that share one KV head of one sequence (prefill: consecutive
  // tokens of a head; GQA: the n_rep query heads of a group, adjacent in a Q row). Query (t, h) is
  // q + t * q_stride + h * head_dim, attends over rows [0, n_kv[t]) (n_kv [n_tok], each >= 1, any
  // order) and writes out + t * out_stride + h * head_dim (strides in floats; k, v, row_stride as for
  // attend). Rows from n_kv[t] up to the largest n_kv may be read but add exactly nothing to query t
  // as long as they are finite; rows beyond the largest n_kv are never read. scratch: at least
  // attend_multi_scratch(n_tok * n_rep, head_dim, largest n_kv) floats of the same table. Every table
  // returns, for each query, exactly what its own `attend` returns (ref runs it per query; avx512
  // reuses each K/V row across the queries in the same order of operations), so results never depend
  // on how queries are grouped into calls.
  std::array<AttendMultiFn, 2> attend_multi{};
  // Floats of scratch this table's attend_multi needs for n_q = n_tok * n_rep queries over at most
  // n_kv_max rows, for either KV type: ref keeps one query's scores (n_kv_max); avx512 keeps the scores
  // of all queries and blocks of converted K/V rows (x86/avx512_attention.cpp has the layout).
  std::size_t (*attend_multi_scratch)(std::int64_t n_q, std::int64_t head_dim, std::int64_t n_kv_max) = nullptr;
};

// Index into KernelTable::kv_store / attend / attend_multi.
inline int kv_index(GgmlType t) { return t == GgmlType::F16 ? 1 : 0; }

// Whether the avx512 table's Q4_0 decode (matvec, vec_dot, matmul_small) is the VBMI four-blocks-a-step
// kernel rather than the block-pair one, by CPU family where measured (docs/benchmarks.md, "Q4_0
// decode kernel per CPU family"): AMD family 25 (Zen 4), where VBMI won, takes it; AMD family 26 (Zen 5),
// where the block-pair kernel decodes tinyllama Q4_0 ~1.4x faster, and every CPU not measured take the
// block-pair kernel. False without AVX512_VBMI. G2C_AVX512_VBMI=0|1 overrides this choice (1 only
// where the CPU has VBMI).
bool vbmi_q4_0_decode_default(const CpuFeatures& cpu);

// The table of this process, chosen on first call: G2C_ISA=ref|avx2|avx512 forces one (an unknown
// name is fatal; a known ISA whose table is not built or not supported by this CPU falls back to ref
// with a warning), otherwise the best table the CPU supports among those built.
const KernelTable& kernels();
// The portable reference table (tests compare every other table against it).
const KernelTable& ref_table();
// The table for an ISA name, or nullptr when not built or not supported by this CPU.
const KernelTable* table_for(const char* isa);

}  // namespace g2c::kernels
