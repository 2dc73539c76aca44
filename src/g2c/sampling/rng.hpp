#pragma once
// The sampling RNG: PCG32 (O'Neill's pcg32 "XSH-RR", 64-bit state, 32-bit output), written out here so a
// seed gives the same numbers on every machine and standard library. std::mt19937 would be portable,
// but std::uniform_real_distribution and std::discrete_distribution are not (each library maps the bits
// to floats its own way), so the integer-to-uniform step is ours too.
//
// Seeding follows pcg32_srandom_r(initstate, initseq) of the reference C code:
//   state = 0; inc = (initseq << 1) | 1; next(); state += initstate; next();
// Pcg32(42, 54) yields 0xa15c02b7 0x7b47f409 0xba1d3330 ... (the reference pcg32-demo output; pinned by
// tests/sampling/rng_test.cpp).
#include <cstdint>

namespace g2c::sampling {

class Pcg32 {
 public:
  // The stream g2c uses for a user seed: Pcg32(seed) == Pcg32(seed, kDefaultStream). 54 is the reference
  // demo's stream, so seed 42 reproduces the published sequence.
  static constexpr std::uint64_t kDefaultStream = 54;

  explicit Pcg32(std::uint64_t seed, std::uint64_t stream = kDefaultStream) { this->seed(seed, stream); }

  void seed(std::uint64_t initstate, std::uint64_t initseq = kDefaultStream) {
    state_ = 0;
    inc_ = (initseq << 1) | 1u;
    next_u32();
    state_ += initstate;
    next_u32();
  }

  std::uint32_t next_u32() {
    const std::uint64_t old = state_;
    state_ = old * 6364136223846793005ULL + inc_;
    const auto xorshifted = static_cast<std::uint32_t>(((old >> 18) ^ old) >> 27);
    const auto rot = static_cast<std::uint32_t>(old >> 59);
    return (xorshifted >> rot) | (xorshifted << ((0u - rot) & 31u));
  }

  // Uniform double in [0, 1) with 53 random bits: the top 32 bits from one output, the next 21 from the
  // top of a second. Exact integer arithmetic, then one exact scaling by 2^-53: the same value everywhere.
  double next_double() {
    const std::uint64_t hi = next_u32();
    const std::uint64_t lo = next_u32() >> 11;
    return static_cast<double>((hi << 21) | lo) * (1.0 / 9007199254740992.0);  // 2^53
  }

 private:
  std::uint64_t state_ = 0;
  std::uint64_t inc_ = 1;
};

}  // namespace g2c::sampling
