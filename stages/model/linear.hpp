// linear: out[t, n, :] = in[t, n, :] · weight + bias for t < length(n); 0 at padded steps.
//
// Ports:  in   tensor f32 (T, N, C) + lengths
//         out  tensor f32 (T, N, O) + the same lengths, O = `out_dim`
// Params: weight (C, O) row-major, bias (O). (C, O) is the layout the forward matmul reads as
//         plain B (M×C · C×O, the hot path in training and evaluation) and the weight-gradient
//         matmul writes directly; the backward-data matmul reads it transposed through strides.
//         Measured (oneDNN 2.6.3, 1 thread, M 700, C 650, O 10000): fwd / data / weights
//         53 / 54 / 66 ms with (C, O) against 62 / 60 / 65 ms with PyTorch's (O, C).
// Backward (M = T·N rows, padded rows' diff_out treated as 0, since padded outputs are constant):
//   diff_in      = diff_out · weightᵀ        (M, C), overwritten, 0 at padded rows
//   weight.grad += inᵀ · diff_out            (C, O), a sum post-op accumulates in place
//   bias.grad   += column sums of diff_out   (O)
// All three products are oneDNN 2.x matmul primitives, cached by M, with user scratchpads and
// a stream of this stage; a steady-state step allocates nothing.
// Inputs at padded steps must be finite (they multiply a zero gradient).
// dtype bf16: in, weight and diff_out are converted to bf16 (oneDNN reorders) and the three
//   products read those (AMX on this CPU), writing f32; parameters, their gradients, outputs and
//   diff_in stay f32 — f32 master weights, updated by the optimiser in f32.
// Not supported: weight tying with an embedding's (V, C) weight (it would need (O, C)),
// activation fused into the output.
#pragma once

#include <array>
#include <map>
#include <memory>

#include <dnnl.hpp>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class Linear final : public ModelStage {
public:
    static StageSchema schema();
    explicit Linear(const Params& p);
    ~Linear() override;
    Linear(Linear&&) noexcept;
    Linear& operator=(Linear&&) noexcept;

    void prepare(PrepareContext& ctx) override;
    void forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) override;
    void backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                  Grads& diff_src, const StepInfo& step) override;
    std::span<Param> params() override {
        return std::span<Param>(params_.data(), has_bias_ ? 2 : 1);
    }

private:
    struct Plan;  // the primitives and memory objects for one M
    Plan& plan(std::int64_t m);
    struct Copy;  // a reorder with its memories and arguments
    // Runs one of the plan's copies from src to dst.
    void copy(Plan& p, Copy& c, const void* src, void* dst);

    std::int64_t out_dim_;   // O
    bool has_bias_;
    double init_scale_;
    bool bf16_;                // dtype: bf16 (f32 master weights)
    std::int64_t in_dim_ = 0;  // C, known after prepare
    std::array<Param, 2> params_;  // weight (C, O), bias (O)
    std::map<std::int64_t, std::unique_ptr<Plan>> plans_;  // by M = T·N
    std::unique_ptr<dnnl::stream> stream_;
    Tensor fwd_scratch_, bwd_scratch_;  // user scratchpads, grow-only (bytes as f32 words)
    Tensor masked_diff_;                // diff_out with padded rows zeroed, grow-only (M, O)
    Tensor x_bf16_, w_bf16_, dy_bf16_;  // dtype bf16: the copies the products read (bytes), grow-only
    Tensor reorder_scratch_;            // the reorders' user scratchpad (bytes), grow-only
    Tensor x_t_;                        // inᵀ (C, M) for the weight gradient, in its dtype (bytes)
};

}  // namespace rnnflow::stages
