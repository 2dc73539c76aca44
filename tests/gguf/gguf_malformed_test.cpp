// Table-driven malformed GGUF files: each corruption must raise a g2c::Error naming the problem,
// never crash or read outside the buffer (run under `make test-asan`). The files are built byte by
// byte so each case breaks exactly one thing in an otherwise valid file.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>

#include "g2c/core/error.hpp"
#include "g2c/gguf/gguf.hpp"

namespace g2c::gguf {
namespace {

struct Raw {
  std::vector<std::uint8_t> b;
  Raw& u8(std::uint8_t v) {
    b.push_back(v);
    return *this;
  }
  Raw& u32(std::uint32_t v) {
    put(&v, 4);
    return *this;
  }
  Raw& u64(std::uint64_t v) {
    put(&v, 8);
    return *this;
  }
  Raw& str(const std::string& s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Raw& pad(std::size_t align) {
    while (b.size() % align) b.push_back(0);
    return *this;
  }
  Raw& zeros(std::size_t n) {
    b.insert(b.end(), n, 0);
    return *this;
  }
  void put(const void* p, std::size_t n) {
    auto* c = static_cast<const std::uint8_t*>(p);
    b.insert(b.end(), c, c + n);
  }
};

// A tensor info as it appears in the file.
struct TI {
  std::string name = "w";
  std::vector<std::uint64_t> ne{32, 2};
  std::uint32_t type = 0;  // F32
  std::uint64_t offset = 0;
};

// Header + metadata callback + tensor infos + aligned data of `data_bytes`.
std::vector<std::uint8_t> build(std::uint32_t version, std::uint64_t n_kv, const std::function<void(Raw&)>& kvs,
                                const std::vector<TI>& tis, std::size_t data_bytes, std::size_t align = 32) {
  Raw r;
  r.u32(kMagic).u32(version).u64(tis.size()).u64(n_kv);
  kvs(r);
  for (const auto& t : tis) {
    r.str(t.name).u32(static_cast<std::uint32_t>(t.ne.size()));
    for (auto n : t.ne) r.u64(n);
    r.u32(t.type).u64(t.offset);
  }
  r.pad(align).zeros(data_bytes);
  return r.b;
}

std::vector<std::uint8_t> valid_file() {
  return build(
      3, 1, [](Raw& r) { r.str("general.architecture").u32(8).str("llama"); }, {TI{}}, 256);
}

struct Case {
  const char* what;
  std::function<std::vector<std::uint8_t>()> make;
  const char* expect;  // substring of the error message
};

std::vector<Case> cases() {
  auto one_kv = [](std::function<void(Raw&)> f) { return [f] { return build(3, 1, f, {}, 0); }; };
  auto one_t = [](TI t, std::size_t data = 256) {
    return [t, data] {
      return build(
          3, 0, [](Raw&) {}, {t}, data);
    };
  };
  return {
      {"empty file", [] { return std::vector<std::uint8_t>{}; }, "truncated"},
      {"3 bytes",
       [] {
         return std::vector<std::uint8_t>{'G', 'G', 'U'};
       },
       "truncated"},
      {"bad magic",
       [] {
         auto b = valid_file();
         b[3] = 'X';
         return b;
       },
       "bad magic"},
      {"version 1",
       [] {
         return build(
             1, 0, [](Raw&) {}, {}, 0);
       },
       "version 1"},
      {"version 4",
       [] {
         return build(
             4, 0, [](Raw&) {}, {}, 0);
       },
       "version 4"},
      {"big-endian",
       [] {
         return build(
             0x03000000u, 0, [](Raw&) {}, {}, 0);
       },
       "big-endian"},
      {"header cut after version",
       [] {
         auto b = valid_file();
         b.resize(10);
         return b;
       },
       "truncated"},
      {"absurd tensor count",
       [] {
         auto b = valid_file();
         std::uint64_t n = 1ull << 60;
         std::memcpy(&b[8], &n, 8);
         return b;
       },
       "absurd tensor count"},
      {"absurd kv count",
       [] {
         auto b = valid_file();
         std::uint64_t n = ~0ull;
         std::memcpy(&b[16], &n, 8);
         return b;
       },
       "absurd metadata count"},
      {"key length past end", one_kv([](Raw& r) { r.u64(1ull << 40).zeros(16); }), "runs past the end"},
      {"key cut short",
       [] {
         auto b = valid_file();
         b.resize(24 + 8 + 5);
         return b;
       },
       "truncated"},
      {"empty key", one_kv([](Raw& r) { r.str("").u32(4).u32(1); }), "empty key"},
      {"unknown value type", one_kv([](Raw& r) { r.str("k").u32(13).u32(1); }), "unknown value type 13"},
      {"unknown array element type", one_kv([](Raw& r) { r.str("k").u32(9).u32(99).u64(1); }),
       "unknown array element type 99"},
      {"nested array", one_kv([](Raw& r) { r.str("k").u32(9).u32(9).u64(1); }), "nested arrays"},
      {"numeric array count past end", one_kv([](Raw& r) { r.str("k").u32(9).u32(4).u64(1ull << 61); }),
       "runs past the end"},
      {"string array count past end", one_kv([](Raw& r) { r.str("k").u32(9).u32(8).u64(1ull << 58); }), "cannot fit"},
      {"string value length past end", one_kv([](Raw& r) { r.str("k").u32(8).u64(~0ull); }), "runs past the end"},
      {"duplicate key",
       [] {
         return build(
             3, 2, [](Raw& r) { r.str("k").u32(4).u32(1).str("k").u32(4).u32(2); }, {}, 0);
       },
       "duplicate key 'k'"},
      {"bool value 2", one_kv([](Raw& r) { r.str("k").u32(7).u8(2); }), "bool value 2"},
      {"alignment not a power of two", one_kv([](Raw& r) { r.str("general.alignment").u32(4).u32(48); }),
       "not a power of two"},
      {"alignment zero", one_kv([](Raw& r) { r.str("general.alignment").u32(4).u32(0); }), "not a power of two"},
      {"alignment of wrong type", one_kv([](Raw& r) { r.str("general.alignment").u32(8).str("32"); }), "expected u32"},
      {"empty tensor name", one_t(TI{.name = ""}), "empty name"},
      {"tensor name of 64 bytes", one_t(TI{.name = std::string(64, 'x')}), "at most 63"},
      {"5 dimensions", one_t(TI{.ne = {32, 1, 1, 1, 1}}), "5 dimensions"},
      {"0 dimensions", one_t(TI{.ne = {}}), "0 dimensions"},
      {"zero dimension", one_t(TI{.ne = {32, 0}}), "dimension 1 is zero"},
      {"dimension over int64", one_t(TI{.ne = {32, 1ull << 63}}), "overflows int64"},
      {"element count overflow", one_t(TI{.ne = {1ull << 32, 1ull << 32}}), "overflows the element count"},
      {"removed tensor type 4", one_t(TI{.type = 4}), "unknown tensor type 4"},
      {"tensor type 99", one_t(TI{.type = 99}), "unknown tensor type 99"},
      {"row not a multiple of the block", one_t(TI{.ne = {33, 2}, .type = 2}), "not a multiple of the Q4_0 block size"},
      {"misaligned offset", one_t(TI{.offset = 4}), "not a multiple of the alignment"},
      {"data outside the file", one_t(TI{.offset = 0}, 100), "outside the file"},
      {"offset far past the end", one_t(TI{.offset = 1ull << 62}), "outside the file"},
      {"overlapping tensors",
       [] {
         return build(
             3, 0, [](Raw&) {}, {TI{.name = "a"}, TI{.name = "b", .offset = 128}}, 512);
       },
       "overlap"},
      {"duplicate tensor name",
       [] {
         return build(
             3, 0, [](Raw&) {}, {TI{.name = "a"}, TI{.name = "a", .offset = 256}}, 512);
       },
       "duplicate tensor name 'a'"},
      {"tensor info cut short",
       [] {
         auto b = build(
             3, 0, [](Raw&) {}, {TI{}}, 0);
         b.resize(24 + 8 + 1 + 4 + 8);
         return b;
       },
       "truncated file"},
      {"data section missing",
       [] {
         auto b = build(
             3, 0, [](Raw&) {}, {TI{}}, 0);
         b.resize(24 + 8 + 1 + 4 + 16 + 4 + 8);
         return b;
       },
       "truncated"},
  };
}

TEST(GgufMalformed, ValidBaseFileParses) {
  auto b = valid_file();
  auto f = File::parse(b, "valid");
  EXPECT_EQ(f->tensors().size(), 1u);
  EXPECT_EQ(f->architecture(), "llama");
}

TEST(GgufMalformed, EveryCorruptionIsAClearError) {
  auto cs = cases();
  ASSERT_GE(cs.size(), 25u);
  for (const auto& c : cs) {
    auto bytes = c.make();
    // Copy into an exactly-sized heap buffer so ASan catches any read past the end.
    std::unique_ptr<std::uint8_t[]> buf(new std::uint8_t[bytes.size() + 1]);
    if (!bytes.empty()) std::memcpy(buf.get(), bytes.data(), bytes.size());
    std::span<const std::uint8_t> span(buf.get(), bytes.size());
    try {
      File::parse(span, "case.gguf");
      ADD_FAILURE() << c.what << ": parsed without error";
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(c.expect), std::string::npos)
          << c.what << ": message '" << msg << "' lacks '" << c.expect << "'";
      EXPECT_NE(msg.find("case.gguf"), std::string::npos) << c.what << ": message does not name the file: " << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << c.what << ": message is not one line";
    }
  }
}

TEST(GgufMalformed, EveryPrefixOfAValidFileFailsCleanly) {
  auto b = valid_file();
  for (std::size_t n = 0; n < b.size(); ++n) {
    std::vector<std::uint8_t> cut(b.begin(), b.begin() + static_cast<long>(n));
    EXPECT_THROW(File::parse(cut, "prefix"), FormatError) << "prefix " << n;
  }
}

TEST(GgufMalformed, RandomByteFlipsNeverCrash) {
  auto base = valid_file();
  std::mt19937 rng(1234);
  int errors = 0, ok = 0;
  for (int it = 0; it < 3000; ++it) {
    auto b = base;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<std::uint8_t>(rng());
    try {
      File::parse(b, "flip");
      ++ok;
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 0);
  EXPECT_EQ(errors + ok, 3000);
}

TEST(GgufMalformed, MissingFileIsAnIoErrorNamingThePath) {
  try {
    File::open("/nonexistent/dir/model.gguf");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.gguf"), std::string::npos);
  }
}

}  // namespace
}  // namespace g2c::gguf
