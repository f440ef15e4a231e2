#include "adagrad.hpp"

namespace rnnflow::stages {

StageSchema Adagrad::schema() {
    StageSchema s("adagrad", "AdaGrad: per-weight steps shrinking with the summed squared gradients",
                  Role::optimizer);
    s.input("minimize", PortType::loss, "the loss whose upstream parameters this updates");
    optim::add_common_params(s, 1e-2);
    s.param_float("initial_accumulator", 0.0, Range{0, 100},
                  "starting value of every weight's sum of squared gradients")
        .param_float("eps", 1e-10, Range{1e-12, 1},
                     "added to sqrt(sum), outside the root as in PyTorch, so the step stays bounded")
        .param_float("weight_decay", 0.0, Range{0, 1},
                     "L2 penalty: weight_decay · w is added to the gradient after clipping")
        .details("s += g^2; w -= lr_e g / (sqrt(s) + eps) (PyTorch's Adagrad; lr_decay is per "
                 "epoch as for the other optimisers). Gradients clipped by global norm first.");
    return s;
}

Adagrad::Adagrad(const Params& p)
    : OneStateOptimizer(p, "adagrad", ".sum", static_cast<float>(p.get_float("initial_accumulator"))),
      eps_(static_cast<float>(p.get_float("eps"))), weight_decay_(static_cast<float>(p.get_float("weight_decay"))) {}

void Adagrad::update(float* w, const float* g, float* s, std::int64_t n, float scale, float lr) const {
    const float eps = eps_, wd = weight_decay_;
    // Elementwise: in parallel (OpenMP) when large, the same result for any thread count.
#pragma omp parallel for schedule(static) if (n > (std::int64_t{1} << 15))
    for (std::int64_t e = 0; e < n; ++e) {
        const float ge = scale * g[e] + wd * w[e];
        s[e] += ge * ge;
        w[e] -= lr * ge / (std::sqrt(s[e]) + eps);
    }
}

}  // namespace rnnflow::stages
