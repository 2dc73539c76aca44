// Writer -> reader round trip: every value type, arrays of each, tensors of several types and ranks,
// a non-default alignment. (Self-consistency only; the independent checks are in gguf_real_files_test.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "common/test_util.hpp"
#include "g2c/core/error.hpp"
#include "g2c/core/mmap.hpp"
#include "g2c/gguf/gguf.hpp"

namespace g2c::gguf {
namespace {

std::vector<std::uint8_t> bytes_of(std::size_t n, std::uint8_t seed) {
  std::vector<std::uint8_t> b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(seed + i * 31);
  return b;
}

Writer make_writer(std::uint32_t alignment) {
  Writer w(alignment);
  w.set("general.architecture", Value::str("llama"));
  w.set("t.u8", Value::u8(250));
  w.set("t.i8", Value::i8(-7));
  w.set("t.u16", Value::u16(65000));
  w.set("t.i16", Value::i16(-32000));
  w.set("t.u32", Value::u32(4000000000u));
  w.set("t.i32", Value::i32(-2000000000));
  w.set("t.u64", Value::u64(0xfedcba9876543210ull));
  w.set("t.i64", Value::i64(-1234567890123ll));
  w.set("t.f32", Value::f32(3.25f));
  w.set("t.f64", Value::f64(-1e300));
  w.set("t.bool", Value::boolean(true));
  w.set("t.str", Value::str(std::string("h\xc3\xa9llo\0x", 8)));
  w.set("t.empty_str", Value::str(""));
  w.set("t.arr_str", Value::array_str({"<unk>", "", "▁the", std::string(1, '\0')}));
  std::vector<float> fs{1.5f, -0.0f, 1e-30f};
  w.set("t.arr_f32", Value::array_f32(fs));
  std::vector<std::int32_t> is{-1, 0, 7};
  w.set("t.arr_i32", Value::array_i32(is));
  w.set("t.arr_empty", Value::array_str({}));
  w.set("t.arr_u8", Value::array_raw(ValueType::UINT8, {1, 2, 3}));
  w.set("t.arr_bool", Value::array_raw(ValueType::BOOL, {1, 0}));
  w.set("t.arr_f64", Value::array_raw(ValueType::FLOAT64, std::vector<std::uint8_t>(16, 0x40)));
  std::vector<std::int64_t> ne1{7};
  w.add_tensor("vec", GgmlType::F32, ne1, bytes_of(28, 1));
  std::vector<std::int64_t> ne2{64, 3};
  w.add_tensor("q4", GgmlType::Q4_0, ne2, bytes_of(2 * 18 * 3, 2));
  std::vector<std::int64_t> ne4{256, 2, 1, 2};
  w.add_tensor("k6", GgmlType::Q6_K, ne4, bytes_of(210 * 4, 3));
  std::vector<std::int64_t> ne3{3, 5, 2};
  w.add_tensor("h", GgmlType::F16, ne3, bytes_of(2 * 30, 4));
  return w;
}

void check_equal(const Writer& w, const File& f, std::uint32_t alignment) {
  (void)w;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), alignment);
  EXPECT_EQ(f.data_offset() % alignment, 0u);
  EXPECT_EQ(f.find("t.u8")->as_i64(), 250);
  EXPECT_EQ(f.find("t.u8")->type(), ValueType::UINT8);
  EXPECT_EQ(f.find("t.i8")->as_i64(), -7);
  EXPECT_EQ(f.find("t.u16")->as_i64(), 65000);
  EXPECT_EQ(f.find("t.i16")->as_i64(), -32000);
  EXPECT_EQ(f.find("t.u32")->as_u64(), 4000000000u);
  EXPECT_EQ(f.find("t.i32")->as_i64(), -2000000000);
  EXPECT_EQ(f.find("t.u64")->as_u64(), 0xfedcba9876543210ull);
  EXPECT_THROW(f.find("t.u64")->as_i64(), InvalidArgument);
  EXPECT_EQ(f.find("t.i64")->as_i64(), -1234567890123ll);
  EXPECT_THROW(f.find("t.i64")->as_u64(), InvalidArgument);
  EXPECT_EQ(f.find("t.f32")->as_f64(), 3.25);
  EXPECT_EQ(f.find("t.f32")->type(), ValueType::FLOAT32);
  EXPECT_EQ(f.find("t.f64")->as_f64(), -1e300);
  EXPECT_TRUE(f.find("t.bool")->as_bool());
  EXPECT_EQ(f.find("t.str")->as_str(), std::string("h\xc3\xa9llo\0x", 8));
  EXPECT_EQ(f.find("t.empty_str")->as_str(), "");
  EXPECT_EQ(f.find("t.arr_str")->strings(), (std::vector<std::string>{"<unk>", "", "▁the", std::string(1, '\0')}));
  auto fv = f.find("t.arr_f32")->to_f32_vector();
  ASSERT_EQ(fv.size(), 3u);
  EXPECT_EQ(fv[0], 1.5f);
  EXPECT_TRUE(std::signbit(fv[1]));
  EXPECT_EQ(fv[2], 1e-30f);
  EXPECT_EQ(f.find("t.arr_i32")->to_i64_vector(), (std::vector<std::int64_t>{-1, 0, 7}));
  EXPECT_EQ(f.find("t.arr_empty")->size(), 0u);
  EXPECT_EQ(f.find("t.arr_u8")->to_i64_vector(), (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(f.find("t.arr_bool")->to_i64_vector(), (std::vector<std::int64_t>{1, 0}));
  EXPECT_EQ(f.find("t.arr_f64")->size(), 2u);
  EXPECT_EQ(f.get_int("t.missing"), std::nullopt);
  EXPECT_THROW(f.require_int("t.missing"), FormatError);
  EXPECT_THROW(f.get_int("t.str"), InvalidArgument);
  EXPECT_EQ(f.architecture(), "llama");

  ASSERT_EQ(f.tensors().size(), 4u);
  struct Want {
    const char* name;
    GgmlType type;
    std::uint32_t n_dims;
    std::array<std::int64_t, 4> ne;
    std::size_t bytes;
    std::uint8_t seed;
  } wants[] = {{"vec", GgmlType::F32, 1, {7, 1, 1, 1}, 28, 1},
               {"q4", GgmlType::Q4_0, 2, {64, 3, 1, 1}, 108, 2},
               {"k6", GgmlType::Q6_K, 4, {256, 2, 1, 2}, 840, 3},
               {"h", GgmlType::F16, 3, {3, 5, 2, 1}, 60, 4}};
  for (const auto& want : wants) {
    const TensorInfo* t = f.find_tensor(want.name);
    ASSERT_NE(t, nullptr) << want.name;
    EXPECT_EQ(t->type, want.type);
    EXPECT_EQ(t->n_dims, want.n_dims);
    EXPECT_EQ(t->ne, want.ne);
    EXPECT_EQ(t->n_bytes, want.bytes);
    EXPECT_EQ(t->offset % alignment, 0u);
    auto expect = bytes_of(want.bytes, want.seed);
    EXPECT_EQ(std::memcmp(t->data, expect.data(), want.bytes), 0) << want.name;
  }
}

TEST(GgufRoundTrip, EveryValueTypeAndTensorInMemory) {
  for (std::uint32_t alignment : {32u, 64u, 1u}) {
    Writer w = make_writer(alignment);
    auto bytes = w.to_bytes();
    auto f = File::parse(bytes, "roundtrip");
    check_equal(w, *f, alignment);
    // Writing the parsed file's metadata again gives identical bytes.
    Writer w2(alignment);
    for (const auto& kv : f->kvs()) w2.set(kv.key, kv.value);
    for (const auto& t : f->tensors())
      w2.add_tensor(t.name, t.type, std::span<const std::int64_t>(t.ne.data(), t.n_dims), {t.data, t.n_bytes});
    EXPECT_EQ(w2.to_bytes(), bytes) << "alignment " << alignment;
  }
}

TEST(GgufRoundTrip, WriteIsAtomicAndReadable) {
  test::TempDir dir;
  const std::string path = dir.file("m.gguf");
  Writer w = make_writer(32);
  w.write(path);
  auto f = File::open(path);
  check_equal(w, *f, 32);
  // no temporary left behind
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) (void)e, ++n;
  EXPECT_EQ(n, 1);
}

TEST(GgufWriter, RefusesBadTensors) {
  Writer w;
  std::vector<std::int64_t> ne{33};
  EXPECT_THROW(w.add_tensor("x", GgmlType::Q4_0, ne, std::vector<std::uint8_t>(18)), InvalidArgument);
  std::vector<std::int64_t> ne2{32};
  EXPECT_THROW(w.add_tensor("x", GgmlType::Q4_0, ne2, std::vector<std::uint8_t>(17)), InvalidArgument);
  w.add_tensor("x", GgmlType::Q4_0, ne2, std::vector<std::uint8_t>(18));
  EXPECT_THROW(w.add_tensor("x", GgmlType::Q4_0, ne2, std::vector<std::uint8_t>(18)), InvalidArgument);
  EXPECT_THROW(Writer(3), InvalidArgument);
}

// write(path, fill): streamed tensors are produced at write time; the file is byte-identical to the
// in-memory writer's, a throwing fill leaves neither the file nor a temporary behind.
TEST(GgufWriter, StreamedWriteMatchesInMemory) {
  test::TempDir dir;
  const std::string path = dir.file("s.gguf");
  for (std::uint32_t alignment : {32u, 64u, 1u}) {
    Writer mem = make_writer(alignment);
    std::vector<std::int64_t> ne{64, 3};
    const auto a = bytes_of(64 / 32 * 18 * 3, 5);  // Q4_0 [3][64]
    const auto b = bytes_of(7 * 4, 9);             // F32 [7]
    mem.add_tensor("st.a", GgmlType::Q4_0, ne, a);
    mem.add_tensor("st.b", GgmlType::F32, std::vector<std::int64_t>{7}, b);

    Writer st = make_writer(alignment);
    st.add_tensor_streamed("st.a", GgmlType::Q4_0, ne);
    st.add_tensor_streamed("st.b", GgmlType::F32, std::vector<std::int64_t>{7});
    EXPECT_THROW(st.to_bytes(), InvalidArgument);
    std::vector<std::string> order;
    st.write(path, [&](const TensorInfo& info, std::span<std::uint8_t> out) {
      order.push_back(info.name);
      const auto& src = info.name == "st.a" ? a : b;
      ASSERT_EQ(out.size(), src.size());
      std::memcpy(out.data(), src.data(), src.size());
    });
    EXPECT_EQ(order, (std::vector<std::string>{"st.a", "st.b"}));
    EXPECT_EQ(read_file(path), std::string(reinterpret_cast<const char*>(mem.to_bytes().data()), mem.to_bytes().size()))
        << "alignment " << alignment;
  }
  std::filesystem::remove(path);
  Writer bad;
  bad.add_tensor_streamed("x", GgmlType::F32, std::vector<std::int64_t>{4});
  EXPECT_THROW(bad.write(path, [](const TensorInfo&, std::span<std::uint8_t>) { throw IoError("boom"); }), IoError);
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) (void)e, ++n;
  EXPECT_EQ(n, 0);
}

}  // namespace
}  // namespace g2c::gguf
