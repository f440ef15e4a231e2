// Tensor: a dense, 64-byte aligned, row-major array of f32 activations or i32 ids.
//
// Batch tensors are time-major: ids are (T, N), activations (T, N, C). `lengths` (size N) gives
// the valid steps of each batch column; steps t >= lengths[n] are padding. An empty `lengths`
// means every column is T steps long.
//
// Value semantics: copying a Tensor copies its data. `resize` keeps the allocation when it is
// large enough, so a stage that writes into the same output every step allocates only once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace rnnflow {

enum class DType : std::uint8_t { f32, i32 };
const char* to_string(DType d);
std::size_t dtype_size(DType d);

using Shape = std::vector<std::int64_t>;
std::string shape_str(const Shape& s);  // "(20, 32, 256)"

class Tensor {
public:
    Tensor() = default;
    Tensor(DType dtype, Shape shape);  // zero-filled
    static Tensor f32(Shape shape) { return Tensor(DType::f32, std::move(shape)); }
    static Tensor i32(Shape shape) { return Tensor(DType::i32, std::move(shape)); }

    Tensor(const Tensor& other);
    Tensor& operator=(const Tensor& other);
    Tensor(Tensor&& other) noexcept = default;
    Tensor& operator=(Tensor&& other) noexcept = default;
    ~Tensor() = default;

    DType dtype() const { return dtype_; }
    const Shape& shape() const { return shape_; }
    int rank() const { return static_cast<int>(shape_.size()); }
    std::int64_t dim(int i) const;  // negative i counts from the end
    std::int64_t numel() const { return numel_; }
    std::size_t bytes() const { return static_cast<std::size_t>(numel_) * dtype_size(dtype_); }
    bool empty() const { return numel_ == 0; }

    // Change shape (and dtype); reallocates only when capacity is short. Contents unspecified
    // after growth; call zero() when needed.
    void resize(DType dtype, Shape shape);
    void resize(Shape shape) { resize(dtype_, std::move(shape)); }
    void zero();

    template <class T> T* data();
    template <class T> const T* data() const;
    void* raw() { return ptr_.get(); }
    const void* raw() const { return ptr_.get(); }

    // Valid steps per batch column (size N) for time-major batch tensors; empty = all full.
    std::vector<std::int32_t> lengths;
    // Valid steps of column n given T = dim(0).
    std::int64_t length(std::int64_t n) const {
        return lengths.empty() ? shape_.at(0) : lengths.at(static_cast<std::size_t>(n));
    }

private:
    struct Free { void operator()(std::byte* p) const; };
    DType dtype_ = DType::f32;
    Shape shape_;
    std::int64_t numel_ = 0;
    std::size_t capacity_ = 0;  // bytes
    std::unique_ptr<std::byte, Free> ptr_;
    void check_type(DType want) const;
};

template <> inline float* Tensor::data<float>() { check_type(DType::f32); return reinterpret_cast<float*>(ptr_.get()); }
template <> inline const float* Tensor::data<float>() const { check_type(DType::f32); return reinterpret_cast<const float*>(ptr_.get()); }
template <> inline std::int32_t* Tensor::data<std::int32_t>() { check_type(DType::i32); return reinterpret_cast<std::int32_t*>(ptr_.get()); }
template <> inline const std::int32_t* Tensor::data<std::int32_t>() const { check_type(DType::i32); return reinterpret_cast<const std::int32_t*>(ptr_.get()); }

// A trainable weight and its gradient, same shape. Model stages own their Params; the optimiser
// updates `value` from `grad` and zeroes `grad`. `name` is the checkpoint name below the stage id
// ("weight" → "embed.weight"); `layout` documents the element order, e.g. "(V, C)".
struct Param {
    std::string name;
    Tensor value;
    Tensor grad;
    std::string layout;
    bool trainable = true;
    // Row-sparse gradients (the embedding's): with `sparse_rows` set by the owning stage, `grad`
    // is zero outside the rows listed in `grad_rows` (indices into its first axis, sorted and
    // unique), so the engine and optimisers may visit only those. Whoever adds into other rows
    // lists them too; whoever zeroes the gradient may clear the list (a longer list than needed
    // is never wrong).
    bool sparse_rows = false;
    std::vector<std::int64_t> grad_rows;
    // Σ grad², set by the engine once this step's gradient is complete (after any reduction
    // across processes) so the optimiser's clipping need not read the gradient again; -1 when
    // not known. The engine resets it after the optimiser step.
    double grad_sumsq = -1;
    // Stale gradients, to save a pass over large gradients. A stage whose backward can write its
    // parameter's gradient instead of adding into it sets `overwrites_grad`. Optimisers then
    // leave that gradient as it is after their update and set `grad_stale` (the gradient counts
    // as zero; its memory holds old values) instead of clearing it; the stage's next backward
    // writes the gradient and clears the flag (later backward passes of the step add again).
    // The engine clears any gradient still stale when backward is done (its stage did not run
    // backward) before anything reads the gradients, so only the owning stage sees the flag set.
    bool overwrites_grad = false;
    bool grad_stale = false;
};

// Whether an optimiser leaves p's gradient stale after its update rather than zeroing it: its
// stage overwrites it, and it is dense (row-sparse gradients are cleared row by row).
inline bool leaves_grad_stale(const Param& p) { return p.overwrites_grad && !p.sparse_rows; }
// The optimiser has used p's gradient: mark it stale (leaves_grad_stale), else zero it (a
// row-sparse gradient: its listed rows only), ready for the next step.
void release_grad(Param& p);
// Zero a gradient still marked stale (the engine, before reading gradients).
void settle_grad(Param& p);

// Σ g² of n floats, in double: fixed chunks summed in parallel (OpenMP, the team oneDNN uses),
// each over 8 independent lanes, then the chunks in order; the result does not depend on the
// number of threads.
double sum_squares(const float* g, std::int64_t n);
// Σ grad² of a param: over its listed rows when its gradient is row-sparse (rows in order, each
// summed as above), else over all of it.
double grad_sum_squares(const Param& p);

}  // namespace rnnflow
