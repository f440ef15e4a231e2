// rmsprop: RMSprop (Tieleman & Hinton 2012) with L2 weight decay, clipping and a step schedule.
//
// Per step over the params attached (in attach order):
//   norm = ||g||₂ over all trainable gradients (double)            returned, before clipping
//   g    = g · min(1, clip_norm / norm)                             when clip_norm > 0
//   g    = g + weight_decay · w                                     L2 in the gradient
//   v    = alpha · v + (1 - alpha) · g²                             v starts at 0
//   w    = w - lr_e · g / (sqrt(v) + eps)
//   grad = 0
// lr_e = lr · lr_decay^max(0, e + 1 - decay_after) for epoch e (0-based) when decay_after > 0.
// Convention: PyTorch's torch.optim.RMSprop (centered=False, momentum=0): eps is added *outside*
// the square root and v starts at zero (no bias correction, so the first steps are larger than
// lr: step 1 moves by lr / sqrt(1 - alpha)). TensorFlow 1's RMSPropOptimizer adds eps inside the
// root (g / sqrt(v + eps)); with eps = 1e-8 the two differ only where v is ~1e-16 or smaller.
// Weight decay as PyTorch's, added to the gradient (then scaled per element like it).
// Chung et al., "Empirical Evaluation of Gated Recurrent Neural Networks on Sequence Modeling"
// (2014) trained their GRU/LSTM comparison with RMSprop.
// Ref: Tieleman & Hinton, Coursera "Neural Networks for Machine Learning", lecture 6e (2012).
// Port: minimize  loss (2).
// State: "<param>.square_avg" per trainable param (v).
// Not supported: momentum, the centred variant (Graves 2013), decoupled weight decay.
#pragma once

#include "optimizer_util.hpp"

namespace rnnflow::stages {

class Rmsprop final : public optim::OneStateOptimizer {
public:
    static StageSchema schema();
    explicit Rmsprop(const Params& p);

private:
    void update(float* w, const float* g, float* v, std::int64_t n, float scale, float lr) const override;
    float alpha_, eps_, weight_decay_;
};

}  // namespace rnnflow::stages
