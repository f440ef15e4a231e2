#include <catch2/catch.hpp>

#include <omp.h>

#include <vector>

#include "pipeline/core/tensor.hpp"

using namespace rnnflow;

TEST_CASE("tensor: zero-filled, aligned, deep copies", "[core]") {
    Tensor a = Tensor::f32({2, 3});
    REQUIRE(a.numel() == 6);
    REQUIRE(reinterpret_cast<std::uintptr_t>(a.raw()) % 64 == 0);
    for (int i = 0; i < 6; ++i) REQUIRE(a.data<float>()[i] == 0.f);
    a.data<float>()[4] = 3.f;
    Tensor b = a;
    b.data<float>()[4] = 5.f;
    REQUIRE(a.data<float>()[4] == 3.f);
    REQUIRE_THROWS_WITH(a.data<std::int32_t>(), "tensor holds f32, accessed as i32");
}

TEST_CASE("tensor: resize keeps the allocation when it fits", "[core]") {
    Tensor a = Tensor::i32({10, 4});
    const void* p = a.raw();
    a.resize({5, 4});
    REQUIRE(a.raw() == p);
    REQUIRE(a.shape() == Shape{5, 4});
    a.lengths = {5, 3, 2, 1};
    REQUIRE(a.length(1) == 3);
}

TEST_CASE("tensor: copies of an empty tensor stay empty", "[core]") {
    Tensor empty;
    Tensor copy = empty;
    REQUIRE(copy.numel() == 0);
    REQUIRE(copy.raw() == nullptr);
    std::vector<Tensor> many;
    many.assign(3, Tensor());
    REQUIRE(many[2].empty());
    Tensor full = Tensor::f32({2});
    full = empty;
    REQUIRE(full.empty());
}

TEST_CASE("tensor: release_grad leaves an overwritten gradient stale, zeroes the others; settle_grad zeroes stale ones", "[core]") {
    auto param = [](Shape shape) {
        Param p;
        p.value = Tensor::f32(shape);
        p.grad = Tensor::f32(shape);
        for (std::int64_t i = 0; i < p.grad.numel(); ++i) p.grad.data<float>()[i] = float(i + 1);
        return p;
    };
    Param plain = param({2, 3});
    release_grad(plain);
    REQUIRE_FALSE(plain.grad_stale);
    for (std::int64_t i = 0; i < 6; ++i) REQUIRE(plain.grad.data<float>()[i] == 0.f);

    Param over = param({2, 3});
    over.overwrites_grad = true;
    release_grad(over);
    REQUIRE(over.grad_stale);
    REQUIRE(over.grad.data<float>()[5] == 6.f);  // not cleared: its stage writes it next
    settle_grad(over);
    REQUIRE_FALSE(over.grad_stale);
    for (std::int64_t i = 0; i < 6; ++i) REQUIRE(over.grad.data<float>()[i] == 0.f);
    over.grad.data<float>()[0] = 3.f;
    settle_grad(over);  // not stale: left alone
    REQUIRE(over.grad.data<float>()[0] == 3.f);

    Param sparse = param({3, 2});  // row-sparse: only listed rows are cleared (the rest is zero by contract)
    sparse.sparse_rows = true;
    sparse.overwrites_grad = true;  // ignored for a row-sparse gradient
    sparse.grad_rows = {0, 2};
    release_grad(sparse);
    REQUIRE_FALSE(sparse.grad_stale);
    REQUIRE(sparse.grad_rows.empty());
    const std::vector<float> want{0, 0, 3, 4, 0, 0};
    for (std::int64_t i = 0; i < 6; ++i) REQUIRE(sparse.grad.data<float>()[i] == want[static_cast<std::size_t>(i)]);
}

TEST_CASE("tensor: zero clears large tensors in pieces, every byte", "[core]") {
    // Sizes around the 1 MiB piece, one not a multiple of it (nor of 64 bytes).
    for (const std::int64_t n : {std::int64_t{262144}, std::int64_t{262145}, std::int64_t{3 * 262144 + 13}}) {
        Tensor t = Tensor::f32({n});
        float* p = t.data<float>();
        for (std::int64_t i = 0; i < n; ++i) p[i] = 1.f + static_cast<float>(i % 7);
        t.zero();
        std::int64_t nonzero = 0;
        for (std::int64_t i = 0; i < n; ++i) nonzero += p[i] != 0.f;
        REQUIRE(nonzero == 0);
    }
}

TEST_CASE("tensor: sum_squares is exact to double rounding, the same for any thread count", "[core]") {
    // Lengths around the 32 lanes and the 32768-element chunks.
    for (const std::int64_t n : {std::int64_t{0}, std::int64_t{1}, std::int64_t{31}, std::int64_t{32},
                                 std::int64_t{33}, std::int64_t{1000}, std::int64_t{3 * 32768 + 17}}) {
        std::vector<float> g(static_cast<std::size_t>(n));
        long double want = 0;
        for (std::int64_t i = 0; i < n; ++i) {
            g[static_cast<std::size_t>(i)] = static_cast<float>((i * 7919) % 2001 - 1000) / 997.f;
            want += static_cast<long double>(g[static_cast<std::size_t>(i)]) * g[static_cast<std::size_t>(i)];
        }
        const int threads = omp_get_max_threads();
        omp_set_num_threads(1);
        const double one = sum_squares(g.data(), n);
        omp_set_num_threads(2);
        const double two = sum_squares(g.data(), n);
        omp_set_num_threads(threads);
        REQUIRE(one == two);
        REQUIRE(one == Approx(static_cast<double>(want)).epsilon(1e-14));
    }
}
