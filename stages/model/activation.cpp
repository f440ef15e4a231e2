#include "activation.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <numbers>

namespace rnnflow::stages {

StageSchema Activation::schema() {
    return StageSchema("activation", "elementwise nonlinearity: relu, leaky_relu, tanh, sigmoid, gelu",
                       Role::model)
        .input("in", PortType::tensor, "activations (T, N, C) + lengths")
        .output("out", PortType::tensor, "f(in) (T, N, C) + the same lengths; 0 at padded steps")
        .param_choice("function", "relu", {"relu", "leaky_relu", "tanh", "sigmoid", "gelu"},
                      "f: relu max(x, 0); leaky_relu x or slope * x; tanh; sigmoid 1 / (1 + e^-x); "
                      "gelu x Φ(x) (exact erf form)")
        .param_float("slope", 0.01, Range{0, 1}, "leaky_relu: f(x) = slope * x for x <= 0")
        .differentiable()
        .details("out = f(in) per element at valid steps, 0 at padded steps (also where f(0) is "
                 "not 0). Backward: diff_in = diff_out * f'(x); relu 1 where out > 0 (0 at x = 0), "
                 "leaky_relu 1 or slope, tanh 1 - out^2, sigmoid out (1 - out), gelu Φ(x) + x φ(x). "
                 "sigmoid takes the form whose exp cannot overflow; gelu is not the tanh "
                 "approximation. Put it between `linear` stages for an MLP head. Ref: Nair & Hinton "
                 "2010; Maas et al. 2013; Hendrycks & Gimpel 2016. Not supported: learned slopes "
                 "(PReLU), softmax.");
}

namespace {

using Function = Activation::Function;

Function function_named(const std::string& name) {
    if (name == "relu") return Function::relu;
    if (name == "leaky_relu") return Function::leaky_relu;
    if (name == "tanh") return Function::tanh;
    if (name == "sigmoid") return Function::sigmoid;
    RNNFLOW_ASSERT(name == "gelu");  // the schema's choices
    return Function::gelu;
}

// Each function's f(x) and, next to it, f'(x) from x and y = f(x): the forward and backward of
// the stage, element by element. `slope` is leaky_relu's.
struct Relu {
    static float f(float x, float) { return std::max(x, 0.f); }  // NaN stays NaN
    static float df(float, float y, float) { return y > 0 ? 1.f : 0.f; }
};
struct LeakyRelu {
    static float f(float x, float slope) { return x > 0 ? x : slope * x; }
    static float df(float x, float, float slope) { return x > 0 ? 1.f : slope; }
};
struct Tanh {
    static float f(float x, float) { return std::tanh(x); }
    // (1 - y)(1 + y), not 1 - y²: 1 - y is exact for y in [0.5, 1] (Sterbenz), so the derivative
    // keeps its relative precision where it is small.
    static float df(float, float y, float) { return (1.f - y) * (1.f + y); }
};
struct Sigmoid {
    static float f(float x, float) {
        if (x >= 0) return 1.f / (1.f + std::exp(-x));
        const float e = std::exp(x);  // x < 0 (or NaN): e in (0, 1), no overflow
        return e / (1.f + e);
    }
    static float df(float, float y, float) { return y * (1.f - y); }
};
struct Gelu {
    static constexpr float kInvSqrt2 = static_cast<float>(1 / std::numbers::sqrt2);
    static constexpr float kInvSqrt2Pi = static_cast<float>(std::numbers::inv_sqrtpi / std::numbers::sqrt2);
    static float cdf(float x) { return 0.5f * std::erfc(-x * kInvSqrt2); }  // Φ(x)
    static float f(float x, float) { return x * cdf(x); }
    static float df(float x, float, float) { return cdf(x) + x * kInvSqrt2Pi * std::exp(-0.5f * x * x); }
};

// For each element e of the time-major (T, N, C) batch `like` at a valid step: element(F{}, e),
// F the struct of function f; dst's rows at padded steps get 0. Rows run in parallel; every
// element is computed alone, so the numbers do not depend on the thread count.
template <class Element>
void each_valid_element(Function f, const Tensor& like, std::int64_t C, float* dst, Element element) {
    const auto run = [&](auto fn) {
        const std::int64_t T = like.dim(0), N = like.dim(1), rows = T * N;
#pragma omp parallel for schedule(static) if (rows * C > (std::int64_t{1} << 15))
        for (std::int64_t i = 0; i < rows; ++i) {
            if (i / N >= like.length(i % N)) std::fill_n(dst + i * C, C, 0.f);
            else for (std::int64_t e = i * C; e < (i + 1) * C; ++e) element(fn, e);
        }
    };
    switch (f) {
    case Function::relu: return run(Relu{});
    case Function::leaky_relu: return run(LeakyRelu{});
    case Function::tanh: return run(Tanh{});
    case Function::sigmoid: return run(Sigmoid{});
    case Function::gelu: return run(Gelu{});
    }
    RNNFLOW_ASSERT(false);
}

}  // namespace

Activation::Activation(const Params& p)
    : function_(function_named(p.get_string("function"))),
      slope_(static_cast<float>(p.get_float("slope"))) {}

void Activation::prepare(PrepareContext& ctx) {
    channels_ = ctx.input_info("in").channels;
    RNNFLOW_CHECK(channels_ > 0, "activation needs the channel count of input 'in', got ", channels_);
    PortInfo out;
    out.type = PortType::tensor;
    out.channels = channels_;
    ctx.set_output_info("out", out);
}

void Activation::forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) {
    (void)saved; (void)step;
    const Tensor& x = in.at("in");  // (T, N, C)
    RNNFLOW_ASSERT(channels_ > 0);  // prepare ran
    RNNFLOW_CHECK(x.dtype() == DType::f32 && x.rank() == 3 && x.dim(2) == channels_,
                  "activation: input 'in' must be f32 (T, N, ", channels_, "), got ",
                  to_string(x.dtype()), " ", shape_str(x.shape()));
    const std::int64_t T = x.dim(0), N = x.dim(1), C = channels_;
    RNNFLOW_CHECK(x.lengths.empty() || std::ssize(x.lengths) == N, "activation: input 'in' has ",
                  x.lengths.size(), " lengths for ", N, " batch columns");
    Tensor& y = out.at("out");  // (T, N, C)
    y.resize(DType::f32, {T, N, C});
    y.lengths = x.lengths;
    const float* px = x.data<float>();
    float* py = y.data<float>();
    const float slope = slope_;
    each_valid_element(function_, x, C, py, [&](auto fn, std::int64_t e) {
        py[e] = decltype(fn)::f(px[e], slope);
    });
}

void Activation::backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                          Grads& diff_src, const StepInfo& step) {
    (void)saved; (void)step;
    if (!diff_src.has("in")) return;
    const Tensor& x = in.at("in");           // (T, N, C)
    const Tensor& y = out.at("out");         // (T, N, C), forward's
    const Tensor& dy = diff_dst.at("out");   // (T, N, C)
    const std::int64_t T = x.dim(0), N = x.dim(1), C = channels_;
    RNNFLOW_ASSERT(y.numel() == T * N * C && dy.numel() == T * N * C);
    Tensor& dx = diff_src.at("in");
    dx.resize(DType::f32, {T, N, C});
    dx.lengths = x.lengths;
    const float* px = x.data<float>();
    const float* py = y.data<float>();
    const float* pdy = dy.data<float>();
    float* pdx = dx.data<float>();
    const float slope = slope_;
    each_valid_element(function_, x, C, pdx, [&](auto fn, std::int64_t e) {
        pdx[e] = pdy[e] * decltype(fn)::df(px[e], py[e], slope);
    });
}

}  // namespace rnnflow::stages
