#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/test_util.hpp"
#include "g2c/core/aligned.hpp"
#include "g2c/core/cpu.hpp"
#include "g2c/core/error.hpp"
#include "g2c/core/mmap.hpp"
#include "g2c/core/timer.hpp"

namespace g2c {
namespace {

TEST(Aligned, IsCacheLineAlignedAndMovable) {
  AlignedBuffer<float> a(37, true);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % 64, 0u);
  EXPECT_EQ(a[36], 0.0f);
  AlignedBuffer<float> b = std::move(a);
  EXPECT_EQ(b.size(), 37u);
  EXPECT_EQ(a.data(), nullptr);
}

TEST(Mmap, MapsAndAtomicWrites) {
  test::TempDir tmp;
  const std::filesystem::path& dir = tmp.path();
  auto p = (dir / "x.bin").string();
  std::vector<std::uint8_t> data{1, 2, 3, 4, 5};
  write_file_atomic(p, data);
  MappedFile m(p);
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m.data()[4], 5);
  EXPECT_EQ(read_file(p), std::string("\x01\x02\x03\x04\x05"));
  std::ofstream(dir / "empty.bin");
  MappedFile e((dir / "empty.bin").string());
  EXPECT_EQ(e.size(), 0u);
  EXPECT_THROW(MappedFile((dir / "missing").string()), IoError);
  EXPECT_THROW(MappedFile(dir.string()), IoError);  // a directory
  EXPECT_THROW(write_file_atomic((dir / "no/such/dir/f").string(), data), IoError);
}

TEST(Timer, IsMonotonic) {
  auto a = now_ns();
  auto b = now_ns();
  EXPECT_LE(a, b);
}

TEST(Cpu, DetectsSomething) {
  const auto& c = cpu_features();
  EXPECT_GE(c.logical_cores, 1);
  EXPECT_GE(c.physical_cores, 1);
  EXPECT_LE(c.physical_cores, c.logical_cores);
#if defined(__x86_64__)
  // Cross-check with the compiler's builtin (an independent CPUID reader).
  __builtin_cpu_init();
  EXPECT_EQ(c.avx2, static_cast<bool>(__builtin_cpu_supports("avx2")));
  EXPECT_EQ(c.fma, static_cast<bool>(__builtin_cpu_supports("fma")));
  EXPECT_EQ(c.avx512f, static_cast<bool>(__builtin_cpu_supports("avx512f")));
  EXPECT_EQ(c.avx512bw, static_cast<bool>(__builtin_cpu_supports("avx512bw")));
  EXPECT_EQ(c.avx512vl, static_cast<bool>(__builtin_cpu_supports("avx512vl")));
  EXPECT_EQ(c.avx512vnni, static_cast<bool>(__builtin_cpu_supports("avx512vnni")));
  EXPECT_EQ(c.avx512bf16, static_cast<bool>(__builtin_cpu_supports("avx512bf16")));
  EXPECT_EQ(c.vendor == "AuthenticAMD", static_cast<bool>(__builtin_cpu_is("amd")));
  EXPECT_EQ(c.vendor == "GenuineIntel", static_cast<bool>(__builtin_cpu_is("intel")));
#endif
#if defined(__x86_64__) && defined(__linux__)
  // Family and model against the kernel's own decoding in /proc/cpuinfo.
  std::ifstream info("/proc/cpuinfo");
  std::string line;
  int family = -1, model = -1;
  while (std::getline(info, line) && (family < 0 || model < 0)) {
    auto value = [&] { return std::stoi(line.substr(line.find(':') + 1)); };
    if (line.rfind("cpu family", 0) == 0) family = value();
    if (line.rfind("model\t", 0) == 0) model = value();
  }
  ASSERT_GE(family, 0) << "no 'cpu family' line in /proc/cpuinfo";
  ASSERT_GE(model, 0) << "no 'model' line in /proc/cpuinfo";
  EXPECT_EQ(c.family, family);
  EXPECT_EQ(c.model, model);
#endif
}

TEST(Error, ContextKeepsType) {
  try {
    try {
      throw FormatError("bad thing");
    } catch (...) {
      rethrow_with_context("loading model X");
    }
  } catch (const FormatError& e) {
    EXPECT_STREQ(e.what(), "loading model X: bad thing");
  }
}

}  // namespace
}  // namespace g2c
