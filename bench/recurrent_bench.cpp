// The rnn, lstm and gru stages against the raw oneDNN primitives doing the same training step.
//
// Per cell and shape, one step = zero the weight gradients, forward_training per layer, then per
// layer (last first) reorder the weights into the backward layout and run backward, on
// equal-length batches (the stage's one-chunk path; ragged batches add one call per distinct
// length). The stage adds its own work around the primitives (output copy, diff_dst copy,
// explicit zero state, final state output, handle binding). Both sides alternate per repetition;
// the median after 2 warm-up steps is printed, GFLOP/s counted as 3 x forward GEMM flops
// (forward 2*T*N*G*H*(C_l + H) per layer, G = 4 lstm, 3 gru, 1 rnn). GRU is the lbr_gru
// (PyTorch's), RNN the tanh cell.
//
// Usage: recurrent_bench [threads=2] [repetitions=5] [cells=lstm,gru,rnn]
// Prints a table, and one "RESULT cell T N C H L stage_ms raw_ms gflop" line per row for
// bench/pytorch_rnn.py to join with PyTorch's figures.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "pipeline/core/onednn.hpp"
#include "stages/model/gru.hpp"
#include "stages/model/lstm.hpp"
#include "stages/model/rnn.hpp"
#include "tests/support/harness.hpp"

using namespace rnnflow;
using Clock = std::chrono::steady_clock;
using md = dnnl::memory::desc;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

namespace {

struct Case {
    std::string cell;
    std::int64_t T, N, C, H, L;
};

std::int64_t gates(const std::string& cell) { return cell == "lstm" ? 4 : cell == "gru" ? 3 : 1; }

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

void fill(float* p, std::size_t n, std::mt19937& g) {
    std::uniform_real_distribution<float> u(-0.1f, 0.1f);
    for (std::size_t i = 0; i < n; ++i) p[i] = u(g);
}

dnnl::memory alloc(const md& d, std::mt19937& g, bool random) {
    dnnl::memory m(d, cpu_engine());
    if (d.get_size() == 0) return m;
    if (random) fill(static_cast<float*>(m.get_data_handle()), d.get_size() / 4, g);
    else std::memset(m.get_data_handle(), 0, d.get_size());
    return m;
}

// The same step written directly against oneDNN, one primitive per layer, weights kept in the
// forward layout and reordered into the backward one every step.
class Raw {
public:
    explicit Raw(const Case& s) : stream_(cpu_engine()) {
        std::mt19937 g(1);
        const auto T = s.T, N = s.N, H = s.H, G = gates(s.cell);
        const std::int64_t Gb = G + (s.cell == "gru" ? 1 : 0);
        const bool lstm = s.cell == "lstm";
        const auto attr = user_scratchpad_attr();
        const auto fk = dnnl::prop_kind::forward_training;
        const auto bk = dnnl::prop_kind::backward;
        const auto dir = dnnl::rnn_direction::unidirectional_left2right;
        std::size_t scratch = 0;
        layers_.resize(static_cast<std::size_t>(s.L));
        for (std::int64_t l = 0; l < s.L; ++l) {
            Layer& y = layers_[static_cast<std::size_t>(l)];
            const std::int64_t in = l == 0 ? s.C : H;
            const md src({T, N, in}, dt::f32, tag::tnc), dst({T, N, H}, dt::f32, tag::tnc);
            const md it({1, 1, N, H}, dt::f32, tag::ldnc), bias({1, 1, Gb, H}, dt::f32, tag::ldgo);
            const md wl({1, 1, in, G, H}, dt::f32, tag::any), wi({1, 1, H, G, H}, dt::f32, tag::any);
            const md none;
            const md itc = lstm ? it : none;
            std::unique_ptr<dnnl::primitive_desc_base> fpd, bpd;
            if (lstm) {
                auto f = std::make_unique<dnnl::lstm_forward::primitive_desc>(
                    dnnl::lstm_forward::desc(fk, dir, src, it, it, wl, wi, bias, dst, it, it), attr, cpu_engine());
                auto b = std::make_unique<dnnl::lstm_backward::primitive_desc>(
                    dnnl::lstm_backward::desc(bk, dir, src, it, it, wl, wi, bias, dst, it, it, src, it, it,
                                              wl, wi, bias, dst, it, it), attr, cpu_engine(), *f);
                y.fwd = dnnl::lstm_forward(*f);
                y.bwd = dnnl::lstm_backward(*b);
                fpd = std::move(f);
                bpd = std::move(b);
            } else if (s.cell == "gru") {
                auto f = std::make_unique<dnnl::lbr_gru_forward::primitive_desc>(
                    dnnl::lbr_gru_forward::desc(fk, dir, src, it, wl, wi, bias, dst, it), attr, cpu_engine());
                auto b = std::make_unique<dnnl::lbr_gru_backward::primitive_desc>(
                    dnnl::lbr_gru_backward::desc(bk, dir, src, it, wl, wi, bias, dst, it, src, it, wl, wi,
                                                 bias, dst, it), attr, cpu_engine(), *f);
                y.fwd = dnnl::lbr_gru_forward(*f);
                y.bwd = dnnl::lbr_gru_backward(*b);
                fpd = std::move(f);
                bpd = std::move(b);
            } else {
                const auto act = dnnl::algorithm::eltwise_tanh;
                auto f = std::make_unique<dnnl::vanilla_rnn_forward::primitive_desc>(
                    dnnl::vanilla_rnn_forward::desc(fk, act, dir, src, it, wl, wi, bias, dst, it), attr, cpu_engine());
                auto b = std::make_unique<dnnl::vanilla_rnn_backward::primitive_desc>(
                    dnnl::vanilla_rnn_backward::desc(bk, act, dir, src, it, wl, wi, bias, dst, it, src, it, wl,
                                                     wi, bias, dst, it), attr, cpu_engine(), *f);
                y.fwd = dnnl::vanilla_rnn_forward(*f);
                y.bwd = dnnl::vanilla_rnn_backward(*b);
                fpd = std::move(f);
                bpd = std::move(b);
            }
            auto q = [](const dnnl::primitive_desc_base& pd, int a) {
                return pd.query_md(dnnl::query::exec_arg_md, a);
            };
            y.src = l == 0 ? alloc(src, g, true) : layers_[static_cast<std::size_t>(l - 1)].dst;
            y.dst = alloc(dst, g, false);
            y.h0 = alloc(it, g, false);
            y.c0 = alloc(itc, g, false);
            y.hT = alloc(it, g, false);
            y.cT = alloc(itc, g, false);
            y.wl = alloc(q(*fpd, DNNL_ARG_WEIGHTS_LAYER), g, true);
            y.wi = alloc(q(*fpd, DNNL_ARG_WEIGHTS_ITER), g, true);
            y.bias = alloc(bias, g, true);
            y.ws = alloc(fpd->workspace_desc(), g, false);
            y.wl_b = alloc(q(*bpd, DNNL_ARG_WEIGHTS_LAYER), g, false);
            y.wi_b = alloc(q(*bpd, DNNL_ARG_WEIGHTS_ITER), g, false);
            const dnnl::reorder::primitive_desc rl(cpu_engine(), y.wl.get_desc(), cpu_engine(), y.wl_b.get_desc(), attr);
            const dnnl::reorder::primitive_desc ri(cpu_engine(), y.wi.get_desc(), cpu_engine(), y.wi_b.get_desc(), attr);
            y.to_bwd_wl = dnnl::reorder(rl);
            y.to_bwd_wi = dnnl::reorder(ri);
            y.dsrc = alloc(src, g, false);
            if (l == s.L - 1) y.ddst = alloc(dst, g, true);  // lower layers: set below
            y.dwl = alloc(q(*bpd, DNNL_ARG_DIFF_WEIGHTS_LAYER), g, false);
            y.dwi = alloc(q(*bpd, DNNL_ARG_DIFF_WEIGHTS_ITER), g, false);
            y.dbias = alloc(bias, g, false);
            y.dh0 = alloc(it, g, false);
            y.dc0 = alloc(itc, g, false);
            y.dhT = alloc(it, g, false);
            y.dcT = alloc(itc, g, false);
            for (auto sz : {fpd->scratchpad_desc().get_size(), bpd->scratchpad_desc().get_size(),
                            rl.scratchpad_desc().get_size(), ri.scratchpad_desc().get_size()})
                scratch = std::max(scratch, sz);
            y.fs = fpd->scratchpad_desc();
            y.bs = bpd->scratchpad_desc();
            y.rls = rl.scratchpad_desc();
            y.ris = ri.scratchpad_desc();
            y.lstm = lstm;
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
        for (auto& y : layers_) {
            std::unordered_map<int, dnnl::memory> a{
                {DNNL_ARG_SRC_LAYER, y.src}, {DNNL_ARG_SRC_ITER, y.h0}, {DNNL_ARG_WEIGHTS_LAYER, y.wl},
                {DNNL_ARG_WEIGHTS_ITER, y.wi}, {DNNL_ARG_BIAS, y.bias}, {DNNL_ARG_DST_LAYER, y.dst},
                {DNNL_ARG_DST_ITER, y.hT}, {DNNL_ARG_WORKSPACE, y.ws}, {DNNL_ARG_SCRATCHPAD, pad(y.fs)}};
            if (y.lstm) a.insert({{DNNL_ARG_SRC_ITER_C, y.c0}, {DNNL_ARG_DST_ITER_C, y.cT}});
            y.fwd.execute(stream_, a);
        }
        for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) {
            auto& y = *it;
            y.to_bwd_wl.execute(stream_, {{DNNL_ARG_FROM, y.wl}, {DNNL_ARG_TO, y.wl_b}, {DNNL_ARG_SCRATCHPAD, pad(y.rls)}});
            y.to_bwd_wi.execute(stream_, {{DNNL_ARG_FROM, y.wi}, {DNNL_ARG_TO, y.wi_b}, {DNNL_ARG_SCRATCHPAD, pad(y.ris)}});
            std::unordered_map<int, dnnl::memory> a{
                {DNNL_ARG_SRC_LAYER, y.src}, {DNNL_ARG_SRC_ITER, y.h0}, {DNNL_ARG_WEIGHTS_LAYER, y.wl_b},
                {DNNL_ARG_WEIGHTS_ITER, y.wi_b}, {DNNL_ARG_BIAS, y.bias}, {DNNL_ARG_DST_LAYER, y.dst},
                {DNNL_ARG_DST_ITER, y.hT}, {DNNL_ARG_WORKSPACE, y.ws}, {DNNL_ARG_DIFF_SRC_LAYER, y.dsrc},
                {DNNL_ARG_DIFF_SRC_ITER, y.dh0}, {DNNL_ARG_DIFF_WEIGHTS_LAYER, y.dwl},
                {DNNL_ARG_DIFF_WEIGHTS_ITER, y.dwi}, {DNNL_ARG_DIFF_BIAS, y.dbias},
                {DNNL_ARG_DIFF_DST_LAYER, y.ddst}, {DNNL_ARG_DIFF_DST_ITER, y.dhT},
                {DNNL_ARG_SCRATCHPAD, pad(y.bs)}};
            if (y.lstm)
                a.insert({{DNNL_ARG_SRC_ITER_C, y.c0}, {DNNL_ARG_DST_ITER_C, y.cT},
                          {DNNL_ARG_DIFF_SRC_ITER_C, y.dc0}, {DNNL_ARG_DIFF_DST_ITER_C, y.dcT}});
            y.bwd.execute(stream_, a);
        }
        stream_.wait();
    }

private:
    struct Layer {
        dnnl::primitive fwd, bwd;
        dnnl::reorder to_bwd_wl, to_bwd_wi;
        dnnl::memory src, dst, h0, c0, hT, cT, wl, wi, bias, ws, wl_b, wi_b;
        dnnl::memory dsrc, ddst, dwl, dwi, dbias, dh0, dc0, dhT, dcT;
        md fs, bs, rls, ris;
        bool lstm = false;
    };
    dnnl::stream stream_;
    std::vector<Layer> layers_;
    std::vector<float> scratch_;
};

// The stage driven as the engine drives it: grads zeroed (the optimiser's part), forward,
// backward, with the state output wanted (the engine always gives every output a slot).
class StageRun {
public:
    explicit StageRun(const Case& s)
        : schema_(s.cell == "lstm" ? stages::Lstm::schema() : s.cell == "gru" ? stages::Gru::schema()
                                                                               : stages::Rnn::schema()),
          x_(Tensor::f32({s.T, s.N, s.C})), dy_(Tensor::f32({s.T, s.N, s.H})) {
        Params p = default_params(schema_);
        p.set("hidden", s.H);
        p.set("layers", s.L);
        if (s.cell == "lstm") stage_ = std::make_unique<stages::Lstm>(p);
        else if (s.cell == "gru") stage_ = std::make_unique<stages::Gru>(p);
        else stage_ = std::make_unique<stages::Rnn>(p);
        test::FakePrepare ctx(schema_);
        ctx.info("in", PortInfo{PortType::tensor, s.C, -1, nullptr});
        stage_->prepare(ctx);
        std::mt19937 g(2);
        fill(x_.data<float>(), static_cast<std::size_t>(x_.numel()), g);
        fill(dy_.data<float>(), static_cast<std::size_t>(dy_.numel()), g);
        dstate_ = Tensor::f32(stage_->state_shape(s.N));
    }
    void step() {
        for (auto& p : stage_->params()) p.grad.zero();
        auto in = test::make_inputs(schema_, {&x_});
        auto out = test::make_outputs(schema_, {&y_, &state_});
        auto ddst = test::make_diff_dst(schema_, {&dy_, &dstate_});
        auto dsrc = test::make_diff_src(schema_, {&dx_});
        stage_->forward(in, out, saved_, step_);
        stage_->backward(in, out, saved_, ddst, dsrc, step_);
    }

private:
    StageSchema schema_;
    std::unique_ptr<stages::Recurrent> stage_;
    Tensor x_, y_, state_, dy_, dstate_, dx_;
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
    const int reps = std::max(3, argc > 2 ? std::atoi(argv[2]) : 5);
    const std::string cells = argc > 3 ? argv[3] : "lstm,gru,rnn";
    omp_set_num_threads(threads);
    std::printf("recurrent stages vs raw oneDNN, fwd+bwd per step, %d threads, median of %d after 2 warm-up\n",
                threads, reps);
    std::printf("%-5s %-24s %9s %9s %9s %11s %9s\n", "cell", "shape", "stage ms", "raw ms", "stage/raw",
                "stage GF/s", "raw GF/s");
    const std::int64_t shapes[][4] = {{35, 20, 650, 2}, {20, 20, 200, 2}, {50, 64, 512, 1}};
    for (const std::string cell : {"lstm", "gru", "rnn"}) {
        if (cells.find(cell) == std::string::npos) continue;
        for (const auto& sh : shapes) {
            const Case s{cell, sh[0], sh[1], sh[2], sh[2], sh[3]};
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
                flops += 3.0 * 2.0 * double(s.T * s.N * gates(cell) * s.H) * double((l == 0 ? s.C : s.H) + s.H);
            const double ms = median(ts), mr = median(tr);
            char name[64];
            std::snprintf(name, sizeof name, "T%lld N%lld %lld L%lld", (long long)s.T, (long long)s.N,
                          (long long)s.H, (long long)s.L);
            std::printf("%-5s %-24s %9.2f %9.2f %8.3fx %11.1f %9.1f\n", cell.c_str(), name, ms, mr, ms / mr,
                        flops / (ms * 1e6), flops / (mr * 1e6));
            std::printf("RESULT %s %lld %lld %lld %lld %lld %.3f %.3f %.6f\n", cell.c_str(), (long long)s.T,
                        (long long)s.N, (long long)s.C, (long long)s.H, (long long)s.L, ms, mr, flops / 1e9);
            std::fflush(stdout);
        }
    }
    return 0;
}
