// binary_cross_entropy: sigmoid + binary cross-entropy per unit, for multi-label frames (the
// notes of a piano roll):
//   loss = (Σ_{valid (t, n)} Σ_p ℓ(x[t, n, p], y[t, n, p]), number of valid (t, n))
//   ℓ(x, y) = -y log σ(x) - (1 - y) log(1 - σ(x)) = max(x, 0) - x y + log(1 + e^-|x|)
// so the objective sum / count is the negative log-likelihood per time step (nats, summed over
// the units of a frame, averaged over frames) that the polyphonic-music papers report
// (Boulanger-Lewandowski et al. 2012; Chung et al. 2014).
//
// Ports:  logits  tensor f32 (T, N, P) + lengths, unnormalised: the sigmoid is applied here
//         target  tensor f32 (T, N, P) + lengths, values in [0, 1] (0/1 for note sets; soft
//                 targets allowed); a step (t, n) is valid when t < length(n) of `target`
//         loss    loss   f32 (2) = (sum over valid steps and units, valid steps)
// The second form of ℓ never overflows (no exp of a positive number) and keeps log σ(x) exact
// for large |x|. Row sums in double, added in row order (independent of threads).
// Backward: diff_logits = diff_loss[0] · (σ(x) - y) at valid steps, 0 at padding; diff_target
//   (when something upstream asks for it) = diff_loss[0] · (-x) at valid steps. diff_loss[1]
//   multiplies the count, a constant: ignored.
// Not supported: per-unit weights (pos_weight), label smoothing, targets outside [0, 1].
#pragma once

#include <algorithm>
#include <cmath>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

// ℓ(x, y) above, in double: shared with frame_metrics so the metric and the loss agree.
inline double binary_cross_entropy_unit(double x, double y) {
    return std::max(x, 0.0) - x * y + std::log1p(std::exp(-std::abs(x)));
}
// σ(x) without overflow for either sign.
inline float stable_sigmoid(float x) {
    if (x >= 0) return 1.f / (1.f + std::exp(-x));
    const float e = std::exp(x);
    return e / (1.f + e);
}

class BinaryCrossEntropy final : public ModelStage {
public:
    static StageSchema schema();
    explicit BinaryCrossEntropy(const Params& p);

    void prepare(PrepareContext& ctx) override;
    void forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) override;
    void backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                  Grads& diff_src, const StepInfo& step) override;

private:
    std::vector<double> row_loss_;  // per row (t, n) of the last forward (kept: no allocation)
};

}  // namespace rnnflow::stages
