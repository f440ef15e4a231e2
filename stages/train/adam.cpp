#include "adam.hpp"

namespace rnnflow::stages {

StageSchema Adam::schema() {
    StageSchema s("adam", "Adam with bias correction and decoupled weight decay (AdamW)",
                  Role::optimizer);
    s.input("minimize", PortType::loss, "the loss whose upstream parameters this updates");
    optim::add_common_params(s, 1e-3);
    s.param_float("beta1", 0.9, Range{0, 0.9999}, "decay of the first-moment (mean) estimate")
        .param_float("beta2", 0.999, Range{0, 0.99999999},
                     "decay of the second-moment (uncentred variance) estimate")
        .param_float("eps", 1e-8, Range{1e-12, 1}, "added to sqrt(v̂) so the step stays bounded")
        .param_float("weight_decay", 0.0, Range{0, 1},
                     "decoupled decay (AdamW): w -= lr · weight_decay · w each step, outside the "
                     "moment estimates")
        .details("m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; w -= lr_e (wd w + m̂ / (sqrt(v̂) + eps)) "
                 "with m̂ = m / (1 - b1^k), v̂ = v / (1 - b2^k). Gradients clipped by global norm first. "
                 "Not supported: AMSGrad, L2-in-gradient decay.");
    return s;
}

Adam::Adam(const Params& p)
    : schedule_{p.get_float("lr"), p.get_float("lr_decay"), p.get_int("decay_after")},
      beta1_(p.get_float("beta1")), beta2_(p.get_float("beta2")), eps_(p.get_float("eps")),
      weight_decay_(p.get_float("weight_decay")), clip_norm_(p.get_float("clip_norm")),
      lr_(schedule_.at(0)) {}

void Adam::attach(std::vector<std::pair<std::string, Param*>> params) {
    optim::check_attached(params, "adam");
    params_ = std::move(params);
    m_.clear();
    v_.clear();
    for (const auto& [name, p] : params_) {
        m_.push_back(p->trainable ? Tensor::f32(p->value.shape()) : Tensor());
        v_.push_back(p->trainable ? Tensor::f32(p->value.shape()) : Tensor());
    }
    step_.data<std::int32_t>()[0] = 0;
}

void Adam::begin_epoch(std::int64_t epoch) { lr_ = schedule_.at(epoch); }

double Adam::step(const StepInfo& step) {
    (void)step;
    const double norm = optim::global_norm(params_);
    const float scale = optim::clip_scale(norm, clip_norm_, "adam");
    std::int32_t& k = step_.data<std::int32_t>()[0];
    ++k;
    // Bias corrections in double; folded into one step size and one eps (same result as
    // dividing m and v separately: m̂/(sqrt(v̂)+eps) = (m/c1) / (sqrt(v)/sqrt(c2) + eps)).
    const double c1 = 1.0 - std::pow(beta1_, k), c2 = 1.0 - std::pow(beta2_, k);
    const float b1 = static_cast<float>(beta1_), b2 = static_cast<float>(beta2_);
    const float step_size = static_cast<float>(lr_ * std::sqrt(c2) / c1);
    const float eps_hat = static_cast<float>(eps_ * std::sqrt(c2));
    const float decay = static_cast<float>(1.0 - lr_ * weight_decay_);
    for (std::size_t i = 0; i < params_.size(); ++i) {
        Param& p = *params_[i].second;
        float* g = p.grad.data<float>();
        const std::int64_t n = p.grad.numel();
        if (p.trainable) {
            float* w = p.value.data<float>();
            float* m = m_[i].data<float>();
            float* v = v_[i].data<float>();
            // Elementwise: in parallel (OpenMP) when large, the same result for any thread count.
#pragma omp parallel for schedule(static) if (n > (std::int64_t{1} << 15))
            for (std::int64_t e = 0; e < n; ++e) {
                const float ge = scale * g[e];
                m[e] = b1 * m[e] + (1.f - b1) * ge;
                v[e] = b2 * v[e] + (1.f - b2) * ge * ge;
                w[e] = decay * w[e] - step_size * m[e] / (std::sqrt(v[e]) + eps_hat);
            }
        }
        if (p.trainable) {
            release_grad(p);  // zeroed, or left stale for a stage that overwrites it
        } else {
            p.grad.zero();
            p.grad_rows.clear();
        }
    }
    return norm;
}

std::vector<std::pair<std::string, const Tensor*>> Adam::state() const {
    std::vector<std::pair<std::string, const Tensor*>> s;
    for (std::size_t i = 0; i < params_.size(); ++i)
        if (!m_[i].empty()) {
            s.emplace_back(params_[i].first + ".m", &m_[i]);
            s.emplace_back(params_[i].first + ".v", &v_[i]);
        }
    s.emplace_back("step", &step_);
    return s;
}

void Adam::load_state(const std::map<std::string, Tensor>& state) {
    std::vector<std::pair<std::string, Tensor*>> dst;
    for (std::size_t i = 0; i < params_.size(); ++i)
        if (!m_[i].empty()) {
            dst.emplace_back(params_[i].first + ".m", &m_[i]);
            dst.emplace_back(params_[i].first + ".v", &v_[i]);
        }
    dst.emplace_back("step", &step_);
    optim::restore(state, dst, "adam");
}

}  // namespace rnnflow::stages
