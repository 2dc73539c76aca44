// Reference kernels: plain loops, no SIMD intrinsics, the specification every other table is tested
// against. Quantized rows are dequantized one block at a time into a stack buffer (g2c::quant is the
// bit-exact decoder) and dotted against f32 activations.
//
// Summation order is part of the contract here: a row dot sums each block (or 32-element chunk for
// the float types) in index order, then adds the block sums in order. vec_dot, matvec and matmul all
// use block_dot below, so a token gives bit-identical results alone or inside a batch.
#include "g2c/kernels/ref/ref.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "g2c/core/error.hpp"
#include "g2c/core/fp16.hpp"
#include "g2c/kernels/dcheck.hpp"
#include "g2c/quant/quant.hpp"

namespace g2c::kernels::ref {
namespace {

constexpr std::int64_t kMaxBlock = 256;   // QK_K, the largest block of any supported type
constexpr std::int64_t kFloatChunk = 32;  // float types are summed in chunks of this many

inline float block_dot(const float* a, const float* b, std::int64_t n) {
  float s = 0.0f;
  for (std::int64_t j = 0; j < n; ++j) s += a[j] * b[j];
  return s;
}

// Decoders of one block (cnt elements; cnt < kBlock only for the tail of a float row).
struct DecF32 {
  static constexpr GgmlType kType = GgmlType::F32;
  static constexpr std::int64_t kBlock = kFloatChunk;
  static constexpr std::size_t kBytes = kFloatChunk * 4;
  static void deq(const std::uint8_t* p, float* out, std::int64_t cnt) { std::memcpy(out, p, cnt * 4); }
};
struct DecF16 {
  static constexpr GgmlType kType = GgmlType::F16;
  static constexpr std::int64_t kBlock = kFloatChunk;
  static constexpr std::size_t kBytes = kFloatChunk * 2;
  static void deq(const std::uint8_t* p, float* out, std::int64_t cnt) {
    for (std::int64_t j = 0; j < cnt; ++j) {
      fp16_t h;
      std::memcpy(&h, p + 2 * j, 2);
      out[j] = fp16_to_fp32(h);
    }
  }
};
struct DecBF16 {
  static constexpr GgmlType kType = GgmlType::BF16;
  static constexpr std::int64_t kBlock = kFloatChunk;
  static constexpr std::size_t kBytes = kFloatChunk * 2;
  static void deq(const std::uint8_t* p, float* out, std::int64_t cnt) {
    for (std::int64_t j = 0; j < cnt; ++j) {
      bf16_t h;
      std::memcpy(&h, p + 2 * j, 2);
      out[j] = bf16_to_fp32(h);
    }
  }
};
template <GgmlType T, std::int64_t B, std::size_t S>
struct DecQ {
  static constexpr GgmlType kType = T;
  static constexpr std::int64_t kBlock = B;
  static constexpr std::size_t kBytes = S;
  static void deq(const std::uint8_t* p, float* out, std::int64_t cnt) { quant::dequantize_row(T, p, out, cnt); }
  static bool matches_format() {
    const auto& tr = type_traits(T);
    return tr.block_size == B && tr.type_size == S;
  }
};

// One row; what vec_dot, matvec and attend share (the entry points check their arguments, this does not).
template <class D>
float dot_row(std::int64_t n, const void* w, const void* x) {
  const auto* p = static_cast<const std::uint8_t*>(w);
  const auto* xf = static_cast<const float*>(x);
  float tmp[kMaxBlock];
  float sum = 0.0f;
  for (std::int64_t i = 0, ib = 0; i < n; i += D::kBlock, ++ib) {
    const std::int64_t cnt = std::min<std::int64_t>(D::kBlock, n - i);
    D::deq(p + ib * D::kBytes, tmp, cnt);
    sum += block_dot(tmp, xf + i, cnt);
  }
  return sum;
}

template <class D>
float vec_dot(std::int64_t n, const void* w, const void* x) {
  G2C_DCHECK_DOT(D::kType, n, w, x);
  return dot_row<D>(n, w, x);
}

template <class D>
void matvec(std::int64_t n, const void* w, std::size_t row_bytes, const void* x, float* y, std::int64_t r0,
            std::int64_t r1) {
  G2C_DCHECK_MATVEC(D::kType, n, w, x, y, r0, r1);
  const auto* p = static_cast<const std::uint8_t*>(w);
  for (std::int64_t r = r0; r < r1; ++r) y[r] = dot_row<D>(n, p + r * row_bytes, x);
}

// Each weight block is decoded once per tile of kTile tokens (not once per token).
template <class D>
void matmul(std::int64_t n, const void* w, std::size_t row_bytes, const void* x, std::size_t x_stride,
            std::int64_t n_tok, float* y, std::int64_t ldy, std::int64_t r0, std::int64_t r1) {
  G2C_DCHECK_MATMUL(D::kType, n, w, x, n_tok, y, ldy, r0, r1);
  constexpr std::int64_t kTile = 8;
  const auto* p = static_cast<const std::uint8_t*>(w);
  const auto* xb = static_cast<const std::uint8_t*>(x);
  float tmp[kMaxBlock];
  for (std::int64_t r = r0; r < r1; ++r) {
    const std::uint8_t* row = p + r * row_bytes;
    for (std::int64_t t0 = 0; t0 < n_tok; t0 += kTile) {
      const std::int64_t nt = std::min(kTile, n_tok - t0);
      float acc[kTile] = {};
      for (std::int64_t i = 0, ib = 0; i < n; i += D::kBlock, ++ib) {
        const std::int64_t cnt = std::min<std::int64_t>(D::kBlock, n - i);
        D::deq(row + ib * D::kBytes, tmp, cnt);
        for (std::int64_t t = 0; t < nt; ++t) {
          const auto* xt = reinterpret_cast<const float*>(xb + (t0 + t) * x_stride);
          acc[t] += block_dot(tmp, xt + i, cnt);
        }
      }
      for (std::int64_t t = 0; t < nt; ++t) y[(t0 + t) * ldy + r] = acc[t];
    }
  }
}

template <class D>
TypeKernels make_type() {
  static_assert(D::kBlock <= kMaxBlock);
  TypeKernels k;
  k.act_type = GgmlType::F32;
  k.from_float = nullptr;
  k.vec_dot = &vec_dot<D>;
  k.matvec = &matvec<D>;
  k.matmul = &matmul<D>;
  k.matmul_small = &matmul<D>;  // already row-stationary: each block decoded once per 8 tokens
  return k;
}

// ---- elementwise ---------------------------------------------------------------------------------

// As ggml: sum of squares in double, y = x * (1/sqrt(mean + eps)), then * w.
void rmsnorm(const float* x, const float* w, float* y, std::int64_t n, float eps) {
  G2C_DCHECK(x != nullptr && y != nullptr && n >= 1);
  double sum = 0.0;
  for (std::int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] * scale;
  if (w)
    for (std::int64_t i = 0; i < n; ++i) y[i] *= w[i];
}

// As ggml_norm: mean and biased variance in double, then * w + b as separate steps.
void layernorm(const float* x, const float* w, const float* b, float* y, std::int64_t n, float eps) {
  G2C_DCHECK(x != nullptr && y != nullptr && n >= 1);
  double sum = 0.0;
  for (std::int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  double sum2 = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = x[i] - mean;
    y[i] = v;
    sum2 += static_cast<double>(v * v);
  }
  const float variance = static_cast<float>(sum2 / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(variance + eps);
  for (std::int64_t i = 0; i < n; ++i) y[i] *= scale;
  if (w)
    for (std::int64_t i = 0; i < n; ++i) y[i] *= w[i];
  if (b)
    for (std::int64_t i = 0; i < n; ++i) y[i] += b[i];
}

void add(const float* a, const float* b, float* y, std::int64_t n) {
  G2C_DCHECK(a != nullptr && b != nullptr && y != nullptr && n >= 0);
  for (std::int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

// Max-subtracted, the sum of exponentials kept in double (as ggml_vec_soft_max_f32).
void softmax(float* x, std::int64_t n) {
  G2C_DCHECK(x != nullptr && n >= 1);
  float mx = -INFINITY;
  for (std::int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const float e = std::exp(x[i] - mx);
    x[i] = e;
    sum += static_cast<double>(e);
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (std::int64_t i = 0; i < n; ++i) x[i] *= inv;
}

inline float silu1(float v) { return v / (1.0f + std::exp(-v)); }

void silu(const float* x, float* y, std::int64_t n) {
  G2C_DCHECK(x != nullptr && y != nullptr && n >= 0);
  for (std::int64_t i = 0; i < n; ++i) y[i] = silu1(x[i]);
}

void swiglu(const float* g, const float* u, float* y, std::int64_t n) {
  G2C_DCHECK(g != nullptr && u != nullptr && y != nullptr && n >= 0);
  for (std::int64_t i = 0; i < n; ++i) y[i] = silu1(g[i]) * u[i];
}

// ggml's CPU GELU: 0.5x(1 + tanh(sqrt(2/pi) x (1 + 0.044715 x^2))) evaluated at x rounded to fp16 and
// the result rounded to fp16 (a 64K-entry table); x <= -10 gives 0, x >= 10 gives x.
const fp16_t* gelu_table() {
  static const std::vector<fp16_t> table = [] {
    std::vector<fp16_t> t(65536);
    constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
    constexpr float kCoefA = 0.044715f;
    for (std::uint32_t i = 0; i < 65536; ++i) {
      const float v = fp16_to_fp32(static_cast<fp16_t>(i));
      const float g = 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * v * (1.0f + kCoefA * v * v)));
      t[i] = fp32_to_fp16(g);
    }
    return t;
  }();
  return table.data();
}

void gelu(const float* x, float* y, std::int64_t n) {
  G2C_DCHECK(x != nullptr && y != nullptr && n >= 0);
  const fp16_t* t = gelu_table();
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (v <= -10.0f) {
      y[i] = 0.0f;
    } else if (v >= 10.0f) {
      y[i] = v;
    } else {
      y[i] = fp16_to_fp32(t[fp32_to_fp16(v)]);
    }
  }
}

void rope_cache(std::int32_t pos, std::int64_t n_rot, float freq_base, float freq_scale, const float* ff, float* cs) {
  G2C_DCHECK(cs != nullptr && n_rot >= 0 && n_rot % 2 == 0);
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(n_rot));
  float theta = static_cast<float>(pos);
  for (std::int64_t i = 0; i < n_rot / 2; ++i) {
    const float f = ff ? ff[i] : 1.0f;
    const float th = freq_scale * (theta / f);
    cs[2 * i] = std::cos(th);
    cs[2 * i + 1] = std::sin(th);
    theta *= theta_scale;
  }
}

void rope(float* x, std::int64_t n_head, std::int64_t head_dim, std::int64_t n_rot, const float* cs, RopeMode mode) {
  G2C_DCHECK(x != nullptr && cs != nullptr && n_head >= 0);
  G2C_DCHECK(n_rot >= 0 && n_rot % 2 == 0 && n_rot <= head_dim);
  const std::int64_t half = n_rot / 2;
  for (std::int64_t ih = 0; ih < n_head; ++ih) {
    float* h = x + ih * head_dim;
    for (std::int64_t i = 0; i < half; ++i) {
      const float c = cs[2 * i];
      const float s = cs[2 * i + 1];
      float* a = mode == RopeMode::kNorm ? h + 2 * i : h + i;
      float* b = mode == RopeMode::kNorm ? h + 2 * i + 1 : h + i + half;
      const float x0 = *a;
      const float x1 = *b;
      *a = x0 * c - x1 * s;
      *b = x0 * s + x1 * c;
    }
  }
}

// ---- KV cache ------------------------------------------------------------------------------------

void kv_store_f32(const float* x, void* dst, std::int64_t n) {
  G2C_DCHECK(x != nullptr && dst != nullptr && n >= 0);
  std::memcpy(dst, x, n * sizeof(float));
}
void kv_store_f16(const float* x, void* dst, std::int64_t n) {
  G2C_DCHECK(x != nullptr && dst != nullptr && n >= 0);
  auto* d = static_cast<std::uint8_t*>(dst);
  for (std::int64_t i = 0; i < n; ++i) {
    const fp16_t h = fp32_to_fp16(x[i]);
    std::memcpy(d + 2 * i, &h, 2);
  }
}

template <class D>
void attend(const float* q, const void* k, const void* v, std::size_t row_stride, std::int64_t n_kv,
            std::int64_t head_dim, float scale, float* scratch, float* out) {
  G2C_DCHECK_ATTEND(q, k, v, row_stride, n_kv, head_dim, D::kBytes / D::kBlock, scratch, out);
  const auto* kb = static_cast<const std::uint8_t*>(k);
  const auto* vb = static_cast<const std::uint8_t*>(v);
  for (std::int64_t j = 0; j < n_kv; ++j) scratch[j] = dot_row<D>(head_dim, kb + j * row_stride, q) * scale;
  softmax(scratch, n_kv);
  float tmp[kFloatChunk];
  for (std::int64_t d = 0; d < head_dim; ++d) out[d] = 0.0f;
  for (std::int64_t j = 0; j < n_kv; ++j) {
    const std::uint8_t* row = vb + j * row_stride;
    const float a = scratch[j];
    for (std::int64_t i = 0, ib = 0; i < head_dim; i += D::kBlock, ++ib) {
      const std::int64_t cnt = std::min<std::int64_t>(D::kBlock, head_dim - i);
      D::deq(row + ib * D::kBytes, tmp, cnt);
      for (std::int64_t t = 0; t < cnt; ++t) out[i + t] += a * tmp[t];
    }
  }
}

// One ref attend per query: bit-identical to calling attend for each (token, head).
template <class D>
void attend_multi(const float* q, std::int64_t q_stride, const void* k, const void* v, std::size_t row_stride,
                  const std::int32_t* n_kv, std::int64_t n_tok, std::int64_t n_rep, std::int64_t head_dim, float scale,
                  float* scratch, float* out, std::int64_t out_stride) {
  G2C_DCHECK_ATTEND_MULTI(q, q_stride, k, v, row_stride, n_kv, n_tok, n_rep, head_dim, D::kBytes / D::kBlock, scratch,
                          out, out_stride);
  for (std::int64_t t = 0; t < n_tok; ++t)
    for (std::int64_t h = 0; h < n_rep; ++h)
      attend<D>(q + t * q_stride + h * head_dim, k, v, row_stride, n_kv[t], head_dim, scale, scratch,
                out + t * out_stride + h * head_dim);
}

// attend_multi runs attend once per query, one after the other: the scores of one query.
std::size_t attend_multi_scratch(std::int64_t /*n_q*/, std::int64_t /*head_dim*/, std::int64_t n_kv_max) {
  return static_cast<std::size_t>(n_kv_max);
}

}  // namespace

KernelTable make_table() {
  KernelTable t;
  t.isa_name = "ref";
  auto set = [&](GgmlType ty, TypeKernels k) { t.types[static_cast<std::size_t>(ty)] = k; };
  (void)gelu_table();  // built here, not inside the first forward pass
  set(GgmlType::F32, make_type<DecF32>());
  set(GgmlType::F16, make_type<DecF16>());
  set(GgmlType::BF16, make_type<DecBF16>());
  G2C_CHECK((DecQ<GgmlType::Q4_0, 32, 18>::matches_format() && DecQ<GgmlType::Q6_K, 256, 210>::matches_format() &&
             DecQ<GgmlType::Q2_K, 256, 84>::matches_format() && DecQ<GgmlType::Q3_K, 256, 110>::matches_format()));
  set(GgmlType::Q4_0, make_type<DecQ<GgmlType::Q4_0, 32, 18>>());
  set(GgmlType::Q4_1, make_type<DecQ<GgmlType::Q4_1, 32, 20>>());
  set(GgmlType::Q5_0, make_type<DecQ<GgmlType::Q5_0, 32, 22>>());
  set(GgmlType::Q5_1, make_type<DecQ<GgmlType::Q5_1, 32, 24>>());
  set(GgmlType::Q8_0, make_type<DecQ<GgmlType::Q8_0, 32, 34>>());
  set(GgmlType::Q2_K, make_type<DecQ<GgmlType::Q2_K, 256, 84>>());
  set(GgmlType::Q3_K, make_type<DecQ<GgmlType::Q3_K, 256, 110>>());
  set(GgmlType::Q4_K, make_type<DecQ<GgmlType::Q4_K, 256, 144>>());
  set(GgmlType::Q5_K, make_type<DecQ<GgmlType::Q5_K, 256, 176>>());
  set(GgmlType::Q6_K, make_type<DecQ<GgmlType::Q6_K, 256, 210>>());
  t.rmsnorm = &rmsnorm;
  t.layernorm = &layernorm;
  t.add = &add;
  t.softmax = &softmax;
  t.silu = &silu;
  t.swiglu = &swiglu;
  t.gelu = &gelu;
  t.rope_cache = &rope_cache;
  t.rope = &rope;
  t.kv_store[0] = &kv_store_f32;
  t.kv_store[1] = &kv_store_f16;
  t.attend[0] = &attend<DecF32>;
  t.attend[1] = &attend<DecF16>;
  t.attend_multi[0] = &attend_multi<DecF32>;
  t.attend_multi[1] = &attend_multi<DecF16>;
  t.attend_multi_scratch = &attend_multi_scratch;
  return t;
}

}  // namespace g2c::kernels::ref
