// Kernel table tests: every product kernel of every table against "dequantize the whole row with
// g2c::quant, then a double-precision dot", over sizes with tails and misaligned offsets; elementwise
// kernels against their formulas evaluated in double.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "g2c/core/error.hpp"
#include "g2c/core/fp16.hpp"
#include "g2c/kernels/kernels.hpp"
#include "g2c/quant/quant.hpp"

namespace g2c::kernels {
namespace {

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                           GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                           GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

// The tables to check: ref, the process table, and every ISA this CPU runs.
std::vector<const KernelTable*> tables() {
  std::vector<const KernelTable*> v{&ref_table()};
  for (const char* isa : {"avx2", "avx512"})
    if (const KernelTable* t = table_for(isa)) v.push_back(t);
  if (&kernels() != &ref_table()) v.push_back(&kernels());
  return v;
}

// Row lengths with tails: for float types arbitrary n; for block types whole blocks (1, 2, 3, 5).
std::vector<std::int64_t> sizes_for(GgmlType t) {
  const std::int64_t bs = type_traits(t).block_size;
  if (bs == 1) return {1, 7, 31, 32, 33, 100, 257};
  return {bs, 2 * bs, 3 * bs, 5 * bs};
}

// Byte offsets that break 32/64-byte alignment while keeping the element type's own alignment
// (GGUF rows of block types start at multiples of the block size in bytes).
std::vector<std::size_t> offsets_for(GgmlType t) {
  if (t == GgmlType::F32) return {0, 4, 12};
  return {0, 2, 6};
}

std::vector<float> random_floats(std::int64_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

// n_rows rows of type t (quantized from random floats), packed.
std::vector<std::uint8_t> random_rows(GgmlType t, std::int64_t n, std::int64_t n_rows, std::mt19937& rng) {
  const std::size_t rb = *row_bytes(t, static_cast<std::uint64_t>(n));
  std::vector<std::uint8_t> out(rb * static_cast<std::size_t>(n_rows));
  for (std::int64_t r = 0; r < n_rows; ++r) {
    auto f = random_floats(n, rng);
    if (quant::can_quantize(t)) {
      quant::quantize_row(t, f.data(), out.data() + r * rb, n);
    } else {
      ADD_FAILURE() << "cannot make test data for " << type_name(t);
    }
  }
  return out;
}

double ref_dot(GgmlType t, const std::uint8_t* w, const float* x, std::int64_t n, double* abs_sum) {
  std::vector<float> d(static_cast<std::size_t>(n));
  quant::dequantize_row(t, w, d.data(), n);
  double s = 0.0, a = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    s += static_cast<double>(d[i]) * x[i];
    a += std::fabs(static_cast<double>(d[i]) * x[i]);
  }
  *abs_sum = a;
  return s;
}

TEST(KernelTable, RefIsAlwaysThereAndNamed) {
  EXPECT_STREQ(ref_table().isa_name, "ref");
  ASSERT_NE(table_for("ref"), nullptr);
  EXPECT_EQ(table_for("no-such-isa"), nullptr);
  EXPECT_NE(kernels().isa_name, nullptr);
  for (GgmlType t : kTypes) EXPECT_TRUE(ref_table().types[static_cast<std::size_t>(t)].supported()) << type_name(t);
  // IQ types are read by gguf but have no kernels.
  EXPECT_FALSE(ref_table().types[static_cast<std::size_t>(GgmlType::IQ2_XXS)].supported());
}

TEST(KernelTable, ProductsMatchDequantizedDotForEveryType) {
  std::mt19937 rng(1234);
  for (const KernelTable* tab : tables()) {
    for (GgmlType t : kTypes) {
      const TypeKernels& tk = tab->types[static_cast<std::size_t>(t)];
      ASSERT_TRUE(tk.supported()) << tab->isa_name << " " << type_name(t);
      for (std::int64_t n : sizes_for(t)) {
        const std::int64_t n_rows = 5, n_tok = 11;  // n_tok > the ref matmul's tile of 8: a tail tile
        const std::size_t rb = *row_bytes(t, static_cast<std::uint64_t>(n));
        auto rows = random_rows(t, n, n_rows, rng);
        auto xs = random_floats(n * n_tok, rng);
        for (std::size_t off : offsets_for(t)) {
          SCOPED_TRACE(testing::Message() << tab->isa_name << " " << type_name(t) << " n=" << n << " off=" << off);
          std::vector<std::uint8_t> wbuf(rows.size() + 64);
          std::memcpy(wbuf.data() + off, rows.data(), rows.size());
          const std::uint8_t* w = wbuf.data() + off;
          // Activations one float off a 64-byte boundary; act conversion when the table asks for it.
          std::vector<float> xbuf(static_cast<std::size_t>(n * n_tok) + 16);
          float* xf = xbuf.data() + 1;
          std::memcpy(xf, xs.data(), xs.size() * sizeof(float));
          std::vector<std::uint8_t> act;
          const void* x = xf;
          std::size_t x_stride = static_cast<std::size_t>(n) * sizeof(float);
          if (tk.from_float) {
            x_stride = *row_bytes(tk.act_type, static_cast<std::uint64_t>(n));
            act.resize(x_stride * n_tok);
            for (std::int64_t it = 0; it < n_tok; ++it) tk.from_float(xf + it * n, act.data() + it * x_stride, n);
            x = act.data();
          }
          auto xrow = [&](std::int64_t it) { return static_cast<const std::uint8_t*>(x) + it * x_stride; };
          std::vector<float> y1(n_rows), yv(n_rows, -7.0f), ym(static_cast<std::size_t>(n_rows * n_tok), -7.0f);
          for (std::int64_t r = 0; r < n_rows; ++r) {
            double abs_sum = 0.0;
            const double want = ref_dot(t, w + r * rb, xf, n, &abs_sum);
            y1[r] = tk.vec_dot(n, w + r * rb, xrow(0));
            // ref keeps f32 activations: float-rounding error only. Tables that quantize activations
            // (act_type != F32) add the activation's quantization error.
            const double tol = tk.act_type == GgmlType::F32 ? 1e-5 * abs_sum + 1e-6 : 2e-2 * abs_sum + 1e-4;
            EXPECT_NEAR(y1[r], want, tol) << "row " << r;
          }
          // matvec over a sub-range leaves the rest untouched and equals vec_dot bit for bit.
          tk.matvec(n, w, rb, x, yv.data(), 1, n_rows);
          EXPECT_EQ(yv[0], -7.0f);
          for (std::int64_t r = 1; r < n_rows; ++r) EXPECT_EQ(yv[r], y1[r]) << "matvec row " << r;
          // matmul: every (token, row) equals vec_dot of that token, bit for bit on ref; ISA tables'
          // prefill tiles may sum in another order (kernels.hpp), so there within float rounding.
          const bool exact = tab == &ref_table();
          const std::int64_t ldy = n_rows + 2;
          std::vector<float> yw(static_cast<std::size_t>(ldy * n_tok), -7.0f);
          tk.matmul(n, w, rb, x, x_stride, n_tok, yw.data(), ldy, 0, n_rows);
          for (std::int64_t it = 0; it < n_tok; ++it) {
            for (std::int64_t r = 0; r < n_rows; ++r) {
              const float v = tk.vec_dot(n, w + r * rb, xrow(it));
              if (exact)
                EXPECT_EQ(yw[it * ldy + r], v) << "matmul tok " << it << " row " << r;
              else
                EXPECT_NEAR(yw[it * ldy + r], v, 1e-5 * (std::fabs(v) + 1.0)) << "matmul tok " << it << " row " << r;
            }
            EXPECT_EQ(yw[it * ldy + n_rows], -7.0f);
          }
          // matmul_small (batched decode) for 2..kSmallBatch tokens over rows [1, n_rows): the same
          // values as vec_dot, bit for bit on ref (ref's matmul_small is its matmul), within rounding
          // on ISA tables; row 0 and the padding column untouched.
          for (std::int64_t nt = 2; nt <= kSmallBatch; ++nt) {
            std::vector<float> xs2;
            std::vector<std::uint8_t> act2;
            const void* x2 = x;
            if (nt > n_tok) {  // more tokens than the fixture holds: repeat its rows
              if (tk.from_float) {
                act2.resize(x_stride * nt);
                for (std::int64_t it = 0; it < nt; ++it)
                  std::memcpy(act2.data() + it * x_stride, xrow(it % n_tok), x_stride);
                x2 = act2.data();
              } else {
                xs2.resize(static_cast<std::size_t>(n * nt));
                for (std::int64_t it = 0; it < nt; ++it)
                  std::memcpy(xs2.data() + it * n, xrow(it % n_tok), static_cast<std::size_t>(n) * sizeof(float));
                x2 = xs2.data();
              }
            }
            std::vector<float> ys(static_cast<std::size_t>(ldy * nt), -7.0f);
            tk.matmul_small(n, w, rb, x2, x_stride, nt, ys.data(), ldy, 1, n_rows);
            for (std::int64_t it = 0; it < nt; ++it) {
              EXPECT_EQ(ys[it * ldy], -7.0f) << "matmul_small wrote row 0";
              for (std::int64_t r = 1; r < n_rows; ++r) {
                const float v = tk.vec_dot(n, w + r * rb, xrow(it % n_tok));
                if (exact)
                  EXPECT_EQ(ys[it * ldy + r], v) << "matmul_small n_tok " << nt << " tok " << it << " row " << r;
                else
                  EXPECT_NEAR(ys[it * ldy + r], v, 1e-5 * (std::fabs(v) + 1.0))
                      << "matmul_small n_tok " << nt << " tok " << it << " row " << r;
              }
              EXPECT_EQ(ys[it * ldy + n_rows], -7.0f);
            }
          }
        }
      }
    }
  }
}

TEST(KernelTable, ProcessTableIsComplete) {
  const KernelTable& k = kernels();
  for (GgmlType t : kTypes) EXPECT_TRUE(k.types[static_cast<std::size_t>(t)].supported()) << type_name(t);
  EXPECT_NE(k.rmsnorm, nullptr);
  EXPECT_NE(k.attend[0], nullptr);
  EXPECT_NE(k.attend[1], nullptr);
  EXPECT_NE(k.attend_multi[0], nullptr);
  EXPECT_NE(k.attend_multi[1], nullptr);
  EXPECT_NE(k.attend_multi_scratch, nullptr);
}

// The kernel contract's debug checks (kernels/dcheck.hpp) fire on every table. Release builds compile
// them out, so this runs in Debug and sanitizer builds (CMake presets debug and asan).
TEST(KernelChecks, BrokenPreconditionsAbortInDebugBuilds) {
  if (!G2C_DCHECK_IS_ON) GTEST_SKIP() << "G2C_DCHECK is compiled out in this build";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // Operands only need to exist: every check runs before a kernel reads them.
  std::vector<std::uint8_t> w(4096);
  std::vector<float> x(256), y(64), scratch(4096), out(256);
  const std::int32_t no_rows = 0;
  for (const KernelTable* tab : tables()) {
    SCOPED_TRACE(tab->isa_name);
    const TypeKernels& q4 = tab->types[static_cast<std::size_t>(GgmlType::Q4_0)];
    EXPECT_DEATH(q4.vec_dot(33, w.data(), x.data()), "block_size");                         // not whole blocks
    EXPECT_DEATH(q4.matvec(64, w.data(), 36, x.data(), y.data(), 2, 1), "r0");              // r0 > r1
    EXPECT_DEATH(q4.matvec(64, w.data(), 36, x.data(), nullptr, 0, 1), "nullptr");          // no output
    EXPECT_DEATH(q4.matmul(64, w.data(), 36, x.data(), 256, 2, y.data(), 1, 0, 2), "ldy");  // y rows too short
    EXPECT_DEATH(tab->attend[0](x.data(), w.data(), w.data(), 256, 0, 64, 0.1f, scratch.data(), out.data()), "n_kv");
    EXPECT_DEATH(tab->attend_multi[1](x.data(), 64, w.data(), w.data(), 128, &no_rows, 1, 1, 64, 0.1f, scratch.data(),
                                      out.data(), 64),
                 "n_kv");
    EXPECT_DEATH(tab->softmax(x.data(), 0), "n >= 1");
  }
}

TEST(Elementwise, RmsNormAndLayerNorm) {
  std::mt19937 rng(7);
  for (const KernelTable* tab : tables()) {
    for (std::int64_t n : {1, 5, 64, 130}) {
      auto x = random_floats(n, rng, 3.0f);
      auto g = random_floats(n, rng);
      auto b = random_floats(n, rng);
      std::vector<float> y(n);
      tab->rmsnorm(x.data(), g.data(), y.data(), n, 1e-5f);
      double ss = 0;
      for (float v : x) ss += double(v) * v;
      const double inv = 1.0 / std::sqrt(ss / n + 1e-5);
      for (std::int64_t i = 0; i < n; ++i)
        EXPECT_NEAR(y[i], x[i] * inv * g[i], 1e-5 * (1 + std::fabs(x[i] * inv * g[i])));
      tab->layernorm(x.data(), g.data(), b.data(), y.data(), n, 1e-5f);
      double mean = 0;
      for (float v : x) mean += v;
      mean /= n;
      double var = 0;
      for (float v : x) var += (v - mean) * (v - mean);
      var /= n;  // biased variance, as GPT-2 / ggml_norm
      for (std::int64_t i = 0; i < n; ++i) {
        const double want = (x[i] - mean) / std::sqrt(var + 1e-5) * g[i] + b[i];
        EXPECT_NEAR(y[i], want, 1e-4 * (1 + std::fabs(want)));
      }
    }
  }
}

TEST(Elementwise, SoftmaxSiluSwigluAdd) {
  std::mt19937 rng(8);
  for (const KernelTable* tab : tables()) {
    auto x = random_floats(37, rng, 5.0f);
    auto y = x;
    tab->softmax(y.data(), 37);
    double mx = -1e30, sum = 0;
    for (float v : x) mx = std::max(mx, double(v));
    for (float v : x) sum += std::exp(v - mx);
    for (int i = 0; i < 37; ++i) EXPECT_NEAR(y[i], std::exp(x[i] - mx) / sum, 1e-6);
    auto u = random_floats(37, rng);
    std::vector<float> s(37), sw(37), a(37);
    tab->silu(x.data(), s.data(), 37);
    tab->swiglu(x.data(), u.data(), sw.data(), 37);
    tab->add(x.data(), u.data(), a.data(), 37);
    for (int i = 0; i < 37; ++i) {
      const double si = x[i] / (1 + std::exp(-double(x[i])));
      EXPECT_NEAR(s[i], si, 1e-5 * (1 + std::fabs(si)));
      EXPECT_NEAR(sw[i], si * u[i], 1e-5 * (1 + std::fabs(si * u[i])));
      EXPECT_EQ(a[i], x[i] + u[i]);
    }
  }
}

TEST(Elementwise, GeluIsTanhApproximationThroughFp16) {
  for (const KernelTable* tab : tables()) {
    std::vector<float> x;
    for (float v = -12.0f; v <= 12.0f; v += 0.0137f) x.push_back(v);
    std::vector<float> y(x.size());
    tab->gelu(x.data(), y.data(), static_cast<std::int64_t>(x.size()));
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double v = x[i];
      const double want = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
      if (v <= -10) {
        EXPECT_EQ(y[i], 0.0f);
      } else if (v >= 10) {
        EXPECT_EQ(y[i], x[i]);
      } else {
        // input and output each rounded to fp16: relative 2^-11 twice, slope of gelu <= 1.13
        EXPECT_NEAR(y[i], want, 2.5e-3 * std::fabs(v) + 1e-4) << "x=" << v;
        // and exactly the fp16 value ggml's table holds
        const float xh = fp16_to_fp32(fp32_to_fp16(x[i]));
        const float gh = 0.5f * xh * (1.0f + std::tanh(0.79788456080286535588f * xh * (1.0f + 0.044715f * xh * xh)));
        EXPECT_EQ(y[i], fp16_to_fp32(fp32_to_fp16(gh))) << "x=" << v;
      }
    }
  }
}

TEST(Elementwise, RopeNormAndNeox) {
  const std::int64_t n_head = 3, hd = 8, n_rot = 8;
  const float base = 10000.0f;
  const float ff[4] = {1.0f, 1.0f, 3.29f, 32.0f};
  for (const KernelTable* tab : tables()) {
    for (const float* factors : {static_cast<const float*>(nullptr), ff}) {
      for (std::int32_t pos : {0, 1, 17, 255}) {
        std::vector<float> cs(n_rot);
        tab->rope_cache(pos, n_rot, base, 0.5f, factors, cs.data());
        for (int i = 0; i < n_rot / 2; ++i) {
          const double th = 0.5 * pos * std::pow(double(base), -2.0 * i / n_rot) / (factors ? factors[i] : 1.0);
          EXPECT_NEAR(cs[2 * i], std::cos(th), 2e-5);
          EXPECT_NEAR(cs[2 * i + 1], std::sin(th), 2e-5);
        }
        std::mt19937 rng(pos);
        auto x = random_floats(n_head * hd, rng);
        for (RopeMode mode : {RopeMode::kNorm, RopeMode::kNeox}) {
          auto y = x;
          tab->rope(y.data(), n_head, hd, n_rot, cs.data(), mode);
          for (int h = 0; h < n_head; ++h) {
            for (int i = 0; i < n_rot / 2; ++i) {
              const int a = mode == RopeMode::kNorm ? 2 * i : i;
              const int b = mode == RopeMode::kNorm ? 2 * i + 1 : i + n_rot / 2;
              const double c = cs[2 * i], s = cs[2 * i + 1];
              const double x0 = x[h * hd + a], x1 = x[h * hd + b];
              EXPECT_NEAR(y[h * hd + a], x0 * c - x1 * s, 1e-6);
              EXPECT_NEAR(y[h * hd + b], x0 * s + x1 * c, 1e-6);
            }
          }
        }
      }
    }
    // Partial rotation leaves dims n_rot.. untouched.
    std::vector<float> cs(4), x(8, 1.5f);
    tab->rope_cache(3, 4, base, 1.0f, nullptr, cs.data());
    tab->rope(x.data(), 1, 8, 4, cs.data(), RopeMode::kNeox);
    for (int i = 4; i < 8; ++i) EXPECT_EQ(x[i], 1.5f);
  }
}

TEST(Elementwise, AttentionOverF32AndF16Cache) {
  std::mt19937 rng(9);
  const std::int64_t hd = 16, n_kv = 13, n_head_kv = 2;
  for (const KernelTable* tab : tables()) {
    for (GgmlType kt : {GgmlType::F32, GgmlType::F16}) {
      const int ki = kv_index(kt);
      const std::size_t elem = kt == GgmlType::F16 ? 2 : 4;
      const std::size_t row = n_head_kv * hd * elem;
      auto kf = random_floats(n_kv * n_head_kv * hd, rng);
      auto vf = random_floats(n_kv * n_head_kv * hd, rng);
      std::vector<std::uint8_t> kc(row * n_kv), vc(row * n_kv);
      for (std::int64_t j = 0; j < n_kv; ++j) {
        tab->kv_store[ki](kf.data() + j * n_head_kv * hd, kc.data() + j * row, n_head_kv * hd);
        tab->kv_store[ki](vf.data() + j * n_head_kv * hd, vc.data() + j * row, n_head_kv * hd);
      }
      auto q = random_floats(hd, rng);
      const float scale = 0.25f;
      for (std::int64_t h = 0; h < n_head_kv; ++h) {
        std::vector<float> scratch(n_kv), out(hd);
        tab->attend[ki](q.data(), kc.data() + h * hd * elem, vc.data() + h * hd * elem, row, n_kv, hd, scale,
                        scratch.data(), out.data());
        // double reference over the stored (possibly fp16-rounded) values
        auto val = [&](const std::vector<float>& f, std::int64_t j, std::int64_t d) {
          const float v = f[j * n_head_kv * hd + h * hd + d];
          return kt == GgmlType::F16 ? double(fp16_to_fp32(fp32_to_fp16(v))) : double(v);
        };
        std::vector<double> p(n_kv);
        double mx = -1e300, sum = 0;
        for (std::int64_t j = 0; j < n_kv; ++j) {
          double s = 0;
          for (std::int64_t d = 0; d < hd; ++d) s += q[d] * val(kf, j, d);
          p[j] = s * scale;
          mx = std::max(mx, p[j]);
        }
        for (auto& v : p) sum += (v = std::exp(v - mx));
        for (std::int64_t d = 0; d < hd; ++d) {
          double o = 0;
          for (std::int64_t j = 0; j < n_kv; ++j) o += p[j] / sum * val(vf, j, d);
          EXPECT_NEAR(out[d], o, 1e-5) << type_name(kt) << " head " << h << " d " << d;
        }
      }
    }
  }
}

// attend_multi of `t` against `t.attend` called once per query (bit for bit: the contract) and
// against ref attend (float rounding): n_tok tokens x n_rep heads of one KV head, Q and out rows with
// strides != head_dim (gaps must stay untouched), an odd cache row stride, and a guard after the
// scratch the contract promises. Cache rows from the largest n_kv on hold NaN (must never be read).
void check_attend_multi(const KernelTable& t, int ki, std::int64_t hd, std::int64_t n_rep,
                        const std::vector<std::int32_t>& n_kv, std::mt19937& rng) {
  const std::int64_t n_tok = static_cast<std::int64_t>(n_kv.size());
  const std::int32_t max_kv = *std::max_element(n_kv.begin(), n_kv.end());
  const std::int64_t rows = max_kv + 9;
  const std::size_t elem = ki ? 2 : 4, row = static_cast<std::size_t>(hd) * elem + 2 * elem + 4;
  std::vector<std::uint8_t> kc(row * rows), vc(row * rows);
  for (std::int64_t j = 0; j < rows; ++j) {
    auto kf = random_floats(hd, rng), vf = random_floats(hd, rng);
    if (j >= max_kv) std::fill(kf.begin(), kf.end(), NAN), std::fill(vf.begin(), vf.end(), NAN);
    ref_table().kv_store[ki](kf.data(), kc.data() + j * row, hd);
    ref_table().kv_store[ki](vf.data(), vc.data() + j * row, hd);
  }
  const std::int64_t q_stride = n_rep * hd + 5, out_stride = n_rep * hd + 3;
  const auto q = random_floats(n_tok * q_stride, rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const std::size_t n_scratch = t.attend_multi_scratch(n_tok * n_rep, hd, max_kv);
  std::vector<float> scratch(n_scratch + 16, 7.0f), out(n_tok * out_stride, -3.0f), want(hd), own(hd), s1(max_kv);
  t.attend_multi[ki](q.data(), q_stride, kc.data(), vc.data(), row, n_kv.data(), n_tok, n_rep, hd, scale,
                     scratch.data(), out.data(), out_stride);
  for (std::size_t i = n_scratch; i < scratch.size(); ++i) ASSERT_EQ(scratch[i], 7.0f) << "scratch overrun";
  for (std::int64_t it = 0; it < n_tok; ++it) {
    for (std::int64_t h = 0; h < n_rep; ++h) {
      const float* qi = q.data() + it * q_stride + h * hd;
      ref_table().attend[ki](qi, kc.data(), vc.data(), row, n_kv[it], hd, scale, s1.data(), want.data());
      t.attend[ki](qi, kc.data(), vc.data(), row, n_kv[it], hd, scale, s1.data(), own.data());
      const float* got = out.data() + it * out_stride + h * hd;
      ASSERT_EQ(std::memcmp(got, own.data(), hd * sizeof(float)), 0)
          << t.isa_name << ": attend_multi differs from attend: kv " << ki << " hd " << hd << " n_rep " << n_rep
          << " tok " << it << "/" << n_tok << " n_kv " << n_kv[it] << " head " << h;
      for (std::int64_t d = 0; d < hd; ++d)
        ASSERT_NEAR(got[d], want[d], 1e-5 * (1 + std::fabs(want[d])))
            << t.isa_name << " kv " << ki << " hd " << hd << " n_rep " << n_rep << " tok " << it << "/" << n_tok
            << " n_kv " << n_kv[it] << " head " << h << " d " << d;
    }
    for (std::int64_t d = n_rep * hd; d < out_stride; ++d) ASSERT_EQ(out[it * out_stride + d], -3.0f) << "gap written";
  }
}

TEST(Elementwise, AttendMultiMatchesPerQueryAttend) {
  std::mt19937 rng(21);
  for (const KernelTable* tab : tables()) {
    for (int ki : {0, 1}) {
      for (std::int64_t hd : {64, 80, 128}) {
        for (std::int64_t n_rep : {1, 4}) {
          for (std::int64_t n_tok : {1, 2, 5, 17, 40}) {
            if (n_rep * n_tok > 64) continue;
            // causal: the last token sees `len` rows, the ones before one fewer each (at least 1)
            for (std::int32_t len : {1, 31, 33, 100, 257}) {
              std::vector<std::int32_t> n_kv(static_cast<std::size_t>(n_tok));
              for (std::int64_t it = 0; it < n_tok; ++it)
                n_kv[it] = std::max<std::int32_t>(1, len - static_cast<std::int32_t>(n_tok - 1 - it));
              check_attend_multi(*tab, ki, hd, n_rep, n_kv, rng);
            }
          }
        }
      }
    }
  }
}

TEST(Elementwise, AttendMultiExcludesRowsBeyondEachQuery) {
  // Rows a query does not reach hold huge keys and values (finite, since longer queries read them):
  // one leaked row would dominate the softmax and the output.
  std::mt19937 rng(23);
  for (const KernelTable* tab : tables()) {
    for (int ki : {0, 1}) {
      const std::int64_t hd = 64, n_tok = 24;
      const std::size_t elem = ki ? 2 : 4, row = static_cast<std::size_t>(hd) * elem;
      const std::int32_t short_kv = 3, long_kv = 150;
      std::vector<std::uint8_t> kc(row * long_kv), vc(row * long_kv);
      for (std::int64_t j = 0; j < long_kv; ++j) {
        auto kf = random_floats(hd, rng), vf = random_floats(hd, rng);
        if (j >= short_kv)
          for (std::int64_t d = 0; d < hd; ++d) kf[d] = 1000.0f, vf[d] = 30000.0f;
        tab->kv_store[ki](kf.data(), kc.data() + j * row, hd);
        tab->kv_store[ki](vf.data(), vc.data() + j * row, hd);
      }
      std::vector<std::int32_t> n_kv(n_tok, short_kv);
      n_kv[n_tok / 2] = long_kv;  // unsorted lengths, one long query in the middle
      auto q = random_floats(n_tok * hd, rng);
      for (auto& x : q) x = std::fabs(x);  // q . huge key > 0: a leaked row wins the softmax
      std::vector<float> scratch(tab->attend_multi_scratch(n_tok, hd, long_kv)), out(n_tok * hd), want(hd), s1(long_kv);
      tab->attend_multi[ki](q.data(), hd, kc.data(), vc.data(), row, n_kv.data(), n_tok, 1, hd, 0.125f, scratch.data(),
                            out.data(), hd);
      for (std::int64_t it = 0; it < n_tok; ++it) {
        tab->attend[ki](q.data() + it * hd, kc.data(), vc.data(), row, n_kv[it], hd, 0.125f, s1.data(), want.data());
        for (std::int64_t d = 0; d < hd; ++d) {
          if (n_kv[it] == short_kv) {
            ASSERT_LT(std::fabs(want[d]), 10.0f);
          }
          ASSERT_EQ(out[it * hd + d], want[d]) << tab->isa_name << " kv " << ki << " tok " << it << " d " << d;
        }
      }
    }
  }
}

// SiLU over the whole float range, against a double-precision reference: the SIMD tables evaluate
// exp by range reduction and a polynomial, which must hold to the last few ulp and saturate cleanly.
TEST(Elementwise, SiluAcrossTheFloatRange) {
  std::vector<float> x;
  for (float v = -120.0f; v <= 120.0f; v += 0.173f) x.push_back(v);
  for (float v : {-1e30f, -1000.0f, -88.7f, -87.3f, -1e-20f, 0.0f, 1e-20f, 88.7f, 1000.0f, 1e30f}) x.push_back(v);
  const auto n = static_cast<std::int64_t>(x.size());
  for (const KernelTable* tab : tables()) {
    std::vector<float> s(x.size());
    tab->silu(x.data(), s.data(), n);
    for (std::int64_t i = 0; i < n; ++i) {
      const double want = x[i] / (1.0 + std::exp(-static_cast<double>(x[i])));
      ASSERT_FALSE(std::isnan(s[i])) << tab->isa_name << " x=" << x[i];
      // below ~1e-30 the float quotient over- or underflows (x / e^-x with e^-x past FLT_MAX): ~0 is right
      EXPECT_NEAR(s[i], want, 4e-7 * std::fabs(want) + 1e-30) << tab->isa_name << " x=" << x[i];
    }
  }
}

}  // namespace
}  // namespace g2c::kernels
