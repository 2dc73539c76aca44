// Every ISA table against the reference: every overridden weight type, sizes with tails, misaligned
// rows, row ranges that are not multiples of the kernel's row blocking, and several tokens.
//
// Independent check: the expected value is computed from g2c::quant's bit-exact dequantizers (checked
// against llama.cpp's goldens in tests/quant) in double precision: weights dequantized, and activations
// quantized with the table's from_float and dequantized back, so an integer-dot kernel must reproduce
// exactly the product of the two decoded operands up to float summation error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "g2c/kernels/kernels.hpp"
#include "g2c/quant/quant.hpp"

namespace g2c::kernels {
namespace {

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                           GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                           GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

std::vector<const KernelTable*> isa_tables() {
  std::vector<const KernelTable*> out;
  for (const char* isa : {"avx2", "avx512"})
    if (const KernelTable* t = table_for(isa)) out.push_back(t);
  return out;
}

// Random but well-formed rows of `type`: quantized from f32 where g2c can quantize the type, else
// random bytes with the fp16 scale fields overwritten by small finite values.
std::vector<std::uint8_t> make_rows(GgmlType type, std::int64_t n, std::int64_t rows, std::mt19937& rng) {
  const std::size_t rb = *row_bytes(type, static_cast<std::uint64_t>(n));
  std::vector<std::uint8_t> out(rb * static_cast<std::size_t>(rows));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> src(static_cast<std::size_t>(n));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (auto& v : src) v = nd(rng);
    std::uint8_t* dst = out.data() + r * rb;
    if (quant::can_quantize(type)) {
      quant::quantize_row(type, src.data(), dst, n);
    } else {
      for (std::size_t i = 0; i < rb; ++i) dst[i] = static_cast<std::uint8_t>(rng());
      // every K-quant block ends (Q2_K, Q3_K, Q6_K) or starts (Q4_K, Q5_K) with its fp16 scales
      const auto& tr = type_traits(type);
      for (std::int64_t b = 0; b < n / tr.block_size; ++b) {
        std::uint8_t* blk = dst + b * tr.type_size;
        std::uint16_t h = 0x2c00 + static_cast<std::uint16_t>(rng() % 0x400);  // ~0.0625..0.125
        if (type == GgmlType::Q4_K || type == GgmlType::Q5_K) {
          std::memcpy(blk, &h, 2);
          std::memcpy(blk + 2, &h, 2);
        } else if (type == GgmlType::Q2_K) {
          std::memcpy(blk + tr.type_size - 4, &h, 2);
          std::memcpy(blk + tr.type_size - 2, &h, 2);
        } else {
          std::memcpy(blk + tr.type_size - 2, &h, 2);
        }
      }
    }
  }
  return out;
}

struct Act {
  std::vector<std::uint8_t> bytes;  // in act_type
  std::vector<float> decoded;       // what the kernel actually multiplies by
  std::size_t stride = 0;
};

Act make_act(const TypeKernels& k, std::int64_t n, std::int64_t n_tok, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Act a;
  a.stride = k.act_type == GgmlType::F32 ? static_cast<std::size_t>(n) * 4
                                         : *row_bytes(k.act_type, static_cast<std::uint64_t>(n));
  a.bytes.resize(a.stride * static_cast<std::size_t>(n_tok));
  a.decoded.resize(static_cast<std::size_t>(n * n_tok));
  std::vector<float> x(static_cast<std::size_t>(n));
  for (std::int64_t it = 0; it < n_tok; ++it) {
    for (auto& v : x) v = nd(rng);
    std::uint8_t* dst = a.bytes.data() + it * a.stride;
    if (k.from_float) {
      k.from_float(x.data(), dst, n);
      quant::dequantize_row(k.act_type, dst, a.decoded.data() + it * n, n);
    } else {
      std::memcpy(dst, x.data(), static_cast<std::size_t>(n) * 4);
      std::memcpy(a.decoded.data() + it * n, x.data(), static_cast<std::size_t>(n) * 4);
    }
  }
  return a;
}

TEST(IsaTables, MatchDequantizedProductsForEveryOverriddenType) {
  auto tables = isa_tables();
  if (tables.empty()) GTEST_SKIP() << "no ISA table runs on this CPU";
  std::mt19937 rng(42);
  for (const KernelTable* t : tables) {
    int checked = 0;
    for (GgmlType type : kTypes) {
      const TypeKernels& k = t->types[static_cast<int>(type)];
      const TypeKernels& r = ref_table().types[static_cast<int>(type)];
      ASSERT_TRUE(k.supported()) << t->isa_name << " " << type_name(type);
      if (k.vec_dot == r.vec_dot) continue;  // not overridden: ref's own test covers it
      const auto bs = static_cast<std::int64_t>(type_traits(type).block_size);
      std::vector<std::int64_t> sizes =
          bs == 1 ? std::vector<std::int64_t>{1, 15, 16, 17, 64, 100, 771}
                  : std::vector<std::int64_t>{bs, 2 * bs, 3 * bs, 7 * bs, 24 * bs};  // 4-block groups + tails
      for (std::int64_t n : sizes) {
        // rows [1, 37): two 16-row GEMM panels + a 4-row tile; 19 tokens: 8-token tiles and tails, and
        // the 16-token minimum of the panel GEMM reached.
        const std::int64_t rows = 37, n_tok = 19;
        auto w = make_rows(type, n, rows, rng);
        const std::size_t rb = w.size() / rows;
        std::vector<float> wd(static_cast<std::size_t>(n * rows));
        quant::dequantize_row(type, w.data(), wd.data(), n * rows);
        Act a = make_act(k, n, n_tok, rng);
        // Misaligned rows, in steps of the element's alignment (kernels.hpp: block structs are read
        // in place, so rows are at least 2-byte aligned; GGUF data always is).
        const int align = type == GgmlType::F32 ? 4 : 2;
        for (int misalign : {0, align, 3 * align}) {
          std::vector<std::uint8_t> wbuf(w.size() + 16);
          std::memcpy(wbuf.data() + misalign, w.data(), w.size());
          const std::uint8_t* wp = wbuf.data() + misalign;
          std::vector<float> y(static_cast<std::size_t>(rows * n_tok), NAN);
          k.matmul(n, wp, rb, a.bytes.data(), a.stride, n_tok, y.data(), rows, 1, rows);
          for (std::int64_t it = 0; it < n_tok; ++it) {
            std::vector<float> yv(static_cast<std::size_t>(rows), NAN);
            k.matvec(n, wp, rb, a.bytes.data() + it * a.stride, yv.data(), 1, rows);
            for (std::int64_t row = 1; row < rows; ++row) {
              double want = 0, mag = 0;
              for (std::int64_t i = 0; i < n; ++i) {
                double p = static_cast<double>(wd[row * n + i]) * a.decoded[it * n + i];
                want += p;
                mag += std::fabs(p);
              }
              const float got = yv[row];
              const float dot = k.vec_dot(n, wp + row * rb, a.bytes.data() + it * a.stride);
              EXPECT_NEAR(got, want, 1e-5 * mag + 1e-6)
                  << t->isa_name << " " << type_name(type) << " n=" << n << " row=" << row << " tok=" << it;
              EXPECT_EQ(std::memcmp(&got, &dot, 4), 0) << "matvec vs vec_dot " << type_name(type) << " n=" << n;
              // The prefill tiles may sum in another order than the row kernel: same value within rounding.
              EXPECT_NEAR(y[it * rows + row], want, 1e-5 * mag + 1e-6)
                  << "matmul " << t->isa_name << " " << type_name(type) << " n=" << n << " row=" << row
                  << " tok=" << it;
              ++checked;
            }
            EXPECT_TRUE(std::isnan(yv[0])) << "row 0 is outside [r0, r1) and must not be written";
          }
          // The small-batch path (batched decode) for every token count 2..kSmallBatch, rows [1, 37) and
          // [3, 30) (tails of any row blocking), against the same dequantized products.
          for (std::int64_t nt = 2; nt <= kSmallBatch; ++nt) {
            for (auto [r0, r1] : {std::pair<std::int64_t, std::int64_t>{1, rows}, {3, 30}}) {
              std::vector<float> ys(static_cast<std::size_t>(rows * nt), NAN);
              k.matmul_small(n, wp, rb, a.bytes.data(), a.stride, nt, ys.data(), rows, r0, r1);
              for (std::int64_t it = 0; it < nt; ++it) {
                for (std::int64_t row = 0; row < rows; ++row) {
                  const float got = ys[it * rows + row];
                  if (row < r0 || row >= r1) {
                    EXPECT_TRUE(std::isnan(got)) << "matmul_small wrote row " << row << " outside [r0, r1)";
                    continue;
                  }
                  double want = 0, mag = 0;
                  for (std::int64_t i = 0; i < n; ++i) {
                    double p = static_cast<double>(wd[row * n + i]) * a.decoded[it * n + i];
                    want += p;
                    mag += std::fabs(p);
                  }
                  EXPECT_NEAR(got, want, 1e-5 * mag + 1e-6)
                      << "matmul_small " << t->isa_name << " " << type_name(type) << " n=" << n << " n_tok=" << nt
                      << " row=" << row << " tok=" << it << " misalign=" << misalign;
                  ++checked;
                }
              }
            }
          }
        }
      }
    }
    EXPECT_GT(checked, 0) << t->isa_name;
    std::printf("[ isa ] %s: %d products checked against dequantized references\n", t->isa_name, checked);
  }
}

TEST(IsaTables, ActivationsStayCloseToFloatForQuantizedTypes) {
  // The int8 activation paths lose accuracy against f32 activations only through the activation
  // quantization itself: bound it (relative to sum |w x|) so a scale bug cannot hide behind test 1.
  auto tables = isa_tables();
  if (tables.empty()) GTEST_SKIP();
  std::mt19937 rng(7);
  for (const KernelTable* t : tables) {
    for (GgmlType type : kTypes) {
      const TypeKernels& k = t->types[static_cast<int>(type)];
      if (!k.from_float) continue;
      const std::int64_t n = 512;
      auto w = make_rows(type, n, 1, rng);
      std::vector<float> wd(n), x(n);
      quant::dequantize_row(type, w.data(), wd.data(), n);
      std::normal_distribution<float> nd;
      for (auto& v : x) v = nd(rng);
      std::vector<std::uint8_t> xq(*row_bytes(k.act_type, n));
      k.from_float(x.data(), xq.data(), n);
      double want = 0, mag = 0;
      for (int i = 0; i < n; ++i) {
        want += static_cast<double>(wd[i]) * x[i];
        mag += std::fabs(static_cast<double>(wd[i]) * x[i]);
      }
      EXPECT_NEAR(k.vec_dot(n, w.data(), xq.data()), want, 0.02 * mag) << t->isa_name << " " << type_name(type);
    }
  }
}

TEST(IsaTables, VbmiQ4_0DecodeIsChosenPerMeasuredCpuFamily) {
  CpuFeatures zen4;
  zen4.avx512vbmi = true;
  zen4.vendor = "AuthenticAMD";
  zen4.family = 25;
  EXPECT_TRUE(vbmi_q4_0_decode_default(zen4));
  CpuFeatures zen5 = zen4;
  zen5.family = 26;
  EXPECT_FALSE(vbmi_q4_0_decode_default(zen5));
  CpuFeatures intel = zen4;  // Ice Lake and later have VBMI, but no measurement here: the block-pair kernel
  intel.vendor = "GenuineIntel";
  intel.family = 6;
  EXPECT_FALSE(vbmi_q4_0_decode_default(intel));
  CpuFeatures no_vbmi = zen4;
  no_vbmi.avx512vbmi = false;
  EXPECT_FALSE(vbmi_q4_0_decode_default(no_vbmi));
}

}  // namespace
}  // namespace g2c::kernels

namespace g2c::kernels {
namespace {

TEST(IsaTables, SoftmaxAndAttentionMatchRefOverManyShapes) {
  auto tables = isa_tables();
  if (tables.empty()) GTEST_SKIP();
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  const KernelTable& r = ref_table();
  for (const KernelTable* t : tables) {
    for (std::int64_t n : {1, 5, 16, 33, 1000}) {
      std::vector<float> a(n), b;
      for (auto& v : a) v = nd(rng);
      b = a;
      t->softmax(a.data(), n);
      r.softmax(b.data(), n);
      for (std::int64_t i = 0; i < n; ++i) EXPECT_NEAR(a[i], b[i], 2e-6 * b[i] + 1e-9) << t->isa_name << " n=" << n;
    }
    for (std::int64_t hd : {8, 64, 80, 128}) {
      for (std::int64_t n_kv : {1, 17, 300}) {
        for (int ki : {0, 1}) {
          const std::size_t elem = ki ? 2 : 4, row = static_cast<std::size_t>(hd) * elem * 2 + 6;  // odd stride
          std::vector<std::uint8_t> kc(row * n_kv + 8), vc(row * n_kv + 8), kc2 = kc, vc2 = vc;
          std::vector<float> src(hd);
          for (std::int64_t j = 0; j < n_kv; ++j) {
            for (auto& v : src) v = nd(rng);
            t->kv_store[ki](src.data(), kc.data() + j * row, hd);
            r.kv_store[ki](src.data(), kc2.data() + j * row, hd);
            for (auto& v : src) v = nd(rng);
            t->kv_store[ki](src.data(), vc.data() + j * row, hd);
            r.kv_store[ki](src.data(), vc2.data() + j * row, hd);
          }
          ASSERT_EQ(kc, kc2) << "kv_store differs from ref";
          ASSERT_EQ(vc, vc2) << "kv_store differs from ref";
          std::vector<float> q(hd), o1(hd), o2(hd), s1(n_kv), s2(n_kv);
          for (auto& v : q) v = nd(rng);
          t->attend[ki](q.data(), kc.data(), vc.data(), row, n_kv, hd, 0.125f, s1.data(), o1.data());
          r.attend[ki](q.data(), kc.data(), vc.data(), row, n_kv, hd, 0.125f, s2.data(), o2.data());
          for (std::int64_t d = 0; d < hd; ++d)
            EXPECT_NEAR(o1[d], o2[d], 1e-5 * (1 + std::fabs(o2[d]))) << t->isa_name << " hd=" << hd << " n_kv=" << n_kv;
        }
      }
    }
  }
}

}  // namespace
}  // namespace g2c::kernels

namespace g2c::kernels {
namespace {

TEST(IsaTables, AttendMultiMatchesPerQueryRefAttend) {
  // Every ISA table's multi-query attention against its own attend per query (bit for bit) and ref
  // attend (float rounding): 1..40 queries (lane tails of
  // the 16-query vectors and 4-query tiles), GQA groups, unsorted lengths with block tails, head sizes
  // with chunk tails and the fallbacks (> 256), odd Q/out/cache strides; rows at and beyond the largest
  // length hold NaN.
  auto tables = isa_tables();
  if (tables.empty()) GTEST_SKIP();
  std::mt19937 rng(31);
  std::normal_distribution<float> nd(0.0f, 1.5f);
  const KernelTable& r = ref_table();
  for (const KernelTable* t : tables) {
    for (int ki : {0, 1}) {
      for (std::int64_t hd : {8, 64, 72, 128, 256, 320}) {
        for (std::int64_t n_rep : {1, 2, 8}) {
          for (std::int64_t n_tok = 1; n_tok <= 40; n_tok += (hd == 64 ? 1 : 7)) {
            if (n_tok * n_rep > 80) continue;
            std::vector<std::int32_t> n_kv(static_cast<std::size_t>(n_tok));
            const std::int32_t base = static_cast<std::int32_t>(rng() % 200);
            for (std::int64_t it = 0; it < n_tok; ++it)
              n_kv[it] =
                  it % 5 == 3 ? 1 + static_cast<std::int32_t>(rng() % 70) : base + 1 + static_cast<std::int32_t>(it);
            const std::int32_t max_kv = *std::max_element(n_kv.begin(), n_kv.end());
            const std::int64_t rows = max_kv + 3;
            const std::size_t elem = ki ? 2 : 4, row = static_cast<std::size_t>(hd) * elem * 2 + 6;
            std::vector<std::uint8_t> kc(row * rows), vc(row * rows);
            std::vector<float> src(hd);
            for (std::int64_t j = 0; j < rows; ++j) {
              for (auto& x : src) x = j < max_kv ? nd(rng) : NAN;
              r.kv_store[ki](src.data(), kc.data() + j * row, hd);
              for (auto& x : src) x = j < max_kv ? nd(rng) : NAN;
              r.kv_store[ki](src.data(), vc.data() + j * row, hd);
            }
            const std::int64_t q_stride = n_rep * hd + 11, out_stride = n_rep * hd + 1;
            std::vector<float> q(n_tok * q_stride), out(n_tok * out_stride, -5.0f), want(hd), own(hd), s1(max_kv);
            for (auto& x : q) x = nd(rng);
            std::vector<float> scratch(t->attend_multi_scratch(n_tok * n_rep, hd, max_kv));
            t->attend_multi[ki](q.data(), q_stride, kc.data(), vc.data(), row, n_kv.data(), n_tok, n_rep, hd, 0.1f,
                                scratch.data(), out.data(), out_stride);
            for (std::int64_t it = 0; it < n_tok; ++it) {
              for (std::int64_t h = 0; h < n_rep; ++h) {
                const float* qi = q.data() + it * q_stride + h * hd;
                r.attend[ki](qi, kc.data(), vc.data(), row, n_kv[it], hd, 0.1f, s1.data(), want.data());
                t->attend[ki](qi, kc.data(), vc.data(), row, n_kv[it], hd, 0.1f, s1.data(), own.data());
                ASSERT_EQ(std::memcmp(out.data() + it * out_stride + h * hd, own.data(), hd * sizeof(float)), 0)
                    << t->isa_name << ": attend_multi differs from attend: kv " << ki << " hd " << hd << " n_rep "
                    << n_rep << " n_tok " << n_tok << " tok " << it << " n_kv " << n_kv[it] << " head " << h;
                for (std::int64_t d = 0; d < hd; ++d)
                  ASSERT_NEAR(out[it * out_stride + h * hd + d], want[d], 1e-5 * (1 + std::fabs(want[d])))
                      << t->isa_name << " kv " << ki << " hd " << hd << " n_rep " << n_rep << " n_tok " << n_tok
                      << " tok " << it << " n_kv " << n_kv[it] << " head " << h << " d " << d;
              }
              ASSERT_EQ(out[it * out_stride + n_rep * hd], -5.0f) << "gap written";
            }
          }
        }
      }
    }
  }
}

TEST(IsaTables, ActivationQuantizersAreByteIdenticalToQuant) {
  // from_float must produce exactly quant::quantize_row's bytes (halfway cases included).
  auto tables = isa_tables();
  if (tables.empty()) GTEST_SKIP();
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (const KernelTable* t : tables) {
    for (GgmlType type : kTypes) {
      const TypeKernels& k = t->types[static_cast<int>(type)];
      if (!k.from_float) continue;
      const std::int64_t n = 1024;
      for (int trial = 0; trial < 20; ++trial) {
        std::vector<float> x(n);
        for (auto& v : x) v = nd(rng);
        if (trial % 2)
          for (std::int64_t i = 0; i < n; i += 7) x[i] = static_cast<float>(static_cast<int>(x[i] * 4)) * 0.5f;
        if (trial == 3) std::fill(x.begin(), x.begin() + 256, 0.0f);
        const std::size_t bytes = *row_bytes(k.act_type, n);
        std::vector<std::uint8_t> a(bytes), b(bytes);
        k.from_float(x.data(), a.data(), n);
        quant::quantize_row(k.act_type, x.data(), b.data(), n);
        ASSERT_EQ(a, b) << t->isa_name << " " << type_name(k.act_type) << " trial " << trial;
      }
    }
  }
}

}  // namespace
}  // namespace g2c::kernels
