#pragma once
// Version and commit baked in at configure time (benchmark results record them).
namespace g2c::inference {

const char* g2c_version();  // "0.1.0" (the CMake project version)
const char*
g2c_commit();  // short git hash at configure time, with "-dirty" when the tree had changes; "unknown" outside git

}  // namespace g2c::inference
