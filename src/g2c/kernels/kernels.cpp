// Table dispatch: one table per process, chosen on first use.
//
// To add an ISA table: write x86/<isa>.cpp defining `const KernelTable* <isa>_table()` that
// copies ref::make_table() and overrides entries, compile it with its own flags, and add a line to
// kIsas below with the CPU check.
#include "g2c/kernels/kernels.hpp"

#include <cstdlib>
#include <cstring>
#include <string>

#include "g2c/core/cpu.hpp"
#include "g2c/core/error.hpp"
#include "g2c/core/log.hpp"
#include "g2c/kernels/ref/ref.hpp"

namespace g2c::kernels {
#ifdef G2C_HAVE_X86_TABLES
namespace avx512 {
const KernelTable* table();
}
namespace avx2 {
const KernelTable* table();
}
#endif
namespace {

const KernelTable* ref_ptr() {
  static const KernelTable table = ref::make_table();
  return &table;
}

struct Isa {
  const char* name;
  bool (*cpu_ok)();
  const KernelTable* (*get)();
};

#ifdef G2C_HAVE_X86_TABLES
bool avx512_ok() {
  const auto& c = cpu_features();
  return c.avx512f && c.avx512bw && c.avx512vl && c.avx512vnni && c.avx2 && c.fma && c.f16c;
}
#endif

// Best first.
const Isa kIsas[] = {
#ifdef G2C_HAVE_X86_TABLES
    {"avx512", &avx512_ok, &avx512::table},
    {"avx2", [] { return cpu_features().avx2 && cpu_features().fma && cpu_features().f16c; }, &avx2::table},
#endif
    {"ref", [] { return true; }, &ref_ptr},
};

const KernelTable* choose() {
  const char* env = std::getenv("G2C_ISA");
  if (env && *env) {
    bool known = std::strcmp(env, "ref") == 0 || std::strcmp(env, "avx2") == 0 || std::strcmp(env, "avx512") == 0;
    if (!known) {
      std::string msg = std::string("G2C_ISA=") + env + ": expected ref, avx2 or avx512";
      check_failed("G2C_ISA", __FILE__, __LINE__, msg.c_str());
    }
    if (const KernelTable* t = table_for(env)) return t;
    log_warn("G2C_ISA={}: that kernel table is not built or not supported by this CPU; using ref", env);
    return ref_ptr();
  }
  for (const Isa& isa : kIsas)
    if (isa.cpu_ok()) return isa.get();
  return ref_ptr();
}

}  // namespace

bool vbmi_q4_0_decode_default(const CpuFeatures& cpu) {
  return cpu.avx512vbmi && cpu.vendor == "AuthenticAMD" && cpu.family == 25;
}

const KernelTable& ref_table() { return *ref_ptr(); }

const KernelTable* table_for(const char* name) {
  for (const Isa& isa : kIsas)
    if (std::strcmp(isa.name, name) == 0) return isa.cpu_ok() ? isa.get() : nullptr;
  return nullptr;
}

const KernelTable& kernels() {
  static const KernelTable* table = choose();
  return *table;
}

}  // namespace g2c::kernels
