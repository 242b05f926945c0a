// The simulator's one source of randomness: xoshiro256** seeded through splitmix64. A run draws
// everything (topology, faults, delays, payloads) from generators derived from its one seed, so
// the same seed replays the same run bit for bit on any machine. No std::random_device, and no
// standard distribution (their output differs between standard libraries).
#pragma once

#include <cstdint>

namespace cohort::transport::sim {

// splitmix64: spreads a seed (or any counter) over 64 bits; used to seed and to derive streams.
constexpr uint64_t splitmix64(uint64_t* state) noexcept {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A 64-bit hash of one word (the splitmix64 finalizer); good enough for ids and trace hashes.
constexpr uint64_t mix64(uint64_t x) noexcept {
  uint64_t s = x;
  return splitmix64(&s);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) noexcept {
    uint64_t s = seed;
    for (uint64_t& w : s_) w = splitmix64(&s);
  }

  uint64_t next() noexcept {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n); 0 when n is 0. The modulo's bias (n / 2^64) is far below anything a
  // test can see.
  uint64_t below(uint64_t n) noexcept { return n == 0 ? 0 : next() % n; }
  // Uniform in [lo, hi] (inclusive); lo when hi < lo.
  uint64_t between(uint64_t lo, uint64_t hi) noexcept {
    return hi <= lo ? lo : lo + below(hi - lo + 1);
  }
  // Uniform in [0, 1).
  double unit() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  bool chance(double p) noexcept { return p > 0 && unit() < p; }
  // A new generator whose stream does not overlap this one's in any way a test can see.
  Rng fork() noexcept { return Rng(next()); }

 private:
  static constexpr uint64_t rotl(uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace cohort::transport::sim
