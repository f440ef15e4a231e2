// The machine's fp32 matrix-multiply ceiling as oneDNN reaches it: GFLOP/s of oneDNN matmul on
// square shapes and on the shapes of the PTB language models' output projection (forward,
// backward-data and backward-weights; the weight product both through a transposed view of the
// input and on the transposed copy the linear stage now makes) and of the LSTMs' products,
// median of the repetitions after 2 warm-ups.
//
// Usage: matmul_ceiling [threads=2] [repetitions=10]
// Prints a table; the last line, "CEILING gflops", is the best of the rows (what
// bench/ptb_lm.sh divides by).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "pipeline/core/onednn.hpp"

using Clock = std::chrono::steady_clock;
using md = dnnl::memory::desc;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

namespace {

struct Shape {
    std::string name;
    std::int64_t M, K, N;
    bool a_t, b_t;  // operand given transposed (read through a strided view)
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

dnnl::memory filled(const md& d, std::mt19937& g) {
    dnnl::memory m(d, rnnflow::cpu_engine());
    auto* p = static_cast<float*>(m.get_data_handle());
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    for (std::size_t i = 0; i < d.get_size() / sizeof(float); ++i) p[i] = u(g);
    return m;
}

}  // namespace

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    const int reps = argc > 2 ? std::max(1, std::atoi(argv[2])) : 10;
    omp_set_num_threads(threads);
    const std::vector<Shape> shapes = {
        {"square 1024", 1024, 1024, 1024, false, false},
        {"square 2048", 2048, 2048, 2048, false, false},
        {"small proj fwd (TN x H)(H x V)", 400, 200, 10000, false, false},
        {"small proj bwd data (TN x V)(V x H)", 400, 10000, 200, false, true},
        {"small proj bwd weights (H x TN)(TN x V)", 200, 400, 10000, true, false},
        {"medium proj fwd", 700, 650, 10000, false, false},
        {"medium proj bwd data", 700, 10000, 650, false, true},
        {"medium proj bwd weights", 650, 700, 10000, true, false},
        {"small proj bwd weights, in^T copied first", 200, 400, 10000, false, false},
        {"medium proj bwd weights, in^T copied first", 650, 700, 10000, false, false},
        // The LSTM's products: per time step (N = 20 rows) forward h·W_hh and backward
        // dgates·W_hhᵀ, and the whole sequence's input product; what a hand-made LSTM on
        // matmuls would run (bench/README.md, issue 9).
        {"small LSTM step fwd (N x H)(H x 4H)", 20, 200, 800, false, false},
        {"small LSTM step bwd (N x 4H)(4H x H)", 20, 800, 200, false, true},
        {"medium LSTM step fwd", 20, 650, 2600, false, false},
        {"medium LSTM step bwd", 20, 2600, 650, false, true},
        {"medium LSTM layer input (TN x H)(H x 4H)", 700, 650, 2600, false, false},
    };
    std::mt19937 g(1);
    auto& eng = rnnflow::cpu_engine();
    dnnl::stream s(eng);
    double best = 0;
    std::printf("oneDNN fp32 matmul, %d threads, median of %d\n", threads, reps);
    std::printf("%-42s %6s %6s %6s %9s %9s\n", "shape", "M", "K", "N", "ms", "GFLOP/s");
    for (const auto& sh : shapes) {
        const md a_md({sh.M, sh.K}, dt::f32, sh.a_t ? tag::ba : tag::ab);
        const md b_md({sh.K, sh.N}, dt::f32, sh.b_t ? tag::ba : tag::ab);
        const md c_md({sh.M, sh.N}, dt::f32, tag::ab);
        const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), eng);
        dnnl::matmul mm(pd);
        auto a = filled(a_md, g), b = filled(b_md, g), c = filled(c_md, g);
        std::vector<double> ms;
        for (int r = 0; r < reps + 2; ++r) {
            const auto t0 = Clock::now();
            mm.execute(s, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
            s.wait();
            if (r >= 2) ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        }
        const double t = median(ms);
        const double gflops = 2.0 * double(sh.M) * double(sh.K) * double(sh.N) / (t * 1e6);
        best = std::max(best, gflops);
        std::printf("%-42s %6lld %6lld %6lld %9.3f %9.1f\n", sh.name.c_str(), static_cast<long long>(sh.M),
                    static_cast<long long>(sh.K), static_cast<long long>(sh.N), t, gflops);
    }
    std::printf("CEILING %.1f\n", best);
    return 0;
}
