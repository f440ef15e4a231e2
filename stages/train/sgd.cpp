#include "sgd.hpp"

#include "pipeline/core/cpu.hpp"

namespace rnnflow::stages {

constexpr std::int64_t kParallelFrom = 1 << 15;  // smaller parameters: one thread

StageSchema Sgd::schema() {
    StageSchema s("sgd", "stochastic gradient descent (momentum, weight decay, clipping)",
                  Role::optimizer);
    s.input("minimize", PortType::loss, "the loss whose upstream parameters this updates");
    optim::add_common_params(s, 1.0);
    s.param_float("momentum", 0.0, Range{0, 0.999}, "heavy-ball momentum; 0: plain SGD")
        .param_float("weight_decay", 0.0, Range{0, 1},
                     "L2 penalty: weight_decay · w is added to the gradient after clipping")
        .details("w -= lr_e · (momentum buffer of) (clipped g + weight_decay · w); "
                 "lr_e = lr · lr_decay^max(0, e + 1 - decay_after). "
                 "Not supported: Nesterov momentum, dampening, per-parameter rates.");
    return s;
}

namespace {

// The dense update, compiled twice (pipeline/core/cpu.hpp): for AVX-512 and for the baseline,
// rounding alike. Large parameters are split over the OpenMP team. `zero`: clear the gradient
// in the same pass (else it is left stale: Param::overwrites_grad).
#define RNNFLOW_SGD_KERNELS(SUFFIX, ATTR)                                                          \
    ATTR void plain_##SUFFIX(float* __restrict w, float* __restrict g, std::int64_t n, float lr,  \
                             float scale, float wd, bool zero) {                                   \
        _Pragma("omp parallel for schedule(static) if (n > kParallelFrom)")                        \
        for (std::int64_t k = 0; k < n; ++k) {                                                     \
            w[k] -= lr * (scale * g[k] + wd * w[k]);                                               \
            if (zero) g[k] = 0.f;                                                                  \
        }                                                                                          \
    }                                                                                              \
    ATTR void momentum_##SUFFIX(float* __restrict w, float* __restrict g, float* __restrict buf,  \
                                std::int64_t n, float lr, float scale, float wd, float mu,        \
                                bool zero) {                                                      \
        _Pragma("omp parallel for schedule(static) if (n > kParallelFrom)")                        \
        for (std::int64_t k = 0; k < n; ++k) {                                                     \
            const float gk = scale * g[k] + wd * w[k];                                             \
            buf[k] = mu * buf[k] + gk;                                                             \
            w[k] -= lr * buf[k];                                                                   \
            if (zero) g[k] = 0.f;                                                                  \
        }                                                                                          \
    }
#ifdef RNNFLOW_AVX512
RNNFLOW_SGD_KERNELS(avx512, RNNFLOW_AVX512_TARGET)
#endif
RNNFLOW_SGD_KERNELS(base, )
#undef RNNFLOW_SGD_KERNELS

}  // namespace

Sgd::Sgd(const Params& p)
    : schedule_{p.get_float("lr"), p.get_float("lr_decay"), p.get_int("decay_after")},
      momentum_(p.get_float("momentum")), weight_decay_(p.get_float("weight_decay")),
      clip_norm_(p.get_float("clip_norm")), lr_(schedule_.at(0)) {}

void Sgd::attach(std::vector<std::pair<std::string, Param*>> params) {
    optim::check_attached(params, "sgd");
    params_ = std::move(params);
    momentum_buf_.clear();
    for (const auto& [name, p] : params_)
        momentum_buf_.push_back(momentum_ > 0 && p->trainable ? Tensor::f32(p->value.shape()) : Tensor());
}

void Sgd::begin_epoch(std::int64_t epoch) { lr_ = schedule_.at(epoch); }

double Sgd::step(const StepInfo& step) {
    (void)step;
    const double norm = optim::global_norm(params_);
    const float scale = optim::clip_scale(norm, clip_norm_, "sgd");
    const float lr = static_cast<float>(lr_), mu = static_cast<float>(momentum_);
    const float wd = static_cast<float>(weight_decay_);
    for (std::size_t i = 0; i < params_.size(); ++i) {
        Param& p = *params_[i].second;
        float* __restrict g = p.grad.data<float>();
        const std::int64_t n = p.grad.numel();
        if (!p.trainable) {
            p.grad.zero();
            p.grad_rows.clear();
            continue;
        }
        // A row-sparse gradient without momentum or weight decay changes only its listed rows:
        // the same update as the dense pass, visiting only those rows.
        if (p.sparse_rows && momentum_ == 0 && weight_decay_ == 0 && p.grad.rank() > 0) {
            float* __restrict w = p.value.data<float>();
            const std::int64_t width = n / std::max<std::int64_t>(p.grad.dim(0), 1);
            const auto rows = static_cast<std::int64_t>(p.grad_rows.size());
            const std::int64_t* r = p.grad_rows.data();
#pragma omp parallel for schedule(static) if (rows * width > kParallelFrom)
            for (std::int64_t k = 0; k < rows; ++k) {
                float* __restrict wr = w + r[k] * width;
                float* __restrict gr = g + r[k] * width;
                for (std::int64_t c = 0; c < width; ++c) {
                    wr[c] -= lr * (scale * gr[c]);
                    gr[c] = 0.f;
                }
            }
            p.grad_rows.clear();
            continue;
        }
        // One pass per parameter: update and zero the gradient (or leave it stale when its stage
        // overwrites it: Param::overwrites_grad); elementwise, so in parallel (OpenMP) when
        // large, with the same result for any number of threads.
        const bool stale = leaves_grad_stale(p);
        if (momentum_ > 0)
            RNNFLOW_PICK_KERNEL(momentum)(p.value.data<float>(), g, momentum_buf_[i].data<float>(), n, lr, scale,
                                          wd, mu, !stale);
        else
            RNNFLOW_PICK_KERNEL(plain)(p.value.data<float>(), g, n, lr, scale, wd, !stale);
        p.grad_stale = stale;
        p.grad_rows.clear();
    }
    return norm;
}

std::vector<std::pair<std::string, const Tensor*>> Sgd::state() const {
    std::vector<std::pair<std::string, const Tensor*>> s;
    for (std::size_t i = 0; i < params_.size(); ++i)
        if (!momentum_buf_[i].empty()) s.emplace_back(params_[i].first + ".momentum", &momentum_buf_[i]);
    return s;
}

void Sgd::load_state(const std::map<std::string, Tensor>& state) {
    std::vector<std::pair<std::string, Tensor*>> dst;
    for (std::size_t i = 0; i < params_.size(); ++i)
        if (!momentum_buf_[i].empty()) dst.emplace_back(params_[i].first + ".momentum", &momentum_buf_[i]);
    optim::restore(state, dst, "sgd");
}

}  // namespace rnnflow::stages
