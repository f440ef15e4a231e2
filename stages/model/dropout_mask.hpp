// The inverted-dropout mask shared by the dropout stage and the recurrent stages' dropout between
// layers: element e of a batch keeps when the top 24 bits of splitmix64(key + e) reach
// p * 2^24, and is then scaled by 1/(1-p). A hash, so any row order or thread finds its own mask.
#pragma once

#include <cstdint>

namespace rnnflow::stages {

// dst[c] = src[c] * (keep or 0) for the elements e0 + c, c < C (src == dst allowed). Vectorised
// for AVX-512 where the CPU has it; the same mask on every path.
void dropout_mask_row(const float* src, float* dst, std::int64_t C, std::uint64_t key,
                      std::uint64_t e0, std::uint64_t threshold, float keep);

}  // namespace rnnflow::stages
