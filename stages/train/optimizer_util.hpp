// Pieces the optimisers (sgd, adam, rmsprop, adagrad) share: the learning-rate schedule,
// global-norm clipping, the parameters that describe them, and per-parameter state. Not a stage.
#pragma once

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages::optim {

using Attached = std::vector<std::pair<std::string, Param*>>;

// lr, clip_norm, lr_decay and decay_after, documented once for both optimisers.
inline StageSchema& add_common_params(StageSchema& s, double lr_default) {
    return s
        .param_float("lr", lr_default, Range{1e-12, 100}, "learning rate (before decay)")
        .param_float("clip_norm", 0.0, Range{0, 1e6},
                     "rescale all gradients together so their global L2 norm is at most this; "
                     "0: no clipping")
        .param_float("lr_decay", 1.0, Range{1e-12, 1},
                     "multiply the learning rate by this once per epoch from epoch decay_after on")
        .param_int("decay_after", 0, Range{0, 1e6},
                   "epochs at the full rate: epoch e (0-based) uses lr * lr_decay^max(0, e + 1 - "
                   "decay_after); 0: never decay");
}

struct Schedule {
    double lr;
    double lr_decay;
    std::int64_t decay_after;
    double at(std::int64_t epoch) const {
        if (decay_after <= 0) return lr;
        const std::int64_t k = std::max<std::int64_t>(0, epoch + 1 - decay_after);
        return lr * std::pow(lr_decay, static_cast<double>(k));
    }
};

// Σ g² of n floats (pipeline/core/tensor.hpp: parallel, independent of the thread count).
using rnnflow::sum_squares;

// L2 norm of every trainable gradient, in attach order, accumulated in double. Each param's Σ g² is the engine's (grad_sumsq, computed with the same function) when known.
inline double global_norm(const Attached& params) {
    double s = 0;
    for (const auto& [name, p] : params) {
        if (!p->trainable) continue;
        s += p->grad_sumsq >= 0 ? p->grad_sumsq : grad_sum_squares(*p);
    }
    return std::sqrt(s);
}

// The factor gradients are multiplied by: clip_norm / norm when clipping bites, else 1.
inline float clip_scale(double norm, double clip_norm, const std::string& type) {
    RNNFLOW_CHECK(std::isfinite(norm), type, ": gradient norm is ", norm,
                  " (NaN or inf in a gradient); lower lr or set clip_norm");
    if (clip_norm > 0 && norm > clip_norm) return static_cast<float>(clip_norm / norm);
    return 1.f;
}

// Check params after attach and shape one state tensor per trainable param.
inline void check_attached(const Attached& params, const std::string& type) {
    for (const auto& [name, p] : params) {
        RNNFLOW_CHECK(p != nullptr, type, ": parameter '", name, "' is null");
        RNNFLOW_CHECK(p->value.shape() == p->grad.shape(), type, ": parameter '", name,
                      "' has value ", shape_str(p->value.shape()), " but gradient ",
                      shape_str(p->grad.shape()));
    }
}

// Restore named checkpoint tensors into `dst`: every one must exist with the same dtype and
// shape, checked for all before any is copied (a failed load changes nothing).
inline void restore(const std::map<std::string, Tensor>& state,
                    const std::vector<std::pair<std::string, Tensor*>>& dst, const std::string& type) {
    for (const auto& [key, t] : dst) {
        auto it = state.find(key);
        RNNFLOW_CHECK(it != state.end(), type, ": optimiser state has no '", key, "'");
        RNNFLOW_CHECK(it->second.shape() == t->shape() && it->second.dtype() == t->dtype(), type,
                      ": optimiser state '", key, "' is ", to_string(it->second.dtype()), " ",
                      shape_str(it->second.shape()), ", expected ", to_string(t->dtype()), " ",
                      shape_str(t->shape()));
    }
    for (const auto& [key, t] : dst) *t = state.at(key);
}

// One state tensor per trainable parameter (an empty tensor for a frozen one), saved in the
// checkpoint as "<param><suffix>" (e.g. "embed.weight.square_avg").
struct PerParam {
    std::string suffix;
    std::vector<Tensor> t;  // per attached param, in attach order

    void shape_like(const Attached& params, float init) {
        t.clear();
        for (const auto& [name, p] : params) {
            t.push_back(p->trainable ? Tensor::f32(p->value.shape()) : Tensor());
            if (init != 0.f && !t.back().empty())
                std::fill_n(t.back().data<float>(), t.back().numel(), init);
        }
    }
    void list(const Attached& params, std::vector<std::pair<std::string, const Tensor*>>& out) const {
        for (std::size_t i = 0; i < params.size(); ++i)
            if (!t[i].empty()) out.emplace_back(params[i].first + suffix, &t[i]);
    }
    void targets(const Attached& params, std::vector<std::pair<std::string, Tensor*>>& out) {
        for (std::size_t i = 0; i < params.size(); ++i)
            if (!t[i].empty()) out.emplace_back(params[i].first + suffix, &t[i]);
    }
};

// After an update: a trainable param's gradient is released (zeroed, or left stale for a stage
// that overwrites it); a frozen one's is cleared.
inline void finish_grad(Param& p) {
    if (p.trainable) {
        release_grad(p);
    } else {
        p.grad.zero();
        p.grad_rows.clear();
    }
}

// The frame of an optimiser with one state tensor per parameter and an elementwise update
// (rmsprop, adagrad): the schedule, clipping, frozen parameters, released gradients and the
// state in checkpoints; the class gives `update`, the rule for n elements of one parameter.
class OneStateOptimizer : public OptimizerStage {
public:
    void attach(std::vector<std::pair<std::string, Param*>> params) override {
        check_attached(params, type_);
        params_ = std::move(params);
        state_.shape_like(params_, init_);
    }
    void begin_epoch(std::int64_t epoch) override { lr_ = schedule_.at(epoch); }
    double learning_rate() const override { return lr_; }
    double step(const StepInfo&) override {
        const double norm = global_norm(params_);
        const float scale = clip_scale(norm, clip_norm_, type_);
        for (std::size_t i = 0; i < params_.size(); ++i) {
            Param& p = *params_[i].second;
            if (p.trainable)
                update(p.value.data<float>(), p.grad.data<float>(), state_.t[i].data<float>(), p.grad.numel(), scale,
                       static_cast<float>(lr_));
            finish_grad(p);
        }
        return norm;
    }
    std::vector<std::pair<std::string, const Tensor*>> state() const override {
        std::vector<std::pair<std::string, const Tensor*>> s;
        state_.list(params_, s);
        return s;
    }
    void load_state(const std::map<std::string, Tensor>& state) override {
        std::vector<std::pair<std::string, Tensor*>> dst;
        state_.targets(params_, dst);
        restore(state, dst, type_);
    }

protected:
    // `type`: the stage type for messages; the state is saved as "<param><suffix>", starting at `init`.
    OneStateOptimizer(const Params& p, std::string type, std::string suffix, float init)
        : schedule_{p.get_float("lr"), p.get_float("lr_decay"), p.get_int("decay_after")},
          clip_norm_(p.get_float("clip_norm")), lr_(schedule_.at(0)), type_(std::move(type)),
          init_(init), state_{std::move(suffix), {}} {}
    // w (n), its gradient g (n) before clipping, its state s (n); the clipping factor, the rate.
    virtual void update(float* w, const float* g, float* s, std::int64_t n, float scale, float lr) const = 0;

private:
    Schedule schedule_;
    double clip_norm_, lr_;
    std::string type_;
    float init_;
    Attached params_;
    PerParam state_;
};

}  // namespace rnnflow::stages::optim
