// Non-finite guards of a training run (guards.hpp).
#include "guards.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace rnnflow {

std::int64_t first_nonfinite(const Tensor& t) {
    if (t.dtype() != DType::f32 || t.empty()) return -1;
    const float* p = t.data<float>();
    const std::int64_t n = t.numel();
    // NaN and Inf have every exponent bit set: an integer OR over the bits vectorises (a float
    // sum would not without -ffast-math), in parallel over fixed chunks on the OpenMP team
    // oneDNN uses (the check runs over every gradient each step); the search for the first one
    // runs only when something was found.
    constexpr std::int64_t kChunk = std::int64_t{1} << 15;
    const std::int64_t chunks = (n + kChunk - 1) / kChunk;
    std::uint32_t any = 0;
#pragma omp parallel for schedule(static) reduction(| : any) if (chunks > 1)
    for (std::int64_t c = 0; c < chunks; ++c) {
        const std::int64_t e = std::min(n, (c + 1) * kChunk);
        std::uint32_t a = 0;
        for (std::int64_t i = c * kChunk; i < e; ++i) {
            std::uint32_t b;
            std::memcpy(&b, p + i, sizeof b);
            a |= static_cast<std::uint32_t>((b & 0x7f800000u) == 0x7f800000u);
        }
        any |= a;
    }
    if (!any) return -1;
    for (std::int64_t i = 0; i < n; ++i)
        if (!std::isfinite(p[i])) return i;
    return -1;
}

std::string nonfinite_word(float v) {
    if (std::isnan(v)) return "NaN";
    return v > 0 ? "Inf" : "-Inf";
}

std::string step_text(const StepInfo& step) {
    return step.split + " epoch " + std::to_string(step.epoch + 1) + " batch " + std::to_string(step.batch + 1);
}

void NonfiniteGuard::end_training_step(const StepInfo& step) {
    if (!step_skipped) {
        skipped_in_row = 0;
        return;
    }
    ++pass_skipped;
    if (++skipped_in_row >= max_skipped)
        throw Error(std::to_string(skipped_in_row) + " training batches in a row had a non-finite loss or "
                        "gradient (the last: " + step_text(step) + ")",
                    "train.max_skipped is " + std::to_string(max_skipped) +
                        "; lower the optimiser's lr or set clip_norm; the last good checkpoint is kept");
}

namespace {

// "stage 'rnn' (lstm, graphs/char_lm.yaml:7:3)"
std::string stage_text(const StageDef& def) {
    return "stage '" + def.id + "' (" + def.type + ", " + def.loc.str() + ")";
}

}  // namespace

Error nonfinite_error(const StageDef& def, const std::string& what, float v, const StepInfo& step,
                      const std::string& note) {
    return Error(stage_text(def) + ": " + nonfinite_word(v) + " " + what + " at " + step_text(step) + note,
                 "lower the optimiser's lr or set clip_norm; train.nonfinite: skip_batch skips such "
                 "batches; the last good checkpoint is kept");
}

Error nonfinite_loss_error(const StageDef& def, const StepInfo& step) {
    return Error(stage_text(def) + " gave a non-finite loss at " + step_text(step),
                 "lower the optimiser's lr or set clip_norm; the last good checkpoint is kept");
}

Error nonfinite_gradient_error(const StepInfo& step) {
    return Error("a non-finite gradient at " + step_text(step), "lower the optimiser's lr or set clip_norm");
}

}  // namespace rnnflow
