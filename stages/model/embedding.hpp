// embedding: out[t, n, :] = weight[in[t, n], :] for t < length(n); 0 at padded steps.
//
// Ports:  in   ids    i32 (T, N) + lengths; ids in [0, V), V = the input port's `classes`
//         out  tensor f32 (T, N, C) + the same lengths, C = `dim`
// Param:  weight (V, C), row v is the vector of id v; init uniform [-init_scale, init_scale].
// Backward: weight.grad[in[t, n], :] += diff_out[t, n, :] over valid steps, in (t, n) order
// (sequential, so deterministic); ids get no gradient; padded steps contribute nothing.
// pretrained: FILE (fit mode only; restored runs take the weights from their checkpoint): word
// vectors in the GloVe text format ("token v1 ... vC" per line) or word2vec's (the same after a
// "count C" header line), read line by line keeping only the vocabulary's tokens. A vocabulary
// token takes the file's vector of the same text, else of its ASCII-lowercased text (GloVe is
// lowercase); specials and tokens not found keep the uniform initialisation. The coverage (types
// found, exactly and by lowercase, and the share of training token occurrences they cover) is
// printed to standard error. Errors: file:line for a row with the wrong count of numbers or a
// field that is not a number; a file dimension other than `dim` (hint: set dim to it).
// freeze: true makes `weight` untrained (Param::trainable false): the optimiser leaves every row,
// pretrained or not, as initialised.
// Not supported: padding_idx, max_norm renormalisation, sparse gradients, weight tying (the
// engine's `tie:` would share `weight`), the binary word2vec format, freezing only the
// pretrained rows.
#pragma once

#include <array>
#include <memory>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class Embedding final : public ModelStage {
public:
    static StageSchema schema();
    explicit Embedding(const Params& p);

    void prepare(PrepareContext& ctx) override;
    void forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) override;
    void backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                  Grads& diff_src, const StepInfo& step) override;
    std::span<Param> params() override { return params_; }

    // After prepare: the vocabulary of the ids on input 'in' (nullptr when they come from none)
    // and the weight (V, C), row v the vector of token v (`rnnflow vectors` writes them out).
    const rnnflow::Vocabulary* vocabulary() const { return vocab_info_.get(); }
    const Tensor& weight() const { return params_[0].value; }

private:
    std::int64_t dim_;     // C
    double init_scale_;
    std::int64_t vocab_ = 0;  // V, known after prepare
    std::shared_ptr<const rnnflow::Vocabulary> vocab_info_;  // the input's vocabulary, if any
    std::string pretrained_;
    bool freeze_;
    // Copies the file's vectors into rows of `weight`; returns the coverage line.
    std::string load_pretrained(const rnnflow::Vocabulary& vocab, const std::filesystem::path& file, float* w) const;
    std::array<Param, 1> params_;  // weight (V, C)
};

}  // namespace rnnflow::stages
