// The attention_decoder stage's training step (forward + backward, diff w.r.t. memory and state)
// on its two paths, and its decoding, on a date-task-like shape.
//
// Rows: whole-sequence path (no input feeding, teacher forcing 1), step-by-step path forced by
// input feeding, step-by-step path forced by scheduled sampling (teacher_forcing 0.9); then
// greedy and beam-5 decoding (evaluate phase: teacher-forced logits + decoding). Memory and
// state are random, as from a bidirectional encoder with hidden/2 per direction. Median of the
// repetitions after 2 warm-up steps, wall and process CPU time (on a shared machine the CPU time
// with 1 thread is the steadier figure).
//
// Usage: attention_decoder_bench [threads=2] [repetitions=20] [N=64] [Ts=30] [Tt=11] [V=40]
//                                [hidden=128] [cell=lstm] [attention=general]
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "stages/model/attention_decoder.hpp"
#include "tests/support/harness.hpp"

using namespace rnnflow;
using Clock = std::chrono::steady_clock;

namespace {

std::shared_ptr<const Vocabulary> vocab_of(std::int64_t V) {
    std::vector<std::string> tokens{"<pad>", "<unk>", "<sos>", "<eos>"};
    for (std::int64_t i = 4; i < V; ++i) tokens.push_back(std::to_string(i));
    return std::make_shared<const Vocabulary>(tokens, std::vector<std::int64_t>(tokens.size(), 1),
                                              std::vector<std::string>{"<pad>", "<unk>", "<sos>", "<eos>"},
                                              TokenizerSpec{});
}

struct Shape5 {
    std::int64_t N, Ts, Tt, V, H;
};

// Process CPU time in ms (all threads): less disturbed than wall time on a shared machine.
double cpu_ms() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) * 1e-6;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

struct Timing {
    double wall, cpu;
};

Timing run(const Shape5& s, const std::string& cell, const std::string& attention, bool feed, double tf,
           const std::string& decode, Phase phase, int reps) {
    const StageSchema schema = stages::AttentionDecoder::schema();
    Params p = default_params(schema);
    p.set("cell", cell);
    p.set("hidden", s.H);
    p.set("attention", attention);
    p.set("input_feeding", feed);
    p.set("teacher_forcing", tf);
    p.set("decode", decode);
    p.set("beam", std::int64_t(5));
    p.set("max_len_ratio", 0.0);
    p.set("max_len_offset", s.Tt);
    stages::AttentionDecoder dec(p);
    test::FakePrepare ctx(schema);
    const std::int64_t E = s.H, He = s.H / 2;
    const auto vocab = vocab_of(s.V);
    ctx.info("memory", PortInfo{PortType::tensor, E, -1, nullptr});
    ctx.info("state", PortInfo{PortType::state, He, -1, nullptr});
    ctx.info("target_in", PortInfo{PortType::ids, -1, s.V, vocab});
    dec.prepare(ctx);

    std::mt19937 g(1);
    std::uniform_real_distribution<float> u(-0.5f, 0.5f);
    std::uniform_int_distribution<int> tok(4, int(s.V) - 1), src_len(int(s.Ts) * 2 / 3, int(s.Ts));
    Tensor mem = Tensor::f32({s.Ts, s.N, E}), st = Tensor::f32({2, 2, s.N, He}), tgt = Tensor::i32({s.Tt, s.N});
    for (std::int64_t e = 0; e < mem.numel(); ++e) mem.data<float>()[e] = u(g);
    for (std::int64_t e = 0; e < st.numel(); ++e) st.data<float>()[e] = u(g);
    mem.lengths.resize(std::size_t(s.N));
    tgt.lengths.assign(std::size_t(s.N), std::int32_t(s.Tt));
    for (std::int64_t n = 0; n < s.N; ++n) {
        mem.lengths[std::size_t(n)] = src_len(g);
        for (std::int64_t t = 0; t < s.Tt; ++t) tgt.data<std::int32_t>()[t * s.N + n] = t == 0 ? 2 : tok(g);
    }
    Tensor logits, hyp, attn, dmem, dst, dlog = Tensor::f32({s.Tt, s.N, s.V}), dattn;
    for (std::int64_t e = 0; e < dlog.numel(); ++e) dlog.data<float>()[e] = u(g) * 1e-2f;
    Saved saved;
    StepInfo step;
    step.phase = phase;
    std::vector<double> ms, cpu;
    for (int r = 0; r < reps + 2; ++r) {
        const auto t0 = Clock::now();
        const double c0 = cpu_ms();
        for (auto& q : dec.params()) q.grad.zero();
        auto in = test::make_inputs(schema, {&mem, &st, &tgt});
        auto out = test::make_outputs(schema, {&logits, &hyp, &attn});
        dec.forward(in, out, saved, step);
        if (phase == Phase::train) {
            dattn = Tensor::f32(attn.shape());
            auto dd = test::make_diff_dst(schema, {&dlog, nullptr, &dattn});
            auto ds = test::make_diff_src(schema, {&dmem, &dst, nullptr});
            dec.backward(in, out, saved, dd, ds, step);
        }
        if (r >= 2) {
            ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
            cpu.push_back(cpu_ms() - c0);
        }
    }
    return {median(ms), median(cpu)};
}

}  // namespace

int main(int argc, char** argv) {
    auto arg = [&](int i, long def) { return argc > i ? std::atol(argv[i]) : def; };
    const int threads = int(arg(1, 2)), reps = int(arg(2, 20));
    const Shape5 s{arg(3, 64), arg(4, 30), arg(5, 11), arg(6, 40), arg(7, 128)};
    const std::string cell = argc > 8 ? argv[8] : "lstm", attention = argc > 9 ? argv[9] : "general";
    omp_set_num_threads(threads);
    std::printf("attention_decoder %s/%s, N %ld Ts %ld Tt %ld V %ld hidden %ld, %d threads, median of %d\n",
                cell.c_str(), attention.c_str(), long(s.N), long(s.Ts), long(s.Tt), long(s.V), long(s.H),
                threads, reps);
    const double tokens = double(s.N * s.Tt);
    std::printf("| step | wall ms | CPU ms (all threads) | target tokens/s (wall) |\n| --- | --- | --- | --- |\n");
    auto row = [&](const char* what, Timing t) {
        std::printf("| %s | %.2f | %.2f | %.0f |\n", what, t.wall, t.cpu, tokens / t.wall * 1e3);
    };
    row("train, whole sequence (no input feeding, teacher forcing 1)",
        run(s, cell, attention, false, 1.0, "greedy", Phase::train, reps));
    row("train, step by step (input feeding)", run(s, cell, attention, true, 1.0, "greedy", Phase::train, reps));
    row("train, step by step (teacher_forcing 0.9)",
        run(s, cell, attention, false, 0.9, "greedy", Phase::train, reps));
    row("evaluate: teacher-forced logits + greedy decoding",
        run(s, cell, attention, false, 1.0, "greedy", Phase::evaluate, reps));
    row("evaluate: teacher-forced logits + beam 5 decoding",
        run(s, cell, attention, false, 1.0, "beam", Phase::evaluate, reps));
    return 0;
}
