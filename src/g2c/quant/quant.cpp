// Reference decoders and the type dispatch. Bit-exactness with ggml rests on two things (see
// quant-goldens/README.md): every value is computed in float32 with ggml's algebraic form (the integer
// offset is formed before the multiply, so e.g. Q4_0 yields -0.0 for q = 8 and d < 0), and fp16 scales
// are widened exactly, subnormals included.
#include "g2c/quant/quant.hpp"

#include <cstring>
#include <optional>
#include <string>

#include "g2c/core/error.hpp"
#include "g2c/core/fp16.hpp"
#include "g2c/quant/blocks.hpp"
#include "g2c/quant/ref.hpp"

namespace g2c::quant {
namespace ref {

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, std::int64_t n) {
  const std::int64_t nb = n / kQK4_0;
  for (std::int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      const int x0 = (x[i].qs[j] & 0x0f) - 8;
      const int x1 = (x[i].qs[j] >> 4) - 8;
      y[i * kQK4_0 + j] = static_cast<float>(x0) * d;
      y[i * kQK4_0 + j + kQK4_0 / 2] = static_cast<float>(x1) * d;
    }
  }
}

void dequantize_row_q4_1(const BlockQ4_1* x, float* y, std::int64_t n) {
  const std::int64_t nb = n / kQK4_1;
  for (std::int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float m = fp16_to_fp32(x[i].m);
    for (int j = 0; j < kQK4_1 / 2; ++j) {
      const int x0 = x[i].qs[j] & 0x0f;
      const int x1 = x[i].qs[j] >> 4;
      y[i * kQK4_1 + j] = static_cast<float>(x0) * d + m;
      y[i * kQK4_1 + j + kQK4_1 / 2] = static_cast<float>(x1) * d + m;
    }
  }
}

void dequantize_row_q5_0(const BlockQ5_0* x, float* y, std::int64_t n) {
  const std::int64_t nb = n / kQK5_0;
  for (std::int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    std::uint32_t qh;
    std::memcpy(&qh, x[i].qh, 4);
    for (int j = 0; j < kQK5_0 / 2; ++j) {
      const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
      const int h1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
      const int x0 = ((x[i].qs[j] & 0x0f) | h0) - 16;
      const int x1 = ((x[i].qs[j] >> 4) | h1) - 16;
      y[i * kQK5_0 + j] = static_cast<float>(x0) * d;
      y[i * kQK5_0 + j + kQK5_0 / 2] = static_cast<float>(x1) * d;
    }
  }
}

void dequantize_row_q5_1(const BlockQ5_1* x, float* y, std::int64_t n) {
  const std::int64_t nb = n / kQK5_1;
  for (std::int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float m = fp16_to_fp32(x[i].m);
    std::uint32_t qh;
    std::memcpy(&qh, x[i].qh, 4);
    for (int j = 0; j < kQK5_1 / 2; ++j) {
      const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
      const int h1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
      const int x0 = (x[i].qs[j] & 0x0f) | h0;
      const int x1 = (x[i].qs[j] >> 4) | h1;
      y[i * kQK5_1 + j] = static_cast<float>(x0) * d + m;
      y[i * kQK5_1 + j + kQK5_1 / 2] = static_cast<float>(x1) * d + m;
    }
  }
}

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, std::int64_t n) {
  const std::int64_t nb = n / kQK8_0;
  for (std::int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK8_0; ++j) y[i * kQK8_0 + j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

void dequantize_row_q8_1(const BlockQ8_1* x, float* y, std::int64_t n) {
  const std::int64_t nb = n / kQK8_1;
  for (std::int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK8_1; ++j) y[i * kQK8_1 + j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

void dequantize_row_q2_k(const BlockQ2_K* x, float* y, std::int64_t n) {
  const std::int64_t nb = n / kQK_K;
  for (std::int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float dmin = fp16_to_fp32(x[i].dmin);
    const std::uint8_t* q = x[i].qs;
    int is = 0;
    // Two 128-element halves; in each, byte l of q[0..31] holds elements l, l+32, l+64, l+96 at
    // shifts 0, 2, 4, 6, and each run of 16 elements has its own 4-bit scale and 4-bit min.
    for (int half = 0; half < 2; ++half) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int k = 0; k < 2; ++k) {
          const std::uint8_t sc = x[i].scales[is++];
          const float dl = d * static_cast<float>(sc & 0x0f);
          const float ml = dmin * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l) {
            const int v = (q[l + 16 * k] >> shift) & 3;
            *y++ = dl * static_cast<float>(v) - ml;
          }
        }
      }
      q += 32;
    }
  }
}

namespace {
// Unpacks Q3_K's 16 6-bit scales from 12 bytes: bytes 0..7 hold the low nibbles (scales 0..7 in the
// low halves, 8..15 in the high halves), bytes 8..11 the top 2 bits, scale j's in byte 8 + (j % 4)
// at bit 2 * (j / 4).
void unpack_q3_k_scales(const std::uint8_t* packed, int* scales) {
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? (packed[j] & 0x0f) : (packed[j - 8] >> 4);
    const int high = (packed[8 + (j % 4)] >> (2 * (j / 4))) & 3;
    scales[j] = (low | (high << 4)) - 32;
  }
}
}  // namespace

void dequantize_row_q3_k(const BlockQ3_K* x, float* y, std::int64_t n) {
  const std::int64_t nb = n / kQK_K;
  for (std::int64_t i = 0; i < nb; ++i) {
    const float d_all = fp16_to_fp32(x[i].d);
    int scales[16];
    unpack_q3_k_scales(x[i].scales, scales);
    const std::uint8_t* q = x[i].qs;
    const std::uint8_t* hm = x[i].hmask;
    std::uint8_t m = 1;  // hmask bit: one per 32-element group, for all 256 elements
    int is = 0;
    for (int half = 0; half < 2; ++half) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int k = 0; k < 2; ++k) {
          const float dl = d_all * static_cast<float>(scales[is++]);
          for (int l = 0; l < 16; ++l) {
            const int low = (q[l + 16 * k] >> shift) & 3;
            const int v = low - ((hm[l + 16 * k] & m) ? 0 : 4);
            *y++ = dl * static_cast<float>(v);
          }
        }
        m = static_cast<std::uint8_t>(m << 1);
      }
      q += 32;
    }
  }
}

namespace {
// Q4_K/Q5_K scale j and min j (6 bits each) from the 12 packed bytes: j < 4 are the low 6 bits of
// bytes j and j + 4; j >= 4 take their low 4 bits from byte j + 4 and their top 2 from the spare top
// bits of bytes j - 4 and j.
inline void get_scale_min_k4(int j, const std::uint8_t* q, int* sc, int* mn) {
  if (j < 4) {
    *sc = q[j] & 63;
    *mn = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
    *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}
}  // namespace

void dequantize_row_q4_k(const BlockQ4_K* x, float* y, std::int64_t n) {
  const std::int64_t nb = n / kQK_K;
  for (std::int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float dmin = fp16_to_fp32(x[i].dmin);
    const std::uint8_t* q = x[i].qs;
    // Four 64-element chunks; each uses 32 bytes: low nibbles are sub-block 2c, high nibbles 2c+1.
    for (int c = 0; c < 4; ++c) {
      int sc, mn;
      get_scale_min_k4(2 * c, x[i].scales, &sc, &mn);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(mn);
      get_scale_min_k4(2 * c + 1, x[i].scales, &sc, &mn);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = dmin * static_cast<float>(mn);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0f) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
      q += 32;
    }
  }
}

void dequantize_row_q5_k(const BlockQ5_K* x, float* y, std::int64_t n) {
  const std::int64_t nb = n / kQK_K;
  for (std::int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float dmin = fp16_to_fp32(x[i].dmin);
    const std::uint8_t* ql = x[i].qs;
    const std::uint8_t* qh = x[i].qh;
    // As Q4_K; the 5th bit of sub-block s's element l is bit s of qh[l].
    for (int c = 0; c < 4; ++c) {
      int sc, mn;
      get_scale_min_k4(2 * c, x[i].scales, &sc, &mn);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(mn);
      get_scale_min_k4(2 * c + 1, x[i].scales, &sc, &mn);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = dmin * static_cast<float>(mn);
      const std::uint8_t u1 = static_cast<std::uint8_t>(1u << (2 * c));
      const std::uint8_t u2 = static_cast<std::uint8_t>(2u << (2 * c));
      for (int l = 0; l < 32; ++l) {
        const int v = (ql[l] & 0x0f) + ((qh[l] & u1) ? 16 : 0);
        *y++ = d1 * static_cast<float>(v) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        const int v = (ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0);
        *y++ = d2 * static_cast<float>(v) - m2;
      }
      ql += 32;
    }
  }
}

void dequantize_row_q6_k(const BlockQ6_K* x, float* y, std::int64_t n) {
  const std::int64_t nb = n / kQK_K;
  for (std::int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const std::uint8_t* ql = x[i].ql;
    const std::uint8_t* qh = x[i].qh;
    const std::int8_t* sc = x[i].scales;
    // Two 128-element halves: ql[0..63] and qh[0..31] per half; element l + 32k (k = 0..3) takes
    // its low nibble from ql[l] (k even) or ql[l + 32] (k odd), low or high by k / 2, and its top two
    // bits from qh[l] at bit 2k.
    for (int half = 0; half < 2; ++half) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l + 0] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

void dequantize_row_q8_k(const BlockQ8_K* x, float* y, std::int64_t n) {
  const std::int64_t nb = n / kQK_K;
  for (std::int64_t i = 0; i < nb; ++i) {
    for (int j = 0; j < kQK_K; ++j) y[i * kQK_K + j] = x[i].d * static_cast<float>(x[i].qs[j]);
  }
}

}  // namespace ref

namespace {

[[noreturn]] void throw_unsupported(GgmlType type, const char* what) {
  throw UnsupportedError(std::string("unsupported tensor type ") + type_name(type) + what);
}

void check_block_multiple(GgmlType type, std::int64_t n) {
  G2C_CHECK(n >= 0);
  G2C_CHECK(n % static_cast<std::int64_t>(type_traits(type).block_size) == 0);
}

}  // namespace

void dequantize_row(GgmlType type, const void* src, float* dst, std::int64_t n) {
  using namespace ref;
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float)); return;
    case GgmlType::F16: {
      const auto* h = static_cast<const std::uint16_t*>(src);
      for (std::int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
      return;
    }
    case GgmlType::BF16: {
      const auto* h = static_cast<const std::uint16_t*>(src);
      for (std::int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
      return;
    }
    default: break;
  }
  switch (type) {
    case GgmlType::Q4_0:
      check_block_multiple(type, n);
      return dequantize_row_q4_0(static_cast<const BlockQ4_0*>(src), dst, n);
    case GgmlType::Q4_1:
      check_block_multiple(type, n);
      return dequantize_row_q4_1(static_cast<const BlockQ4_1*>(src), dst, n);
    case GgmlType::Q5_0:
      check_block_multiple(type, n);
      return dequantize_row_q5_0(static_cast<const BlockQ5_0*>(src), dst, n);
    case GgmlType::Q5_1:
      check_block_multiple(type, n);
      return dequantize_row_q5_1(static_cast<const BlockQ5_1*>(src), dst, n);
    case GgmlType::Q8_0:
      check_block_multiple(type, n);
      return dequantize_row_q8_0(static_cast<const BlockQ8_0*>(src), dst, n);
    case GgmlType::Q8_1:
      check_block_multiple(type, n);
      return dequantize_row_q8_1(static_cast<const BlockQ8_1*>(src), dst, n);
    case GgmlType::Q2_K:
      check_block_multiple(type, n);
      return dequantize_row_q2_k(static_cast<const BlockQ2_K*>(src), dst, n);
    case GgmlType::Q3_K:
      check_block_multiple(type, n);
      return dequantize_row_q3_k(static_cast<const BlockQ3_K*>(src), dst, n);
    case GgmlType::Q4_K:
      check_block_multiple(type, n);
      return dequantize_row_q4_k(static_cast<const BlockQ4_K*>(src), dst, n);
    case GgmlType::Q5_K:
      check_block_multiple(type, n);
      return dequantize_row_q5_k(static_cast<const BlockQ5_K*>(src), dst, n);
    case GgmlType::Q6_K:
      check_block_multiple(type, n);
      return dequantize_row_q6_k(static_cast<const BlockQ6_K*>(src), dst, n);
    case GgmlType::Q8_K:
      check_block_multiple(type, n);
      return dequantize_row_q8_k(static_cast<const BlockQ8_K*>(src), dst, n);
    default: throw_unsupported(type, "");
  }
}

bool can_quantize(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q8_0:
    case GgmlType::Q8_1:
    case GgmlType::Q8_K:
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K: return true;
    default: return false;
  }
}

void quantize_row(GgmlType type, const float* src, void* dst, std::int64_t n) {
  using namespace ref;
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float)); return;
    case GgmlType::F16: {
      auto* h = static_cast<std::uint16_t*>(dst);
      for (std::int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
      return;
    }
    case GgmlType::BF16: {
      auto* h = static_cast<std::uint16_t*>(dst);
      for (std::int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(src[i]);
      return;
    }
    default: break;
  }
  switch (type) {
    case GgmlType::Q4_0: check_block_multiple(type, n); return quantize_row_q4_0(src, static_cast<BlockQ4_0*>(dst), n);
    case GgmlType::Q4_1: check_block_multiple(type, n); return quantize_row_q4_1(src, static_cast<BlockQ4_1*>(dst), n);
    case GgmlType::Q5_0: check_block_multiple(type, n); return quantize_row_q5_0(src, static_cast<BlockQ5_0*>(dst), n);
    case GgmlType::Q5_1: check_block_multiple(type, n); return quantize_row_q5_1(src, static_cast<BlockQ5_1*>(dst), n);
    case GgmlType::Q8_0: check_block_multiple(type, n); return quantize_row_q8_0(src, static_cast<BlockQ8_0*>(dst), n);
    case GgmlType::Q8_1: check_block_multiple(type, n); return quantize_row_q8_1(src, static_cast<BlockQ8_1*>(dst), n);
    case GgmlType::Q8_K: check_block_multiple(type, n); return quantize_row_q8_k(src, static_cast<BlockQ8_K*>(dst), n);
    case GgmlType::Q2_K: check_block_multiple(type, n); return quantize_row_q2_k(src, static_cast<BlockQ2_K*>(dst), n);
    case GgmlType::Q3_K: check_block_multiple(type, n); return quantize_row_q3_k(src, static_cast<BlockQ3_K*>(dst), n);
    case GgmlType::Q4_K: check_block_multiple(type, n); return quantize_row_q4_k(src, static_cast<BlockQ4_K*>(dst), n);
    case GgmlType::Q5_K: check_block_multiple(type, n); return quantize_row_q5_k(src, static_cast<BlockQ5_K*>(dst), n);
    case GgmlType::Q6_K: check_block_multiple(type, n); return quantize_row_q6_k(src, static_cast<BlockQ6_K*>(dst), n);
    default: throw_unsupported(type, " for quantization");
  }
}

std::vector<float> dequantize_tensor(const gguf::TensorInfo& t) {
  const std::int64_t ne0 = t.ne[0];
  const std::optional<std::uint64_t> rb = row_bytes(t.type, static_cast<std::uint64_t>(ne0));
  if (!rb) {
    throw FormatError("tensor " + t.name + ": row length " + std::to_string(ne0) + " is not a multiple of the " +
                      type_name(t.type) + " block size " + std::to_string(type_traits(t.type).block_size));
  }
  const std::int64_t n_rows = t.n_rows();
  const std::uint64_t expected = *rb * static_cast<std::uint64_t>(n_rows);
  if (t.n_bytes != expected || (expected != 0 && t.data == nullptr)) {
    throw FormatError("tensor " + t.name + ": expected " + std::to_string(expected) + " bytes of " + type_name(t.type) +
                      " data for shape " + t.shape_string() + ", got " + std::to_string(t.n_bytes));
  }
  std::vector<float> out(static_cast<std::size_t>(t.n_elements()));
  for (std::int64_t ir = 0; ir < n_rows; ++ir) {
    dequantize_row(t.type, t.data + static_cast<std::uint64_t>(ir) * *rb, out.data() + ir * ne0, ne0);
  }
  return out;
}

}  // namespace g2c::quant
