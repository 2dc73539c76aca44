// libFuzzer entry point for the GGUF reader: any byte string must parse or raise g2c::Error, never
// crash, hang or read outside the buffer. Seeds: the ../shared GGUF files (fuzz/run.sh).
#include <cstddef>
#include <cstdint>
#include <span>

#include "g2c/core/error.hpp"
#include "g2c/gguf/gguf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto f = g2c::gguf::File::parse(std::span<const std::uint8_t>(data, size), "fuzz");
    // Touch what a loader touches: every value's display form and every tensor's bytes.
    std::size_t sink = 0;
    for (const auto& kv : f->kvs()) sink += kv.value.to_display(4).size();
    for (const auto& t : f->tensors())
      if (t.n_bytes) sink += t.data[0] + t.data[t.n_bytes - 1];
    (void)sink;
  } catch (const g2c::Error&) {
  }
  return 0;
}
