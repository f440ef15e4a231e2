#include <catch2/catch.hpp>

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
