#pragma once
// CPU feature detection from CPUID (and XGETBV for OS-enabled AVX/AVX-512 state).
#include <string>

namespace g2c {

struct CpuFeatures {
  bool sse42 = false;
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512vnni = false;
  bool avx512vbmi = false;  // byte permutes (vpermt2b): the avx512 table's Q4_0 decode uses them when present
  bool avx512bf16 = false;
  std::string brand;       // e.g. "AMD EPYC 9654 96-Core Processor"
  std::string vendor;      // CPUID leaf 0: "AuthenticAMD", "GenuineIntel", ...
  int family = 0;          // display family (base + extended): 25 = AMD Zen 3/4, 26 = AMD Zen 5, 6 = Intel Core
  int model = 0;           // display model (base + extended << 4)
  int logical_cores = 0;   // online logical CPUs
  int physical_cores = 0;  // distinct (package, core) pairs from sysfs; falls back to logical

  // "AVX2 FMA F16C AVX512F ..." in a fixed order, only the features present.
  std::string to_string() const;
};

// Detected once per process, then cached.
const CpuFeatures& cpu_features();

}  // namespace g2c
