#pragma once
// Errors: wrong input raises a g2c::Error subclass whose message names the thing and says expected vs
// actual. Broken invariants (program bugs) use G2C_CHECK, which aborts with file:line.
#include <stdexcept>
#include <string>

namespace g2c {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// A file or stream could not be opened, read or written.
class IoError : public Error {
 public:
  using Error::Error;
};
// Bytes that do not follow their format (a malformed GGUF, a truncated checkpoint).
class FormatError : public Error {
 public:
  using Error::Error;
};
// Well-formed input that g2c does not implement (an IQ tensor type, an unknown architecture).
class UnsupportedError : public Error {
 public:
  using Error::Error;
};
// A caller passed a bad value (a negative count, an unknown option, a missing key).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};
// A tensor's shape or type differs from what the model needs.
class ShapeError : public Error {
 public:
  using Error::Error;
};

// Wraps `e`'s message in context: "loading model X: <message>", keeping the dynamic type for the
// common subclasses.
[[noreturn]] void rethrow_with_context(const std::string& context);

[[noreturn]] void check_failed(const char* expr, const char* file, int line, const char* msg);

}  // namespace g2c

#define G2C_CHECK(cond)                                                   \
  do {                                                                    \
    if (!(cond)) ::g2c::check_failed(#cond, __FILE__, __LINE__, nullptr); \
  } while (0)
#define G2C_CHECK_MSG(cond, msg)                                        \
  do {                                                                  \
    if (!(cond)) ::g2c::check_failed(#cond, __FILE__, __LINE__, (msg)); \
  } while (0)
// G2C_DCHECK: checks too costly for release code (kernel preconditions, once per call). On in Debug
// builds and wherever G2C_DCHECK_ON is defined (CMake's G2C_SANITIZE builds); in Release the condition
// is not even evaluated. G2C_DCHECK_IS_ON says which (tests of the checks skip themselves in Release).
#if !defined(NDEBUG) || defined(G2C_DCHECK_ON)
#define G2C_DCHECK_IS_ON 1
#define G2C_DCHECK(cond) G2C_CHECK(cond)
#else
#define G2C_DCHECK_IS_ON 0
#define G2C_DCHECK(cond) ((void)0)
#endif
