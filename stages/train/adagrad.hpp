// adagrad: AdaGrad (Duchi, Hazan & Singer 2011) with L2 weight decay, clipping and a step schedule.
//
// Per step over the params attached (in attach order):
//   norm = ||g||₂ over all trainable gradients (double)            returned, before clipping
//   g    = g · min(1, clip_norm / norm)                             when clip_norm > 0
//   g    = g + weight_decay · w                                     L2 in the gradient
//   s    = s + g²                                                   s starts at initial_accumulator
//   w    = w - lr_e · g / (sqrt(s) + eps)
//   grad = 0
// lr_e = lr · lr_decay^max(0, e + 1 - decay_after) for epoch e (0-based) when decay_after > 0
// (per epoch, as for every rnnflow optimiser; PyTorch's Adagrad lr_decay is a per-step 1/(1 + k·d)).
// Convention: PyTorch's torch.optim.Adagrad: eps added *outside* the square root (default 1e-10),
// weight decay added to the gradient. Every weight's step shrinks as its squared gradients add up.
// Ref: Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and Stochastic
// Optimization", JMLR 12 (2011).
// Port: minimize  loss (2).
// State: "<param>.sum" per trainable param (s).
// Not supported: row-sparse updates (a row-sparse gradient is applied densely; its zero rows
// leave s and w unchanged), decoupled weight decay, per-step lr decay.
#pragma once

#include "optimizer_util.hpp"

namespace rnnflow::stages {

class Adagrad final : public optim::OneStateOptimizer {
public:
    static StageSchema schema();
    explicit Adagrad(const Params& p);

private:
    void update(float* w, const float* g, float* s, std::int64_t n, float scale, float lr) const override;
    float eps_, weight_decay_;
};

}  // namespace rnnflow::stages
