// char_word_encoder: a vector per word from its characters (Ling et al. 2015; Plank et al. 2016):
// a character embedding and a small recurrent net over each word's characters, the final states
// of both directions concatenated.
//
// Ports:  chars  ids i32 (Lc, T*N) + lengths: column t*N + n holds the characters of the word at
//                (t, n), its length the word's length in characters; PortInfo classes = the
//                character vocabulary size Vc
//         like   ids i32 (T, N) + lengths: the word ids the characters belong to (for T, N and
//                which words are padding; its values are not read)
//         out    tensor f32 (T, N, D) + like's lengths, D = H (left_to_right) or 2H
//                (bidirectional: [l2r state after the last character, r2l state after the
//                first]); 0 at padded words and for words of 0 characters
// The recurrent part is the `lstm` / `gru` stage implementation (recurrent.hpp) used as a
// component, so its padding rules hold: each word runs over its own characters only.
// Params: char_embedding (Vc, E); rnn.<recurrent param> for the inner net (layer0.l2r.weights_layer
// (E, G, H), ...). The inner stage keeps its own copies of the weights: they are refreshed from
// these params before every forward, and its gradients are moved into these after backward.
// Not supported: several layers, a convolutional character encoder, dropout inside.
#pragma once

#include <memory>
#include <vector>

#include "pipeline/core/stage.hpp"
#include "recurrent.hpp"

namespace rnnflow::stages {

class CharWordEncoder final : public ModelStage {
public:
    static StageSchema schema();
    explicit CharWordEncoder(const Params& p);
    ~CharWordEncoder() override;

    void prepare(PrepareContext& ctx) override;
    void forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) override;
    void backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                  Grads& diff_src, const StepInfo& step) override;
    std::span<Param> params() override { return params_; }

    std::int64_t out_channels() const { return hidden_ * (bidirectional_ ? 2 : 1); }

private:
    struct Work;  // per-batch tensors kept from forward to backward (in Saved::extra)

    Cell cell_;
    std::int64_t char_dim_, hidden_;
    bool bidirectional_;
    double init_scale_;
    std::string initializer_;
    std::int64_t vocab_ = 0;  // Vc after prepare
    StageSchema inner_schema_;
    std::unique_ptr<Recurrent> inner_;
    std::vector<Param> params_;  // char_embedding, then the inner net's params renamed rnn.*
};

}  // namespace rnnflow::stages
