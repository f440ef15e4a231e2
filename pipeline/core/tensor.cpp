#include "tensor.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

#include "cpu.hpp"
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
    for (auto d : s)
        RNNFLOW_CHECK(d >= 0, "tensor dimension must be >= 0, got ", d, " in ", shape_str(s));
    for (auto d : s)
        if (d == 0) return 0;
    for (auto d : s) {
        RNNFLOW_CHECK(n <= std::numeric_limits<std::int64_t>::max() / 8 / d, "tensor shape ",
                      shape_str(s), " has too many elements to address");
        n *= d;
    }
    return n;
}

// Memory a single tensor may take: the machine's physical memory. Checked before allocating, so
// a shape that cannot fit (a huge vocabulary times a wide layer) is a message naming the shape,
// not std::bad_alloc or the kernel's OOM killer.
static std::size_t tensor_byte_limit() {
    static const std::size_t limit = [] {
        const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
        return pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page)
                                     : std::numeric_limits<std::size_t>::max();
    }();
    return limit;
}

static std::string gib(std::size_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
    return buf;
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
        if (need > tensor_byte_limit())
            throw Error("a tensor of shape " + shape_str(shape) + " needs " + gib(need) +
                            ", more than this machine's " + gib(tensor_byte_limit()) + " of memory",
                        "lower the sizes that make it (vocabulary, hidden, dim, batch, bptt)");
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
    // Large tensors (the recurrent layers' weight gradients, cleared every step) in pieces over
    // the OpenMP team: one thread alone left the other idle for 1.3 ms per medium PTB step.
    constexpr std::size_t kPiece = std::size_t{1} << 20;
    const std::size_t n = bytes();
    if (n <= kPiece) {
        if (n) std::memset(ptr_.get(), 0, n);
        return;
    }
    std::byte* base = ptr_.get();
    const auto pieces = static_cast<std::int64_t>((n + kPiece - 1) / kPiece);
#pragma omp parallel for schedule(static)
    for (std::int64_t k = 0; k < pieces; ++k) {
        const std::size_t b = static_cast<std::size_t>(k) * kPiece;
        std::memset(base + b, 0, std::min(kPiece, n - b));
    }
}

void Tensor::check_type(DType want) const {
    RNNFLOW_CHECK(dtype_ == want, "tensor holds ", to_string(dtype_), ", accessed as ", to_string(want));
}

namespace {

// Σ g² of g[b, e) in doubles, in 32 lanes (lane k takes the elements i with i % 32 == k, counted
// from b) added at the end: a fixed order, the same on both code paths (each square of a float
// is exact in a double, so a fused multiply-add rounds like the separate multiply and add).
// 32 lanes, not fewer: each lane's additions wait on the previous one, so the AVX-512 path needs
// this many independent sums to keep its adders busy (8 lanes ran at a quarter of the speed).
#define RNNFLOW_SUMSQ_KERNEL(SUFFIX, ATTR)                                                         \
    ATTR double sum_squares_##SUFFIX(const float* __restrict g, std::int64_t b, std::int64_t e) {  \
        constexpr int kLanes = 32;                                                                 \
        double lane[kLanes] = {};                                                                  \
        std::int64_t i = b;                                                                        \
        for (; i + kLanes <= e; i += kLanes)                                                       \
            for (int k = 0; k < kLanes; ++k) lane[k] += double(g[i + k]) * double(g[i + k]);       \
        double s = 0;                                                                              \
        for (; i < e; ++i) s += double(g[i]) * double(g[i]);                                       \
        for (double x : lane) s += x;                                                              \
        return s;                                                                                  \
    }
#ifdef RNNFLOW_AVX512
RNNFLOW_SUMSQ_KERNEL(avx512, RNNFLOW_AVX512_TARGET)
#endif
RNNFLOW_SUMSQ_KERNEL(base, )
#undef RNNFLOW_SUMSQ_KERNEL

}  // namespace

double sum_squares(const float* g, std::int64_t n) {
    constexpr std::int64_t kChunk = std::int64_t{1} << 15;
    const std::int64_t chunks = (n + kChunk - 1) / kChunk;
    const auto chunk_sum = RNNFLOW_PICK_KERNEL(sum_squares);
    if (chunks <= 1) return chunks == 1 ? chunk_sum(g, 0, n) : 0.0;
    thread_local std::vector<double> part;  // grows only: no allocation in the steady state
    if (std::ssize(part) < chunks) part.resize(static_cast<std::size_t>(chunks));
    double* ps = part.data();
#pragma omp parallel for schedule(static)
    for (std::int64_t c = 0; c < chunks; ++c) ps[c] = chunk_sum(g, c * kChunk, std::min(n, (c + 1) * kChunk));
    double s = 0;
    for (std::int64_t c = 0; c < chunks; ++c) s += ps[c];
    return s;
}

double grad_sum_squares(const Param& p) {
    const float* g = p.grad.data<float>();
    if (!p.sparse_rows || p.grad.rank() == 0) return sum_squares(g, p.grad.numel());
    const std::int64_t width = p.grad.numel() / std::max<std::int64_t>(p.grad.dim(0), 1);
    double s = 0;
    for (const std::int64_t r : p.grad_rows) s += sum_squares(g + r * width, width);
    return s;
}

void release_grad(Param& p) {
    if (leaves_grad_stale(p)) {
        p.grad_stale = true;
    } else if (p.sparse_rows && p.grad.rank() > 0) {
        const std::int64_t width = p.grad.numel() / std::max<std::int64_t>(p.grad.dim(0), 1);
        float* g = p.grad.data<float>();
        for (const std::int64_t r : p.grad_rows) std::fill_n(g + r * width, width, 0.f);
    } else {
        p.grad.zero();
    }
    p.grad_rows.clear();
}

void settle_grad(Param& p) {
    if (!p.grad_stale) return;
    p.grad.zero();
    p.grad_stale = false;
}

}  // namespace rnnflow
