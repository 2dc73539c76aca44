#include "g2c/core/error.hpp"

#include <cstdio>
#include <cstdlib>

namespace g2c {

void rethrow_with_context(const std::string& context) {
  try {
    throw;
  } catch (const IoError& e) {
    throw IoError(context + ": " + e.what());
  } catch (const FormatError& e) {
    throw FormatError(context + ": " + e.what());
  } catch (const UnsupportedError& e) {
    throw UnsupportedError(context + ": " + e.what());
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(context + ": " + e.what());
  } catch (const ShapeError& e) {
    throw ShapeError(context + ": " + e.what());
  } catch (const std::exception& e) {
    throw Error(context + ": " + e.what());
  }
}

void check_failed(const char* expr, const char* file, int line, const char* msg) {
  std::fprintf(stderr, "g2c: internal check failed at %s:%d: %s%s%s\n", file, line, expr, msg ? ": " : "",
               msg ? msg : "");
  std::fflush(stderr);
  std::abort();
}

}  // namespace g2c
