#include "rmsprop.hpp"

namespace rnnflow::stages {

StageSchema Rmsprop::schema() {
    StageSchema s("rmsprop", "RMSprop: steps divided by a running RMS of the gradient",
                  Role::optimizer);
    s.input("minimize", PortType::loss, "the loss whose upstream parameters this updates");
    optim::add_common_params(s, 1e-2);
    s.param_float("alpha", 0.99, Range{0, 0.9999},
                  "decay rate of the running average of g² (PyTorch's alpha, Keras' rho)")
        .param_float("eps", 1e-8, Range{1e-12, 1},
                     "added to sqrt(v), outside the root as in PyTorch, so the step stays bounded")
        .param_float("weight_decay", 0.0, Range{0, 1},
                     "L2 penalty: weight_decay · w is added to the gradient after clipping")
        .details("v = alpha v + (1-alpha) g^2; w -= lr_e g / (sqrt(v) + eps), v from 0 without "
                 "bias correction (PyTorch's RMSprop; TensorFlow 1 puts eps inside the root). "
                 "Gradients clipped by global norm first. Chung et al. (2014) compared GRU and LSTM "
                 "trained with RMSprop. Not supported: momentum, centred RMSprop.");
    return s;
}

Rmsprop::Rmsprop(const Params& p)
    : OneStateOptimizer(p, "rmsprop", ".square_avg", 0.f), alpha_(static_cast<float>(p.get_float("alpha"))),
      eps_(static_cast<float>(p.get_float("eps"))), weight_decay_(static_cast<float>(p.get_float("weight_decay"))) {}

void Rmsprop::update(float* w, const float* g, float* v, std::int64_t n, float scale, float lr) const {
    const float a = alpha_, eps = eps_, wd = weight_decay_;
    // Elementwise: in parallel (OpenMP) when large, the same result for any thread count.
#pragma omp parallel for schedule(static) if (n > (std::int64_t{1} << 15))
    for (std::int64_t e = 0; e < n; ++e) {
        const float ge = scale * g[e] + wd * w[e];
        v[e] = a * v[e] + (1.f - a) * ge * ge;
        w[e] -= lr * ge / (std::sqrt(v[e]) + eps);
    }
}

}  // namespace rnnflow::stages
