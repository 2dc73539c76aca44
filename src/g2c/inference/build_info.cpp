#include "g2c/inference/build_info.hpp"

#ifndef G2C_VERSION_STRING
#define G2C_VERSION_STRING "unknown"
#endif
#ifndef G2C_GIT_COMMIT
#define G2C_GIT_COMMIT "unknown"
#endif

namespace g2c::inference {

const char* g2c_version() { return G2C_VERSION_STRING; }
const char* g2c_commit() { return G2C_GIT_COMMIT; }

}  // namespace g2c::inference
