// sgd: stochastic gradient descent with momentum, weight decay, clipping and a step schedule.
//
// Per step, over the params attached (in attach order):
//   norm = ||g||₂ over all trainable gradients (double)           returned, before clipping
//   g    = g · min(1, clip_norm / norm)                            when clip_norm > 0
//   g    = g + weight_decay · w                                    (L2, after clipping)
//   buf  = momentum · buf + g;  w = w - lr_e · buf                 when momentum > 0
//   w    = w - lr_e · g                                            otherwise
//   grad = 0
// lr_e = lr · lr_decay^max(0, e + 1 - decay_after) for epoch e (0-based) when decay_after > 0,
// else lr. PTB-style "lr 1 for 4 epochs, then halve": lr 1, lr_decay 0.5, decay_after 4.
// Port: minimize  loss (2) — its producer's upstream params are attached by the engine.
// State: "<param>.momentum" per trainable param when momentum > 0.
// Not supported: Nesterov momentum, dampening, per-parameter learning rates.
#pragma once

#include "optimizer_util.hpp"

namespace rnnflow::stages {

class Sgd final : public OptimizerStage {
public:
    static StageSchema schema();
    explicit Sgd(const Params& p);

    void attach(std::vector<std::pair<std::string, Param*>> params) override;
    void begin_epoch(std::int64_t epoch) override;
    double step(const StepInfo& step) override;
    double learning_rate() const override { return lr_; }
    std::vector<std::pair<std::string, const Tensor*>> state() const override;
    void load_state(const std::map<std::string, Tensor>& state) override;

private:
    optim::Schedule schedule_;
    double momentum_, weight_decay_, clip_norm_;
    double lr_;
    optim::Attached params_;
    std::vector<Tensor> momentum_buf_;  // per attached param; empty tensor when unused
};

}  // namespace rnnflow::stages
