// attention_decoder: a recurrent decoder with attention over an encoder's outputs, trained with
// teacher forcing (optionally scheduled sampling) and decoding greedily or by beam search.
//
// Per step t (y_{t-1} the input token: <sos> then the target, or the model's own prediction):
//   x_t   = [emb(y_{t-1}); h~_{t-1}] with input feeding (h~_{-1} = 0), else emb(y_{t-1})
//   h_t   = cell(x_t, h_{t-1})  stacked (1-2 layers; dropout between layers), lstm or gru (the
//           lbr-gru of oneDNN/PyTorch: n = tanh(x W_n + b_n + r * (h U_n + b_hn)))
//   score = additive (bahdanau) v . tanh(W_q h + W_k m_s) | dot h . m_s | general h . (W_a m_s)
//           over the source's valid positions s < length (softmax over them only)
//   a_t   = softmax(score), c_t = sum_s a_ts m_s
//           attention none (the plain encoder-decoder, Cho et al. 2014): c_t = C for every t, the
//           fixed context vector C = [h_l2r; h_r2l] of the encoder's last layer (the state input)
//   h~_t  = tanh([c_t; h_t] W_c + b_c)      (Luong's attentional hidden state; h_t = top layer)
//   logits_t = dropout(h~_t) W_o + b_o
// Initial state (bridge: linear): h_0^l = tanh([h_l2r; h_r2l] B_h^l + b_h^l) from the encoder's
// last layer (both directions of a bidirectional encoder: PortInfo::directions of the state); an
// lstm decoder's c_0^l the
// same from the encoder's c (zero when the encoder has no c). bridge: zeros starts from zeros.
//
// Ports:  memory     f32 (Ts, N, E) + lengths   encoder outputs (attention keys and values)
//         state      f32 (S, L*D, N, H_enc)     optional: the encoder's final state (bridge; C with
//                                               attention none, which needs it)
//         target_in  ids (Tt, N) + lengths      <sos> y1 .. yn; its vocabulary gives V, <sos>,
//                                               <eos>, <pad>
//         logits     f32 (Tt, N, V) + lengths   teacher-forced scores (train and evaluate;
//                                               infer: (1, N, V), lengths 0)
//         hypothesis ids (Th, N) + lengths      decoded ids without <sos>/<eos> (evaluate and
//                                               infer; train: (1, N), lengths 0)
//         attention  f32 (Th, N, Ts) + lengths  the hypothesis' attention weights (likewise;
//                                               attention none: (1, N, Ts), lengths 0)
//
// Training runs whole sequences layer by layer (one GEMM for every step's input projection,
// attention and output for all steps at once) when there is no input feeding and
// teacher_forcing = 1; otherwise step by step. Backward is exact for every parameter, memory and
// state; padded target steps and source positions contribute nothing.
//
// Decoding: greedy, or beam search over N * beam rows; a hypothesis ends at <eos> (kept as
// finished) or at max length = floor(max_len_ratio * source length + max_len_offset); a
// sentence's search ends when none of its beams is alive. Finished hypotheses are ranked by
// log p / lp, lp = ((5 + |y|) / 6)^length_penalty (GNMT; |y| counts <eos>; 0: raw log p).
// <pad> and <sos> are never emitted.
//
// Refs: Cho et al. 2014 and Sutskever et al. 2014 (the encoder-decoder with a fixed context);
// Bahdanau et al. 2015; Luong et al. 2015 (dot/general, input feeding); Bengio et al. 2015
// (scheduled sampling); Wu et al. 2016 (GNMT length penalty). Not supported: coverage, local
// attention, multi-head attention, weight tying, bf16.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class AttentionDecoder final : public ModelStage {
public:
    static StageSchema schema();
    explicit AttentionDecoder(const Params& p);
    ~AttentionDecoder() override;
    AttentionDecoder(const AttentionDecoder&) = delete;
    AttentionDecoder& operator=(const AttentionDecoder&) = delete;

    void prepare(PrepareContext& ctx) override;
    void forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) override;
    void backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                  Grads& diff_src, const StepInfo& step) override;
    std::span<Param> params() override { return params_; }

    // The parameter of a name ("output.weights"), for tests and tools; throws if absent.
    Param& param(const std::string& name);
    // Decode scores of the last forward's hypotheses (log p, and the ranking score), per column.
    const std::vector<double>& hypothesis_log_prob() const { return hyp_logp_; }
    const std::vector<double>& hypothesis_score() const { return hyp_score_; }
    // True when the last training forward took the whole-sequence path.
    bool last_forward_was_fast() const { return last_fast_; }

    struct Work;  // per-batch buffers, kept in Saved::extra and reused (attention_decoder_detail.hpp)

private:
    enum class Scoring { bahdanau, dot, general, none };
    bool lstm() const { return lstm_; }
    std::int64_t gates() const { return lstm_ ? 4 : 3; }
    std::int64_t in_channels(std::int64_t l) const;  // C_l
    const float* pv(int i) const { return params_[static_cast<std::size_t>(i)].value.data<float>(); }
    float* pg(int i) { return params_[static_cast<std::size_t>(i)].grad.data<float>(); }

    class Stepper;  // the DecodeModel that DecodeSearch steps (attention_decoder_search.cpp)

    // The decoder's units, each forward next to its backward (attention_decoder.cpp). Rows: in
    // training r = t * N + n, in decoding the beams r = n * beam + k.
    void project(std::int64_t l, std::int64_t M, const float* x, float* gates) const;
    void project_backward(Work& w, std::int64_t l, std::int64_t t0, std::int64_t t1);
    void recur(std::int64_t l, std::int64_t M, const float* hprev, const float* cprev,
               float* gates, float* hn, float* h, float* c, float* tc, float* hu) const;
    void recur_backward(Work& w, std::int64_t l, std::int64_t t) const;
    void cell_weight_grads(const Work& w, std::int64_t l);
    void make_keys(const float* memory, std::int64_t rows, float* keys) const;
    void keys_backward(const Work& w, const float* mem, float* dmem);
    void attend(std::int64_t count, std::int64_t stride, std::int64_t step, const float* q,
                const float* memory, const std::int32_t* src_len, std::int64_t Ts, std::int64_t N,
                const float* keys, float* alpha, float* cat, float* qp, float* tb) const;
    void attend_backward(Work& w, const float* mem, float* dmem, std::int64_t r0, std::int64_t r1);
    void fixed_context(const float* ctx, std::int64_t M, std::int64_t N, std::int64_t K, const float* q,
                       float* cat) const;
    void fixed_context_backward(Work& w, std::int64_t r0, std::int64_t r1) const;
    void context_backward(Work& w, const float* mem, float* dmem, std::int64_t r0, std::int64_t r1);
    void additive_score_backward(Work& w, std::int64_t n, std::int64_t b, std::int64_t count,
                                 std::int64_t Ls);
    void combine_output(std::int64_t M, const float* cat, float* ht, float* htd, float* logits,
                        const float* mask) const;
    void output_backward(const Tensor& dlogits, Work& w);
    void combine_backward(Work& w, std::int64_t r0, std::int64_t r1) const;
    void combine_weight_grads(const Work& w);
    void read_last_layer(const Tensor& state, std::int64_t slot, float* out) const;
    void add_last_layer(Tensor& dstate, std::int64_t slot, const float* d) const;
    void bridge_forward(const Tensor* state, std::int64_t N, Work& w) const;
    void bridge_backward(const Tensor& state, Work& w, Tensor* dstate);

    // The training pass built from them.
    void start_training_rows(const Tensor& target, Work& w) const;
    void make_dropout_masks(Work& w, const StepInfo& step) const;
    void embed_rows(Work& w, std::int64_t r0, std::int64_t r1) const;
    void layer_step(Work& w, std::int64_t l, std::int64_t t) const;
    void layer1_input(Work& w, std::int64_t r0, std::int64_t r1) const;
    void attend_rows(Work& w, const float* mem, float* out, std::int64_t r0, std::int64_t r1) const;
    void step_by_step_forward(Work& w, const float* mem, float* out, bool sampling,
                              const StepInfo& step) const;
    void run_training_forward(const Tensor& memory, const Tensor* state, const Tensor& target,
                              Tensor& logits, Work& w, const StepInfo& step);
    void start_backward(Work& w) const;

    // Greedy and beam search: DecodeSearch (pipeline/core/decode_search.hpp) over these rows
    // (attention_decoder_search.cpp).
    void decode(const Tensor& memory, const Tensor* state, Tensor& hyp, Tensor& attn, Work& w);
    void start_rows(const Tensor* state, std::int64_t N, std::int64_t K, std::int64_t Ts, Work& w) const;
    void decode_step(const std::int32_t* tokens, std::int64_t N, std::int64_t K, std::int64_t Ts, Work& w,
                     const float* mem) const;
    void reorder_rows(const std::int32_t* parents, std::int64_t R, Work& w) const;

    // Configuration.
    bool lstm_;
    std::int64_t H_, L_, Ee_, A_;
    Scoring scoring_;
    bool input_feeding_, bridge_linear_;
    double dropout_, teacher_forcing_, init_scale_, forget_bias_;
    bool beam_search_;
    std::int64_t beam_;
    double length_penalty_, max_len_ratio_;
    std::int64_t max_len_offset_;
    std::uint64_t seed_;

    // Set in prepare.
    std::int64_t V_ = -1, E_ = -1, Ke_ = 0;  // vocabulary, memory channels, key channels
    std::int64_t Ec_ = 0;                    // context channels: E, or Db with attention none
    std::int64_t He_ = 0, De_ = 1;           // encoder state channels and directions read
    std::int32_t sos_ = -1, eos_ = -1, pad_ = -1;
    bool state_in_ = false;
    std::uint64_t dropout_seed_ = 0;
    std::vector<Param> params_;
    int i_emb_ = -1, i_wl_[2] = {-1, -1}, i_wi_[2] = {-1, -1}, i_b_[2] = {-1, -1};
    int i_bh_w_ = -1, i_bh_b_ = -1, i_bc_w_ = -1, i_bc_b_ = -1;
    int i_att_w_ = -1, i_att_wq_ = -1, i_att_v_ = -1;
    int i_comb_w_ = -1, i_comb_b_ = -1, i_out_w_ = -1, i_out_b_ = -1;

    std::vector<double> hyp_logp_, hyp_score_;
    bool last_fast_ = false;
};

}  // namespace rnnflow::stages
