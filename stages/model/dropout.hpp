// dropout: zero each activation with probability p in training, scale the kept ones by
// 1/(1-p) (inverted dropout); the identity in evaluation and prediction.
//
// Ports:  in   tensor f32 (T, N, C) + lengths
//         out  tensor f32 (T, N, C) + the same lengths; 0 at padded steps
// The mask of element (t, n, c) is a hash of (the stage's seed, epoch, batch, element), so runs
// repeat exactly and backward finds the same mask. Backward: diff_in = mask * diff_out.
// Ref: Srivastava et al. 2014. Not supported: variational (per-sequence) masks.
#pragma once

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class Dropout final : public ModelStage {
public:
    static StageSchema schema();
    explicit Dropout(const Params& p);

    void prepare(PrepareContext& ctx) override;
    void forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) override;
    void backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                  Grads& diff_src, const StepInfo& step) override;

private:
    // Multiplies rows [0, T*N) of width C by the mask (0 or 1/(1-p)); padded steps get 0.
    void apply(const float* src, float* dst, const Tensor& x, const StepInfo& step) const;
    double p_;
    std::int64_t channels_ = -1;
    std::uint64_t seed_ = 0;
};

}  // namespace rnnflow::stages
