#include "g2c/core/cpu.hpp"

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define G2C_X86 1
#endif

namespace g2c {
namespace {

#ifdef G2C_X86
std::uint64_t xgetbv0() {
  std::uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<std::uint64_t>(edx) << 32) | eax;
}
#endif

int count_physical_cores(int logical) {
  std::set<std::pair<int, int>> cores;
  for (int cpu = 0; cpu < logical; ++cpu) {
    std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream pk(base + "physical_package_id"), co(base + "core_id");
    int p = 0, c = 0;
    if (!(pk >> p) || !(co >> c)) return logical;
    cores.insert({p, c});
  }
  return cores.empty() ? logical : static_cast<int>(cores.size());
}

CpuFeatures detect() {
  CpuFeatures f;
#ifdef G2C_X86
  unsigned a = 0, b = 0, c = 0, d = 0;
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  {
    __cpuid(0, a, b, c, d);
    char vendor[13] = {};
    std::memcpy(vendor, &b, 4);
    std::memcpy(vendor + 4, &d, 4);
    std::memcpy(vendor + 8, &c, 4);
    f.vendor = vendor;
  }
  if (max_leaf >= 1) {
    __cpuid_count(1, 0, a, b, c, d);
    unsigned base_family = (a >> 8) & 0xF, base_model = (a >> 4) & 0xF;
    f.family = static_cast<int>(base_family == 0xF ? base_family + ((a >> 20) & 0xFF) : base_family);
    f.model =
        static_cast<int>(base_family == 0x6 || base_family == 0xF ? base_model | (((a >> 16) & 0xF) << 4) : base_model);
    f.sse42 = (c >> 20) & 1;
    bool osxsave = (c >> 27) & 1;
    bool avx_hw = (c >> 28) & 1;
    f.fma = (c >> 12) & 1;
    f.f16c = (c >> 29) & 1;
    std::uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    bool ymm_ok = (xcr0 & 0x6) == 0x6;
    bool zmm_ok = (xcr0 & 0xE6) == 0xE6;
    f.avx = avx_hw && ymm_ok;
    f.fma = f.fma && f.avx;
    f.f16c = f.f16c && f.avx;
    if (max_leaf >= 7) {
      __cpuid_count(7, 0, a, b, c, d);
      f.avx2 = f.avx && ((b >> 5) & 1);
      f.avx512f = zmm_ok && ((b >> 16) & 1);
      f.avx512bw = f.avx512f && ((b >> 30) & 1);
      f.avx512vl = f.avx512f && ((b >> 31) & 1);
      f.avx512vnni = f.avx512f && ((c >> 11) & 1);
      f.avx512vbmi = f.avx512f && ((c >> 1) & 1);
      unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
      __cpuid_count(7, 1, a1, b1, c1, d1);
      f.avx512bf16 = f.avx512f && ((a1 >> 5) & 1);
    }
  }
  unsigned ext = __get_cpuid_max(0x80000000, nullptr);
  if (ext >= 0x80000004) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      unsigned r[4];
      __cpuid(0x80000002 + i, r[0], r[1], r[2], r[3]);
      std::memcpy(brand + 16 * i, r, 16);
    }
    f.brand = brand;
    while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
    auto pos = f.brand.find_first_not_of(' ');
    f.brand = pos == std::string::npos ? "" : f.brand.substr(pos);
  }
#endif
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  f.logical_cores = n > 0 ? static_cast<int>(n) : 1;
  f.physical_cores = count_physical_cores(f.logical_cores);
  return f;
}

}  // namespace

std::string CpuFeatures::to_string() const {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(sse42, "SSE4.2");
  add(avx, "AVX");
  add(avx2, "AVX2");
  add(fma, "FMA");
  add(f16c, "F16C");
  add(avx512f, "AVX512F");
  add(avx512bw, "AVX512BW");
  add(avx512vl, "AVX512VL");
  add(avx512vnni, "AVX512VNNI");
  add(avx512vbmi, "AVX512VBMI");
  add(avx512bf16, "AVX512BF16");
  return s;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

}  // namespace g2c
