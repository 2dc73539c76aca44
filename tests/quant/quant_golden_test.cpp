// quant-goldens (../shared/quant-goldens): llama-quantize's output for one random-weight llama model in
// 12 types. (a) Decoding every tensor of every file reproduces llama.cpp's float32 bits (sha256 of the
// dequantized tensor); (b) encoding the F32 source to F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1
// reproduces llama-quantize's bytes.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/test_util.hpp"
#include "g2c/gguf/gguf.hpp"
#include "g2c/quant/quant.hpp"
#include "sha256.hpp"

namespace g2c::quant {
namespace {

using nlohmann::json;
using test::sha256_hex;

const std::string kDir = g2c::test::shared_path("quant-goldens/");

const json& goldens() {
  static const json j = g2c::test::load_json(kDir + "goldens.json");
  return j;
}

const json& file_record(const std::string& type_arg) {
  for (const json& f : goldens().at("files")) {
    if (f.at("type_arg") == type_arg) return f;
  }
  throw std::runtime_error("goldens.json has no file for " + type_arg);
}

std::string bits_hex(float v) {
  std::uint32_t u;
  std::memcpy(&u, &v, 4);
  return fmt::format("0x{:08x}", u);
}

struct Tally {
  int tensors = 0;
  int raw_ok = 0;
  int dequant_ok = 0;
};

// Checks every tensor record of one file; returns per-type tallies for the summary.
void check_file_dequantizes(const std::string& file, const json& records, std::map<std::string, Tally>& tally) {
  SCOPED_TRACE(file);
  auto gf = gguf::File::open(kDir + file);
  ASSERT_EQ(gf->tensors().size(), records.size());
  for (const json& rec : records) {
    const std::string name = rec.at("name");
    SCOPED_TRACE(name);
    const gguf::TensorInfo* t = gf->find_tensor(name);
    ASSERT_NE(t, nullptr);
    ASSERT_EQ(static_cast<int>(t->type), rec.at("type_id").get<int>());
    ASSERT_EQ(t->n_bytes, rec.at("n_bytes").get<std::uint64_t>());
    Tally& tl = tally[type_name(t->type)];
    ++tl.tensors;

    const bool raw_ok = sha256_hex(t->data, t->n_bytes) == rec.at("sha256_quantized");
    EXPECT_TRUE(raw_ok) << "raw bytes differ";
    tl.raw_ok += raw_ok;

    const std::vector<float> f = dequantize_tensor(*t);
    ASSERT_EQ(static_cast<std::int64_t>(f.size()), rec.at("n_elements").get<std::int64_t>());
    const bool ok = sha256_hex(f.data(), f.size() * sizeof(float)) == rec.at("sha256_dequantized_f32");
    tl.dequant_ok += ok;
    if (!ok) {
      const json& first8 = rec.at("first8_dequantized_bits");
      std::string where = "first 8 values agree; the difference is later";
      for (std::size_t i = 0; i < first8.size(); ++i) {
        if (bits_hex(f[i]) != first8[i].get<std::string>()) {
          where = fmt::format("first difference at index {}: got {} ({}), expected {}", i, bits_hex(f[i]), f[i],
                              first8[i].get<std::string>());
          break;
        }
      }
      ADD_FAILURE() << "dequantized sha256 differs; " << where;
    }
  }
}

TEST(QuantGolden, DequantizeReproducesEveryTensorOfEveryFile) {
  std::map<std::string, Tally> tally;
  check_file_dequantizes(goldens().at("source").at("file"), goldens().at("source").at("tensors"), tally);
  for (const json& f : goldens().at("files")) check_file_dequantizes(f.at("file"), f.at("tensors"), tally);
  // 13 files: the source and the 12 quantized copies, each with 12 tensors.
  int total = 0;
  for (const auto& [type, tl] : tally) {
    fmt::print("dequantize {:5s}: {:3d}/{:3d} tensors bit-exact (sha256 of f32), raw bytes {:3d}/{:3d}\n", type,
               tl.dequant_ok, tl.tensors, tl.raw_ok, tl.tensors);
    total += tl.tensors;
  }
  EXPECT_EQ(total, 13 * 12);
  EXPECT_EQ(tally.size(), 13u);  // F32 + the 12 types of the quantized files
}

class QuantGoldenEncode : public ::testing::TestWithParam<const char*> {};

// Quantizes every 2-D tensor of the F32 source row by row and compares with llama-quantize's bytes.
TEST_P(QuantGoldenEncode, ByteExactWithLlamaQuantize) {
  const std::string type_arg = GetParam();
  const std::optional<GgmlType> type = type_from_name(type_arg);
  ASSERT_TRUE(type.has_value());
  ASSERT_TRUE(can_quantize(*type));
  const json& frec = file_record(type_arg);
  ASSERT_EQ(frec.at("expected_requantization").get<std::string>().rfind("exact", 0), 0u);

  auto src = gguf::File::open(kDir + goldens().at("source").at("file").get<std::string>());
  int n_checked = 0;
  int n_ok = 0;
  for (const json& rec : frec.at("tensors")) {
    const std::string name = rec.at("name");
    SCOPED_TRACE(name);
    const gguf::TensorInfo* t = src->find_tensor(name);
    ASSERT_NE(t, nullptr);
    ASSERT_EQ(t->type, GgmlType::F32);
    if (t->n_dims != 2) {
      // Norm weights stay F32 in every file: the copy must be identical.
      EXPECT_EQ(rec.at("type").get<std::string>(), "F32");
      continue;
    }
    ASSERT_EQ(rec.at("type").get<std::string>(), type_arg);
    const std::int64_t ne0 = t->ne[0];
    const std::uint64_t rb = *row_bytes(*type, static_cast<std::uint64_t>(ne0));
    std::vector<std::uint8_t> out(rb * static_cast<std::uint64_t>(t->n_rows()));
    const auto* x = reinterpret_cast<const float*>(t->data);  // the data section is 32-byte aligned
    for (std::int64_t ir = 0; ir < t->n_rows(); ++ir) {
      quantize_row(*type, x + ir * ne0, out.data() + static_cast<std::uint64_t>(ir) * rb, ne0);
    }
    ASSERT_EQ(out.size(), rec.at("n_bytes").get<std::uint64_t>());
    const bool ok = sha256_hex(out.data(), out.size()) == rec.at("sha256_quantized");
    EXPECT_TRUE(ok) << "quantized bytes differ from llama-quantize's";
    ++n_checked;
    n_ok += ok;
  }
  fmt::print("quantize {:5s}: {}/{} tensors byte-exact with llama-quantize\n", type_arg, n_ok, n_checked);
  EXPECT_EQ(n_checked, 9);
}

INSTANTIATE_TEST_SUITE_P(SimpleTypes, QuantGoldenEncode,
                         ::testing::Values("F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"),
                         [](const auto& info) { return std::string(info.param); });

// The one block where float32 evaluation without FMA matters (goldens.json fma_rounding_example):
// Q4_0 token_embd.weight block 1462, element 28 must get code 5, not the fused result 4.
TEST(QuantGolden, Q4_0BlockThatNeedsUnfusedRounding) {
  const json& ex = goldens().at("fma_rounding_example");
  auto src = gguf::File::open(kDir + "random-llama-f32.gguf");
  auto q = gguf::File::open(kDir + ex.at("file").get<std::string>());
  const std::string name = ex.at("tensor");
  const gguf::TensorInfo* ts = src->find_tensor(name);
  const gguf::TensorInfo* tq = q->find_tensor(name);
  ASSERT_NE(ts, nullptr);
  ASSERT_NE(tq, nullptr);
  const int ib = ex.at("block_index");
  const int el = ex.at("element_in_block");
  std::uint8_t block[18];
  quantize_row(GgmlType::Q4_0, reinterpret_cast<const float*>(ts->data) + ib * 32, block, 32);
  EXPECT_EQ(std::memcmp(block, tq->data + ib * 18, 18), 0);
  const int code = el < 16 ? (block[2 + el] & 15) : (block[2 + el - 16] >> 4);
  EXPECT_EQ(code, 5);
}

}  // namespace
}  // namespace g2c::quant
