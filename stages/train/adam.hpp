// adam: bias-corrected Adam with decoupled weight decay (AdamW), clipping and a step schedule.
//
// Per step k = 1, 2, ... over the params attached (in attach order):
//   norm = ||g||₂ over all trainable gradients (double)            returned, before clipping
//   g    = g · min(1, clip_norm / norm)                             when clip_norm > 0
//   m    = beta1 · m + (1 - beta1) · g
//   v    = beta2 · v + (1 - beta2) · g²
//   w    = w - lr_e · weight_decay · w                              decoupled (AdamW), not L2
//   w    = w - lr_e · (m / (1 - beta1^k)) / (sqrt(v / (1 - beta2^k)) + eps)
//   grad = 0
// lr_e = lr · lr_decay^max(0, e + 1 - decay_after) for epoch e (0-based) when decay_after > 0.
// Decoupled decay was chosen because with L2-in-the-gradient Adam's per-element scaling makes
// the penalty weaker for weights with large gradients (Loshchilov & Hutter, "Decoupled Weight
// Decay Regularization", 2019); PyTorch's AdamW computes the same update.
// Ref: Kingma & Ba, "Adam: A Method for Stochastic Optimization" (2015).
// Port: minimize  loss (2).
// State: "<param>.m", "<param>.v" per trainable param, "step" i32 (1) = k of the last step.
// Not supported: AMSGrad, L2-in-gradient weight decay, per-parameter learning rates.
#pragma once

#include "optimizer_util.hpp"

namespace rnnflow::stages {

class Adam final : public OptimizerStage {
public:
    static StageSchema schema();
    explicit Adam(const Params& p);

    void attach(std::vector<std::pair<std::string, Param*>> params) override;
    void begin_epoch(std::int64_t epoch) override;
    double step(const StepInfo& step) override;
    double learning_rate() const override { return lr_; }
    std::vector<std::pair<std::string, const Tensor*>> state() const override;
    void load_state(const std::map<std::string, Tensor>& state) override;

private:
    optim::Schedule schedule_;
    double beta1_, beta2_, eps_, weight_decay_, clip_norm_;
    double lr_;
    optim::Attached params_;
    std::vector<Tensor> m_, v_;  // per attached param; empty tensors for frozen params
    Tensor step_ = Tensor::i32({1});  // steps taken
};

}  // namespace rnnflow::stages
