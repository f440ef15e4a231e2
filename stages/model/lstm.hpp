// Stacked left-to-right LSTM on oneDNN, one primitive per layer.
//
// Per layer l and step t, with x_t the layer input (C_l channels) and h, c of H channels:
//   i_t = sigmoid(x_t W_i + h_{t-1} U_i + b_i)       input gate
//   f_t = sigmoid(x_t W_f + h_{t-1} U_f + b_f)       forget gate
//   g_t = tanh   (x_t W_g + h_{t-1} U_g + b_g)       candidate cell (c~)
//   o_t = sigmoid(x_t W_o + h_{t-1} U_o + b_o)       output gate
//   c_t = f_t * c_{t-1} + i_t * g_t
//   h_t = o_t * tanh(c_t)                            layer output, next layer's input
// h_{-1} = c_{-1} = 0, or the previous batch's final state (carry_state). Between layers (not
// after the last) training applies inverted dropout: x^{l+1} = h^l * m / (1 - p), m ~ Bernoulli(1 - p).
//
// Ports:   in   f32 (T, N, C) + lengths
//          out  f32 (T, N, H) + the same lengths; 0 at padded steps t >= lengths[n]
// Params:  layer<l>.weights_layer (C_l, 4, H)  oneDNN ldigo with L = D = 1, gates i, f, g, o
//          layer<l>.weights_iter  (H, 4, H)    ldigo
//          layer<l>.bias          (4, H)       ldgo; one bias (PyTorch's b_ih + b_hh)
//
// Padding: a left-to-right LSTM's valid steps never see later (padded) steps, and with the
// gradient zeroed at padded outputs every gradient at padded steps is exactly zero, so a padded
// batch gives the numbers of each sequence run alone (tested).
//
// Dropout masks are a counter-based hash of (seed drawn from the prepare rng, epoch, batch,
// layer, element): the same seed gives the same masks, each training step new ones, and
// repeated forwards of one step (gradient checks, re-runs) the same ones.
//
// Carried state (truncated BPTT, Zaremba et al. 2014): with carry_state and !reset_state, a
// batch starts from the final (h, c) of the previous batch of the same split; no gradient flows
// into that batch. It needs every column to run all T steps (a padded column's final state is
// not its last valid state), checked per batch.
//
// Refs: Hochreiter & Schmidhuber, "Long Short-Term Memory" (1997); Zaremba, Sutskever & Vinyals,
// "Recurrent Neural Network Regularization" (2014).
// Not supported: bidirectional or right-to-left layers (their padding would not be exact
// either), peephole and projection LSTM (oneDNN has them; a later issue), bf16, forward_inference
// primitives for evaluation (evaluation runs forward_training and writes a workspace).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/core/onednn.hpp"
#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class Lstm final : public ModelStage {
public:
    static StageSchema schema();
    explicit Lstm(const Params& p);
    ~Lstm() override;
    Lstm(const Lstm&) = delete;
    Lstm& operator=(const Lstm&) = delete;

    void prepare(PrepareContext& ctx) override;
    void forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) override;
    void backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                  Grads& diff_src, const StepInfo& step) override;
    std::span<Param> params() override { return params_; }

    // The carried state of a split: per layer h then c, each (N, H); empty when there is none.
    // For checkpoints and tests (a gradient check restores it before every probe).
    std::vector<Tensor> carried_state(const std::string& split) const;
    void set_carried_state(const std::string& split, std::vector<Tensor> state);

    std::int64_t hidden() const { return hidden_; }
    std::int64_t layers() const { return layers_; }

private:
    struct Prims;  // oneDNN primitives and memory objects of one (T, N) shape, all layers
    Prims& prims(std::int64_t T, std::int64_t N);
    void make_backward(Prims& p);
    bool dropout_on(const StepInfo& step) const { return step.training() && dropout_ > 0; }
    void make_mask(Tensor& mask, const StepInfo& step, std::int64_t layer) const;

    std::int64_t hidden_, layers_;
    double dropout_;
    bool carry_state_;
    double init_scale_, forget_bias_;

    std::int64_t channels_ = -1;     // C
    std::uint64_t dropout_seed_ = 0;
    std::vector<Param> params_;      // per layer: weights_layer, weights_iter, bias
    dnnl::stream stream_;
    std::map<std::pair<std::int64_t, std::int64_t>, std::unique_ptr<Prims>> cache_;  // by (T, N)
    std::map<std::string, std::vector<Tensor>> carried_;  // by split: per layer h, c (N, H)

    // Stage-owned buffers, sized to the largest shape seen and reused every step.
    Tensor scratchpad_;                      // shared by every primitive (never run at once)
    std::vector<Tensor> weights_fwd_;        // per layer wl, wi: only if forward wants != ldigo
    std::vector<Tensor> weights_bwd_;        // per layer wl, wi in the backward layout
    std::vector<Tensor> diff_weights_tmp_;   // per layer wl, wi: only if diff weights != ldigo
    std::vector<Tensor> diff_weights_user_;  // the same reordered to ldigo, then added
    Tensor diff_dst_;                        // (T, N, H) diff_dst with padded steps zeroed
    Tensor diff_layer_[2];                   // (T, N, max(C, H)) between layers, ping-pong
    Tensor diff_iter_sink_;                  // (N, H) diff wrt the carried-in state: dropped
    Tensor diff_iter_zero_;                  // (N, H) zeros: no gradient from the next batch
};

}  // namespace rnnflow::stages
