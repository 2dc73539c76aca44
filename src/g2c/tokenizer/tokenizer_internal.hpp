#pragma once
// Shared by tokenizer.cpp and encode.cpp; not part of the public API.
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace g2c::tokenizer {

// Token attribute bits (llama.cpp's llama_token_attr subset that changes behaviour).
inline constexpr std::uint32_t kAttrUnknown = 1u << 0;
inline constexpr std::uint32_t kAttrUnused = 1u << 1;
inline constexpr std::uint32_t kAttrNormal = 1u << 2;
inline constexpr std::uint32_t kAttrControl = 1u << 3;
inline constexpr std::uint32_t kAttrUserDefined = 1u << 4;
inline constexpr std::uint32_t kAttrByte = 1u << 5;
inline constexpr std::uint32_t kAttrLstrip = 1u << 7;
inline constexpr std::uint32_t kAttrRstrip = 1u << 8;

// Test hook: false makes SPM merge over each whole fragment in one queue (llama.cpp's literal
// procedure) instead of independent chunks, so tests can check the two agree.
extern std::atomic<bool> g_spm_chunking;

// Key of a BPE merge pair: 4 bytes of len(left), then left, then right. Unambiguous for any bytes.
inline void make_merge_key(std::string_view left, std::string_view right, std::string& key) {
  const auto len = static_cast<std::uint32_t>(left.size());
  key.resize(4);
  std::memcpy(key.data(), &len, 4);
  key.append(left);
  key.append(right);
}

}  // namespace g2c::tokenizer
