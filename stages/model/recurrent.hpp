// The recurrent family on oneDNN: vanilla RNN, LSTM (peephole, projection), GRU and the
// linear-before-reset GRU; stacked, in either direction or both; exact on padded batches.
// The stage types `rnn`, `lstm` and `gru` (rnn.hpp, lstm.hpp, gru.hpp) are this class with
// their cell fixed; their schemas differ only in the cell parameters.
//
// Cells, per layer and direction, x_t the layer input (C_l channels), h, c of H channels:
//   rnn:  h_t = act(x_t W + h_{t-1} U + b)                                 act tanh|relu|sigmoid
//   lstm: i, f, o = sigmoid(x_t W_{i,f,o} + h_{t-1} U_{i,f,o} [+ c_{t-1} * p_{i,f}] + b_{i,f,o})
//         g = tanh(x_t W_g + h_{t-1} U_g + b_g)
//         c_t = f * c_{t-1} + i * g
//         (with peephole the output gate reads c_t: o = sigmoid(... + c_t * p_o))
//         h_t = o * tanh(c_t), then with projection h_t := h_t R   (R (H, P): h has P channels)
//   gru (linear_before_reset: false, oneDNN `gru`):
//         u = sigmoid(x W_u + h U_u + b_u), r = sigmoid(x W_r + h U_r + b_r)
//         n = tanh(x W_n + (r * h) U_n + b_n), h_t = u * h_{t-1} + (1 - u) * n
//   gru (linear_before_reset: true, oneDNN `lbr_gru`, PyTorch's and cuDNN's GRU):
//         n = tanh(x W_n + b_n + r * (h U_n + b_hn)), otherwise as above
// Gate orders (the G axis of the weights): rnn (one gate); lstm i, f, g, o; gru u, r, n (oneDNN's;
// PyTorch orders r, z(=u), n). Bias gates: rnn 1, lstm 4, gru 3, lbr gru 4 (u, r, n, hn).
//
// Directions: left_to_right; right_to_left (each sequence read from its own last valid token
// back to its first); bidirectional_concat / _sum (both, outputs concatenated [l2r, r2l] on the
// channel axis or summed). Layer l+1 reads layer l's combined output. Dropout (training only,
// inverted) applies to every layer's combined output but the last's.
//
// Ports:  in     f32 (T, N, C) + lengths
//         state  (optional input) f32 (S, L*D, N, H): initial state; S = 2 for lstm (h, c) else
//                1; row l*D + d is layer l, direction d (0 = left-to-right, 1 = right-to-left);
//                with projection h uses channels [0, P) and ignores the rest. Absent: zeros (or
//                the carried state: with carry_state, and in the infer phase, where a sampler's
//                calls continue one another, unless the step resets it).
//         out    f32 (T, N, Y) + lengths, Y = H' (or 2H' for concat), H' = P with projection else
//                H; 0 at padded steps
//         state  f32 (S, L*D, N, H): every sequence's final state: after ITS OWN last valid step
//                (left-to-right) or after its first token (right-to-left); projection h in [0, P)
//                and zeros above. Gradients flow into both state ports.
// Params per layer l and direction d in {l2r, r2l}, named layer<l>.<d>.<name>, oneDNN user
// layouts with L = D = 1:
//         weights_layer      (C_l, G, H)   ldigo
//         weights_iter       (H', G, H)    ldigo
//         bias               (Gb, H)       ldgo
//         weights_peephole   (3, H)        lstm peephole: gates i, f, o
//         weights_projection (H, P)        lstm projection: ldio
//
// Exact padding: oneDNN has no per-sequence lengths. A batch is planned once per forward: columns
// sorted by length (descending, stable), time cut into chunks at the distinct lengths; chunk j
// runs steps [t0, t1) on the columns still active (a prefix in sorted order), its dst_iter rows
// becoming the next chunk's src_iter; a column's final state is the dst_iter row of the chunk
// where it ends. Backward chains the chunks in reverse through diff_dst_iter, injecting each
// column's final-state gradient where it ends. Right-to-left reverses every sequence within its
// own length (a gather into the packed layout) and runs a left-to-right primitive. With equal
// lengths and left-to-right this is one primitive call per layer on the caller's tensors.
// Primitives are cached by (input channels, chunk steps, active columns).
//
// Refs: Elman 1990; Hochreiter & Schmidhuber 1997; Gers & Schmidhuber 2000 (peephole); Sak et
// al. 2014 (projection, LSTMP); Cho et al. 2014 (GRU); Zaremba et al. 2014 (dropout, carried
// state).
//
// dtype bf16: the products read bf16 (AMX / AVX512-BF16 where the CPU has them): the packed layer
// inputs and outputs and h at the chunk boundaries are stored in bf16 (rounded to nearest even),
// the weights are bf16 copies of the f32 params made each step; c, the biases, the peephole
// weights, every gradient and the params themselves stay f32 (master weights). The stage's ports
// stay f32. Not supported: forward_inference primitives for evaluation, per-layer sizes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "pipeline/core/onednn.hpp"
#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

enum class Cell { rnn, lstm, gru };
enum class Direction { left_to_right, right_to_left, bidirectional_concat, bidirectional_sum };

class Recurrent : public ModelStage {
public:
    // The schema shared by rnn, lstm and gru: ports and common params, then `cell_params` adds
    // the cell's own; `details` is the manual text.
    static StageSchema make_schema(const std::string& type, const std::string& summary, Cell cell,
                                   const std::string& details);

    Recurrent(Cell cell, const Params& p);
    ~Recurrent() override;
    Recurrent(const Recurrent&) = delete;
    Recurrent& operator=(const Recurrent&) = delete;

    void prepare(PrepareContext& ctx) override;
    void forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) override;
    void backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                  Grads& diff_src, const StepInfo& step) override;
    std::span<Param> params() override { return params_; }

    // The carried state of a split, as the state output (S, L*D, N, H); empty when none.
    Tensor carried_state(const std::string& split) const;
    void set_carried_state(const std::string& split, Tensor state);
    // Resume: the carried states ("carried.<split>"), bit for bit.
    void save_run_state(StageState& state) const override;
    void load_run_state(const StageState& state) override;

    Cell cell() const { return cell_; }
    std::int64_t hidden() const { return hidden_; }
    std::int64_t layers() const { return layers_; }
    std::int64_t directions() const { return dirs_; }
    std::int64_t projection() const { return proj_; }
    std::int64_t state_slots() const { return cell_ == Cell::lstm ? 2 : 1; }  // S
    std::int64_t out_channels() const;  // Y
    std::int64_t gates() const;         // G
    std::int64_t bias_gates() const;    // Gb
    // The shape of both state ports for N columns.
    Shape state_shape(std::int64_t N) const { return {state_slots(), layers_ * dirs_, N, hidden_}; }

private:
    struct Plan;
    struct Prim;
    struct Descs {
        dnnl::memory::desc src, dst, h, c, wl, wi, bias, wp, wr;  // wp, wr empty when unused
        dnnl::memory::desc dsrc, ddst, dh, dwl, dwi, dwr;  // diff tensors: always f32
    };
    Descs descs(std::int64_t cin, std::int64_t T, std::int64_t N) const;
    struct Reorder;
    Prim& prim(std::int64_t cin, std::int64_t T, std::int64_t N);
    void make_backward(Prim& p);
    [[noreturn]] void unsupported(const dnnl::error& e) const;
    Reorder& reorder(const dnnl::memory::desc& from, const dnnl::memory::desc& to);
    void run_reorder(const dnnl::memory::desc& from, const void* src, const dnnl::memory::desc& to,
                     void* dst);
    void init_params(PrepareContext& ctx);
    void make_plan(const Tensor& x);
    bool dropout_on(const StepInfo& step) const { return step.training() && dropout_ > 0; }
    std::uint64_t mask_key(const StepInfo& step, std::int64_t layer) const;
    Param* weights(std::int64_t l, std::int64_t d) { return &params_[static_cast<std::size_t>((l * dirs_ + d) * per_dir_)]; }

    // One batch's forward and backward by units, each forward next to its backward (in
    // recurrent.cpp, where each says what it does); Batch and WeightSet hold what both share.
    struct Batch;
    struct WeightSet;
    Batch batch(const Tensor& x, Saved& saved, const StepInfo& step);
    void check_input(const Tensor& x) const;
    const float* initial_state_source(const Inputs& in, const StepInfo& step, std::int64_t N) const;
    void input_forward(const Batch& b, const StepInfo& step, std::int64_t l, std::int64_t d);
    float* input_diff_buffer(const Batch& b, std::int64_t l, std::int64_t d, Tensor* dx);
    void input_backward(const Batch& b, const StepInfo& step, std::int64_t l, Tensor* dx);
    void initial_state_forward(const Batch& b, const float* init, std::int64_t l, std::int64_t d) const;
    void initial_state_backward(const Batch& b, Tensor& ds, std::int64_t l, std::int64_t d) const;
    void final_state_forward(const Batch& b, Tensor& fs) const;
    void final_state_backward(const Batch& b, const float* dfinal, std::int64_t l, std::int64_t d);
    WeightSet weight_set(std::int64_t l, std::int64_t d);
    void bind_weight(Prim& p, bool bwd, int k, WeightSet& ws);
    void bind_chunk(Prim& p, bool bwd, const Batch& b, std::int64_t l, std::int64_t d, std::size_t j) const;
    std::size_t chunk_workspaces(const Plan& P, std::int64_t cin);
    void chunks_forward(const Batch& b, std::int64_t l, std::int64_t d);
    void chunks_backward(const Batch& b, float* dsrc, std::int64_t l, std::int64_t d);
    void output_forward(const Batch& b, std::int64_t l, Tensor& y) const;
    void output_backward(const Batch& b, const float* dy);

    // Configuration.
    Cell cell_;
    std::int64_t hidden_, layers_, dirs_ = 1, proj_ = 0;
    Direction direction_;
    dnnl::algorithm activation_ = dnnl::algorithm::eltwise_tanh;
    bool peephole_ = false, lbr_ = true;
    double dropout_;
    bool carry_state_;
    // Whether a batch of this step starts from (unless it resets) and leaves the split's carried
    // state: with carry_state, and always in the infer phase, where a sampler's
    // ModelRunner::run(reset = false) continues the previous call one token or frame at a time.
    bool carries(const StepInfo& step) const { return carry_state_ || step.phase == Phase::infer; }
    bool bf16_ = false;           // dtype bf16
    std::size_t es_ = 4;          // bytes per element of the packed activations and h
    std::string init_;
    double init_scale_, init_gain_, forget_bias_;

    std::int64_t channels_ = -1;  // C
    bool state_input_ = false;    // the optional state input is connected
    std::uint64_t dropout_seed_ = 0;
    std::int64_t per_dir_ = 3;    // params per (layer, direction)
    std::vector<Param> params_;   // (layer, direction)-major
    dnnl::stream stream_;
    std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t>, std::unique_ptr<Prim>> cache_;
    std::vector<std::unique_ptr<Reorder>> reorders_;
    std::map<std::string, Tensor> carried_;  // by split

    // Stage-owned buffers, grown to the largest batch seen and reused every step.
    std::unique_ptr<Plan> plan_;
    Tensor scratchpad_;
    std::vector<Tensor> wfwd_, wbwd_;  // per (l, d, weight kind)
    std::vector<std::size_t> ws_offs_;  // each chunk's workspace offset (kept: no allocation per step)
    Tensor comb_;                 // (T*N, Y) combined output of a bidirectional layer
    Tensor init_state_;           // (S, L*D, N, H) zeros or carried
    Tensor dstate_zero_;          // (S, L*D, N, H) zeros: no consumer of the state output
    Tensor dh_, dc_;              // diff states of one (layer, direction), all chunk boundaries
    Tensor ddst_[2], dsrc_[2];    // per direction: packed diff wrt dst / src of the current layer
};

const char* to_string(Cell c);

}  // namespace rnnflow::stages
