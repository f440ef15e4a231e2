#include "tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

#include "error.hpp"

namespace rnnflow {

const char* to_string(DType d) { return d == DType::f32 ? "f32" : "i32"; }
std::size_t dtype_size(DType) { return 4; }

std::string shape_str(const Shape& s) {
    std::string out = "(";
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i) out += ", ";
        out += std::to_string(s[i]);
    }
    return out + ")";
}

void Tensor::Free::operator()(std::byte* p) const { std::free(p); }

static std::int64_t count(const Shape& s) {
    std::int64_t n = 1;
    for (auto d : s) {
        RNNFLOW_CHECK(d >= 0, "tensor dimension must be >= 0, got ", d, " in ", shape_str(s));
        n *= d;
    }
    return n;
}

Tensor::Tensor(DType dtype, Shape shape) {
    resize(dtype, std::move(shape));
    zero();
}

Tensor::Tensor(const Tensor& other) : lengths(other.lengths) {
    if (!other.ptr_) {  // a default-constructed tensor stays empty (not a rank-0 scalar)
        dtype_ = other.dtype_;
        return;
    }
    resize(other.dtype_, other.shape_);
    if (bytes()) std::memcpy(ptr_.get(), other.ptr_.get(), bytes());
}

Tensor& Tensor::operator=(const Tensor& other) {
    if (this == &other) return *this;
    if (!other.ptr_) {
        *this = Tensor();
        dtype_ = other.dtype_;
        lengths = other.lengths;
        return *this;
    }
    resize(other.dtype_, other.shape_);
    if (bytes()) std::memcpy(ptr_.get(), other.ptr_.get(), bytes());
    lengths = other.lengths;
    return *this;
}

std::int64_t Tensor::dim(int i) const {
    const int r = rank();
    const int k = i < 0 ? r + i : i;
    RNNFLOW_ASSERT(k >= 0 && k < r);
    return shape_[static_cast<std::size_t>(k)];
}

void Tensor::resize(DType dtype, Shape shape) {
    const std::int64_t n = count(shape);
    const std::size_t need = static_cast<std::size_t>(n) * dtype_size(dtype);
    if (need > capacity_) {
        // 64-byte alignment for vector loads and oneDNN; round the size up as aligned_alloc wants.
        const std::size_t alloc = (need + 63) / 64 * 64;
        auto* p = static_cast<std::byte*>(std::aligned_alloc(64, alloc));
        if (!p) throw std::bad_alloc();
        ptr_.reset(p);
        capacity_ = alloc;
    }
    dtype_ = dtype;
    shape_ = std::move(shape);
    numel_ = n;
}

void Tensor::zero() {
    if (bytes()) std::memset(ptr_.get(), 0, bytes());
}

void Tensor::check_type(DType want) const {
    RNNFLOW_CHECK(dtype_ == want, "tensor holds ", to_string(dtype_), ", accessed as ", to_string(want));
}

}  // namespace rnnflow
