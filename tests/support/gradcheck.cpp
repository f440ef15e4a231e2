#include "gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

#include "harness.hpp"

namespace rnnflow::test {

Params params_for(const StageSchema& s, const std::map<std::string, ParamValue>& set) {
    Params p = default_params(s);
    for (const auto& [k, v] : set) {
        const ParamSpec* spec = s.find_param(k);
        RNNFLOW_CHECK(spec != nullptr, "test sets unknown parameter '", k, "' of ", s.type());
        const std::string err = StageSchema::check(*spec, v);
        RNNFLOW_CHECK(err.empty(), "test parameter '", k, "' ", err);
        p.set(k, v);
    }
    return p;
}

namespace {

// Is element e of an output tensor at a valid (non-padding) step?
bool valid_element(const Tensor& t, std::int64_t e) {
    if (t.lengths.empty() || t.rank() < 2) return true;
    const std::int64_t per_t = t.numel() / t.dim(0);
    const std::int64_t tt = e / per_t;
    const std::int64_t n = (e % per_t) / (per_t / t.dim(1));
    return tt < t.length(n);
}

struct Runner {
    ModelStage& stage;
    const StageSchema& schema;
    std::vector<Tensor*> inputs;
    const GradCheckOptions& opt;
    std::vector<Tensor> outs;
    std::vector<Tensor> weights;  // per output, same shape
    Saved saved;

    double objective() {
        if (opt.before_forward) opt.before_forward();
        std::vector<const Tensor*> in(inputs.begin(), inputs.end());
        std::vector<Tensor*> out;
        for (auto& o : outs) out.push_back(&o);
        auto ins = make_inputs(schema, in);
        auto outs_args = make_outputs(schema, out);
        stage.forward(ins, outs_args, saved, opt.step);
        double j = 0;
        for (std::size_t o = 0; o < outs.size(); ++o) {
            if (outs[o].dtype() != DType::f32) continue;
            // The first call fixes output shapes before any weights exist.
            if (o >= weights.size() || weights[o].shape() != outs[o].shape()) return std::nan("");
            const float* y = outs[o].data<float>();
            const float* w = weights[o].data<float>();
            for (std::int64_t e = 0; e < outs[o].numel(); ++e) j += double(w[e]) * double(y[e]);
        }
        return j;
    }
};

}  // namespace

GradCheckResult check_gradients(ModelStage& stage, const StageSchema& schema,
                                std::vector<Tensor*> inputs, const GradCheckOptions& opt) {
    inputs.resize(schema.inputs().size(), nullptr);
    Runner r{stage, schema, inputs, opt, std::vector<Tensor>(schema.outputs().size()), {}, {}};
    GradCheckResult res;
    std::ostringstream report;
    int failures = 0;

    // 1. A forward pass fixes output shapes; draw the objective's weights (zero at padding).
    (void)r.objective();
    std::mt19937_64 rng(opt.seed);
    std::uniform_real_distribution<float> uni(-1.f, 1.f);
    r.weights.resize(r.outs.size());
    for (std::size_t o = 0; o < r.outs.size(); ++o) {
        if (r.outs[o].dtype() != DType::f32) continue;
        r.weights[o] = Tensor::f32(r.outs[o].shape());
        float* w = r.weights[o].data<float>();
        for (std::int64_t e = 0; e < r.outs[o].numel(); ++e)
            w[e] = valid_element(r.outs[o], e) ? uni(rng) : 0.f;
    }

    // 2. Analytic gradients: forward again, backward with diff_dst = weights.
    for (auto& p : stage.params()) p.grad.zero();
    (void)r.objective();
    std::vector<Tensor> diff_src(schema.inputs().size());
    std::vector<Tensor*> diff_src_ptr(schema.inputs().size(), nullptr);
    for (std::size_t i = 0; i < schema.inputs().size(); ++i) {
        const bool skip = std::find(opt.no_grad_inputs.begin(), opt.no_grad_inputs.end(),
                                    static_cast<int>(i)) != opt.no_grad_inputs.end();
        if (inputs[i] && inputs[i]->dtype() == DType::f32 && !skip) {
            diff_src[i] = Tensor::f32(inputs[i]->shape());
            diff_src_ptr[i] = &diff_src[i];
        }
    }
    {
        std::vector<const Tensor*> in(inputs.begin(), inputs.end());
        std::vector<Tensor*> out, dd;
        for (auto& o : r.outs) out.push_back(&o);
        for (std::size_t o = 0; o < r.outs.size(); ++o)
            dd.push_back(r.outs[o].dtype() == DType::f32 ? &r.weights[o] : nullptr);
        auto ins = make_inputs(schema, in);
        auto outs_args = make_outputs(schema, out);
        auto ddst = make_diff_dst(schema, dd);
        auto dsrc = make_diff_src(schema, diff_src_ptr);
        stage.backward(ins, outs_args, r.saved, ddst, dsrc, opt.step);
    }

    // 3. Numeric gradients for sampled elements.
    auto check_tensor = [&](const std::string& what, Tensor& x, const Tensor& analytic) {
        const std::int64_t n = x.numel();
        const int k = static_cast<int>(std::min<std::int64_t>(n, opt.samples));
        for (int s = 0; s < k; ++s) {
            const std::int64_t e = (n <= opt.samples) ? s : (s * n) / k + (n / k) / 2;
            float* v = x.data<float>();
            const float keep = v[e];
            v[e] = keep + static_cast<float>(opt.eps);
            const double jp = r.objective();
            v[e] = keep - static_cast<float>(opt.eps);
            const double jm = r.objective();
            v[e] = keep;
            // The step actually taken in float, not the nominal one.
            const double h = (double(keep + float(opt.eps)) - double(keep - float(opt.eps))) / 2;
            const double num = (jp - jm) / (2 * h);
            const double ana = analytic.data<float>()[e];
            const double excess = std::abs(ana - num) - (opt.atol + opt.rtol * std::max(std::abs(ana), std::abs(num)));
            ++res.checked;
            if (!(excess <= 0)) {
                res.ok = false;
                if (failures++ < 20)
                    report << what << "[" << e << "]: analytic " << ana << " numeric " << num << "\n";
            }
            if (excess > res.worst_excess || std::isnan(excess)) res.worst_excess = excess;
        }
    };
    for (std::size_t i = 0; i < schema.inputs().size(); ++i)
        if (diff_src_ptr[i]) check_tensor("d/d input '" + schema.inputs()[i].name + "'", *inputs[i], diff_src[i]);
    for (auto& p : stage.params())
        if (p.trainable) {
            Tensor g = p.grad;  // copy: later forwards must not disturb it
            check_tensor("d/d param '" + p.name + "'", p.value, g);
        }
    (void)r.objective();  // leave the stage as it was
    res.report = report.str();
    return res;
}

}  // namespace rnnflow::test
