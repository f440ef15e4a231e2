// The inverted-dropout mask shared by the dropout stage and the recurrent stages' dropout between
// layers: element e of a batch keeps when the top 24 bits of splitmix64(key + e) reach
// p * 2^24, and is then scaled by 1/(1-p). A hash of the element's index, so packed rows in any
// order, any thread, and forward and backward all find the same mask without storing it.
#pragma once

#include <cstdint>

namespace rnnflow::stages {

inline std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// A stage's random key for one batch: a hash of its seed, the epoch and the batch (the dropout
// and word_dropout stages draw their per-element decisions from key + element index).
inline std::uint64_t batch_key(std::uint64_t seed, std::int64_t epoch, std::int64_t batch) {
    return splitmix64(seed ^ splitmix64(static_cast<std::uint64_t>(epoch) ^
                                        splitmix64(static_cast<std::uint64_t>(batch))));
}

struct DropoutMask {
    DropoutMask(double p, std::uint64_t key_)
        : key(key_), threshold(static_cast<std::uint64_t>(p * double(1 << 24))),
          keep(static_cast<float>(1.0 / (1.0 - p))) {}
    // The scale of element e: 0 or 1/(1-p).
    float at(std::uint64_t e) const { return (splitmix64(key + e) >> 40) >= threshold ? keep : 0.f; }
    // dst[c] = src[c] * at(e0 + c) for c < C (src == dst allowed). Vectorised for AVX-512 where
    // the CPU has it; the same mask on every path.
    void row(const float* src, float* dst, std::int64_t C, std::uint64_t e0) const;

    std::uint64_t key, threshold;
    float keep;
};

}  // namespace rnnflow::stages
