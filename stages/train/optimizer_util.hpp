// Pieces sgd and adam share: the learning-rate schedule, global-norm clipping and the
// parameters that describe them. Not a stage.
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

}  // namespace rnnflow::stages::optim
