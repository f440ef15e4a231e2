// exp, tanh and sigmoid in plain arithmetic, so that loops over them vectorise (glibc's expf and
// tanhf are scalar calls and took a third of a training step in the attention decoder). exp:
// x = k ln2 + r with |r| <= ln2 / 2, exp(r) by its degree-6 Taylor polynomial (relative error
// < 3e-7), 2^k by the exponent bits; inputs are clamped to [-87, 88] (no inf, no denormals).
// tanh from exp(-2|x|): absolute error ~1e-7 near 0, relative ~3e-7 elsewhere.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace rnnflow::stages {

inline float fast_exp(float x) {
    x = std::min(std::max(x, -87.0f), 88.0f);
    constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
    const float k = (x * 1.44269504088896341f + kRound) - kRound;
    const float r = (x - k * 0.693359375f) + k * 2.12194440e-4f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const std::int32_t bits = (static_cast<std::int32_t>(k) + 127) << 23;
    return p * std::bit_cast<float>(bits);
}
inline float fast_sigmoid(float z) { return 1.0f / (1.0f + fast_exp(-z)); }
inline float fast_tanh(float x) {
    const float e = fast_exp(-2.0f * std::abs(x));
    const float t = (1.0f - e) / (1.0f + e);
    return std::copysign(t, x);
}

}  // namespace rnnflow::stages
