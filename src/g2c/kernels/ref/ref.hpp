#pragma once
// The portable reference table. ISA tables start from a copy of it and override entries.
#include "g2c/kernels/kernels.hpp"

namespace g2c::kernels::ref {

// Every entry filled for F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K (activations F32).
KernelTable make_table();

}  // namespace g2c::kernels::ref
