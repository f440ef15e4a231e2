// What the lstm stage costs over raw oneDNN doing the same training step.
//
// Per shape, one step = zero the weight gradients, forward_training per layer, then per layer
// (last first) reorder weights into the backward layout and run backward. The stage adds its
// own work around the primitives: zero output at padded steps, diff_dst copy, explicit zero
// initial state, handle binding. Both sides alternate per repetition (a shared machine drifts);
// the median of the repetitions after warm-up is printed, with GFLOP/s counted as
// 3 x forward GEMM flops (forward 2*T*N*4H*(C_l + H) per layer; backward about twice that).
//
// Usage: lstm_overhead [threads=2] [repetitions=7]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "pipeline/core/onednn.hpp"
#include "stages/model/lstm.hpp"
#include "tests/support/harness.hpp"

using namespace rnnflow;
using Clock = std::chrono::steady_clock;
using md = dnnl::memory::desc;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

namespace {

struct Shape3 {
    std::int64_t T, N, C, H, L;
};

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

void fill(float* p, std::size_t n, std::mt19937& g) {
    std::uniform_real_distribution<float> u(-0.1f, 0.1f);
    for (std::size_t i = 0; i < n; ++i) p[i] = u(g);
}

dnnl::memory alloc(const md& d, std::mt19937& g, bool random) {
    dnnl::memory m(d, cpu_engine());
    if (random) fill(static_cast<float*>(m.get_data_handle()), d.get_size() / 4, g);
    else std::memset(m.get_data_handle(), 0, d.get_size());
    return m;
}

// The same step written directly against oneDNN, weights kept in the forward layout.
class Raw {
public:
    explicit Raw(const Shape3& s) : s_(s), stream_(cpu_engine()) {
        std::mt19937 g(1);
        const auto T = s.T, N = s.N, H = s.H;
        const auto attr = user_scratchpad_attr();
        std::size_t scratch = 0;
        layers_.resize(static_cast<std::size_t>(s.L));
        for (std::int64_t l = 0; l < s.L; ++l) {
            Layer& y = layers_[static_cast<std::size_t>(l)];
            const std::int64_t in = l == 0 ? s.C : H;
            const md src({T, N, in}, dt::f32, tag::tnc), dst({T, N, H}, dt::f32, tag::tnc);
            const md it({1, 1, N, H}, dt::f32, tag::ldnc), bias({1, 1, 4, H}, dt::f32, tag::ldgo);
            const md wl({1, 1, in, 4, H}, dt::f32, tag::any), wi({1, 1, H, 4, H}, dt::f32, tag::any);
            const dnnl::lstm_forward::desc fd(dnnl::prop_kind::forward_training,
                                              dnnl::rnn_direction::unidirectional_left2right, src,
                                              it, it, wl, wi, bias, dst, it, it);
            const dnnl::lstm_forward::primitive_desc fpd(fd, attr, cpu_engine());
            const dnnl::lstm_backward::desc bd(dnnl::prop_kind::backward,
                                               dnnl::rnn_direction::unidirectional_left2right, src,
                                               it, it, wl, wi, bias, dst, it, it, src, it, it, wl,
                                               wi, bias, dst, it, it);
            const dnnl::lstm_backward::primitive_desc bpd(bd, attr, cpu_engine(), fpd);
            y.fwd = dnnl::lstm_forward(fpd);
            y.bwd = dnnl::lstm_backward(bpd);
            y.src = l == 0 ? alloc(src, g, true) : layers_[static_cast<std::size_t>(l - 1)].dst;
            y.dst = alloc(dst, g, false);
            y.h0 = alloc(it, g, false);
            y.c0 = alloc(it, g, false);
            y.hT = alloc(it, g, false);
            y.cT = alloc(it, g, false);
            y.wl = alloc(fpd.weights_layer_desc(), g, true);
            y.wi = alloc(fpd.weights_iter_desc(), g, true);
            y.bias = alloc(bias, g, true);
            y.ws = alloc(fpd.workspace_desc(), g, false);
            y.wl_b = alloc(bpd.weights_layer_desc(), g, false);
            y.wi_b = alloc(bpd.weights_iter_desc(), g, false);
            const dnnl::reorder::primitive_desc rl(cpu_engine(), y.wl.get_desc(), cpu_engine(),
                                                   y.wl_b.get_desc(), attr);
            const dnnl::reorder::primitive_desc ri(cpu_engine(), y.wi.get_desc(), cpu_engine(),
                                                   y.wi_b.get_desc(), attr);
            y.to_bwd_wl = dnnl::reorder(rl);
            y.to_bwd_wi = dnnl::reorder(ri);
            y.dsrc = alloc(src, g, false);
            if (l == s.L - 1) y.ddst = alloc(dst, g, true);  // lower layers: set below
            y.dwl = alloc(bpd.diff_weights_layer_desc(), g, false);
            y.dwi = alloc(bpd.diff_weights_iter_desc(), g, false);
            y.dbias = alloc(bias, g, false);
            y.dh0 = alloc(it, g, false);
            y.dc0 = alloc(it, g, false);
            y.dhT = alloc(it, g, false);
            y.dcT = alloc(it, g, false);
            for (auto sz : {fpd.scratchpad_desc().get_size(), bpd.scratchpad_desc().get_size(),
                            rl.scratchpad_desc().get_size(), ri.scratchpad_desc().get_size()})
                scratch = std::max(scratch, sz);
            y.fs = fpd.scratchpad_desc();
            y.bs = bpd.scratchpad_desc();
            y.rls = rl.scratchpad_desc();
            y.ris = ri.scratchpad_desc();
        }
        scratch_.resize(scratch / 4 + 16);
        for (std::size_t l = 1; l < layers_.size(); ++l) layers_[l - 1].ddst = layers_[l].dsrc;
    }

    void step() {
        void* sp = scratch_.data();
        auto pad = [&](const md& d) { return dnnl::memory(d, cpu_engine(), sp); };
        for (auto& y : layers_)
            for (auto* m : {&y.dwl, &y.dwi, &y.dbias})
                std::memset(m->get_data_handle(), 0, m->get_desc().get_size());
        for (auto& y : layers_)
            y.fwd.execute(stream_, {{DNNL_ARG_SRC_LAYER, y.src}, {DNNL_ARG_SRC_ITER, y.h0},
                                    {DNNL_ARG_SRC_ITER_C, y.c0}, {DNNL_ARG_WEIGHTS_LAYER, y.wl},
                                    {DNNL_ARG_WEIGHTS_ITER, y.wi}, {DNNL_ARG_BIAS, y.bias},
                                    {DNNL_ARG_DST_LAYER, y.dst}, {DNNL_ARG_DST_ITER, y.hT},
                                    {DNNL_ARG_DST_ITER_C, y.cT}, {DNNL_ARG_WORKSPACE, y.ws},
                                    {DNNL_ARG_SCRATCHPAD, pad(y.fs)}});
        for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) {
            auto& y = *it;
            y.to_bwd_wl.execute(stream_, {{DNNL_ARG_FROM, y.wl}, {DNNL_ARG_TO, y.wl_b},
                                          {DNNL_ARG_SCRATCHPAD, pad(y.rls)}});
            y.to_bwd_wi.execute(stream_, {{DNNL_ARG_FROM, y.wi}, {DNNL_ARG_TO, y.wi_b},
                                          {DNNL_ARG_SCRATCHPAD, pad(y.ris)}});
            y.bwd.execute(stream_, {{DNNL_ARG_SRC_LAYER, y.src}, {DNNL_ARG_SRC_ITER, y.h0},
                                    {DNNL_ARG_SRC_ITER_C, y.c0}, {DNNL_ARG_WEIGHTS_LAYER, y.wl_b},
                                    {DNNL_ARG_WEIGHTS_ITER, y.wi_b}, {DNNL_ARG_BIAS, y.bias},
                                    {DNNL_ARG_DST_LAYER, y.dst}, {DNNL_ARG_DST_ITER, y.hT},
                                    {DNNL_ARG_DST_ITER_C, y.cT}, {DNNL_ARG_WORKSPACE, y.ws},
                                    {DNNL_ARG_DIFF_SRC_LAYER, y.dsrc}, {DNNL_ARG_DIFF_SRC_ITER, y.dh0},
                                    {DNNL_ARG_DIFF_SRC_ITER_C, y.dc0},
                                    {DNNL_ARG_DIFF_WEIGHTS_LAYER, y.dwl},
                                    {DNNL_ARG_DIFF_WEIGHTS_ITER, y.dwi}, {DNNL_ARG_DIFF_BIAS, y.dbias},
                                    {DNNL_ARG_DIFF_DST_LAYER, y.ddst}, {DNNL_ARG_DIFF_DST_ITER, y.dhT},
                                    {DNNL_ARG_DIFF_DST_ITER_C, y.dcT}, {DNNL_ARG_SCRATCHPAD, pad(y.bs)}});
        }
        stream_.wait();
    }

private:
    struct Layer {
        dnnl::lstm_forward fwd;
        dnnl::lstm_backward bwd;
        dnnl::reorder to_bwd_wl, to_bwd_wi;
        dnnl::memory src, dst, h0, c0, hT, cT, wl, wi, bias, ws, wl_b, wi_b;
        dnnl::memory dsrc, ddst, dwl, dwi, dbias, dh0, dc0, dhT, dcT;
        md fs, bs, rls, ris;
    };
    Shape3 s_;
    dnnl::stream stream_;
    std::vector<Layer> layers_;
    std::vector<float> scratch_;
};

// The stage driven as the engine drives it: grads zeroed (the optimiser's part), forward, backward.
class StageRun {
public:
    explicit StageRun(const Shape3& s)
        : schema_(stages::Lstm::schema()), lstm_(make_params(s)), x_(Tensor::f32({s.T, s.N, s.C})),
          dy_(Tensor::f32({s.T, s.N, s.H})) {
        test::FakePrepare ctx(schema_);
        ctx.info("in", PortInfo{PortType::tensor, s.C, -1, nullptr});
        lstm_.prepare(ctx);
        std::mt19937 g(2);
        fill(x_.data<float>(), static_cast<std::size_t>(x_.numel()), g);
        fill(dy_.data<float>(), static_cast<std::size_t>(dy_.numel()), g);
    }
    void step() {
        for (auto& p : lstm_.params()) p.grad.zero();
        auto in = test::make_inputs(schema_, {&x_});
        auto out = test::make_outputs(schema_, {&y_});
        auto ddst = test::make_diff_dst(schema_, {&dy_});
        auto dsrc = test::make_diff_src(schema_, {&dx_});
        lstm_.forward(in, out, saved_, step_);
        lstm_.backward(in, out, saved_, ddst, dsrc, step_);
    }

private:
    static Params make_params(const Shape3& s) {
        Params p = default_params(stages::Lstm::schema());
        p.set("hidden", s.H);
        p.set("layers", s.L);
        return p;
    }
    StageSchema schema_;
    stages::Lstm lstm_;
    Tensor x_, y_, dy_, dx_;
    Saved saved_;
    StepInfo step_;
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    const int reps = std::max(5, argc > 2 ? std::atoi(argv[2]) : 7);
    omp_set_num_threads(threads);
    std::printf("lstm stage vs raw oneDNN, fwd+bwd per step, %d threads, median of %d after 2 warm-up\n",
                threads, reps);
    std::printf("%-24s %9s %9s %9s %11s %9s\n", "shape", "stage ms", "raw ms", "overhead",
                "stage GF/s", "raw GF/s");
    const Shape3 shapes[] = {{20, 20, 200, 200, 2}, {50, 64, 512, 512, 1}, {64, 32, 64, 256, 2}};
    for (const auto& s : shapes) {
        StageRun stage(s);
        Raw raw(s);
        for (int w = 0; w < 2; ++w) {
            stage.step();
            raw.step();
        }
        std::vector<double> ts, tr;
        for (int r = 0; r < reps; ++r) {
            auto t0 = Clock::now();
            stage.step();
            ts.push_back(ms_since(t0));
            t0 = Clock::now();
            raw.step();
            tr.push_back(ms_since(t0));
        }
        double flops = 0;
        for (std::int64_t l = 0; l < s.L; ++l)
            flops += 3.0 * 2.0 * double(s.T * s.N * 4 * s.H) * double((l == 0 ? s.C : s.H) + s.H);
        const double ms = median(ts), mr = median(tr);
        char name[64];
        std::snprintf(name, sizeof name, "T%lld N%lld %lld->%lld L%lld", (long long)s.T,
                      (long long)s.N, (long long)s.C, (long long)s.H, (long long)s.L);
        std::printf("%-24s %9.2f %9.2f %8.3fx %11.1f %9.1f\n", name, ms, mr, ms / mr,
                    flops / (ms * 1e6), flops / (mr * 1e6));
    }
    return 0;
}
