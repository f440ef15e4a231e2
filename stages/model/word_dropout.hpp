// word_dropout: in training, replace token ids by <unk> at random, so that the model learns to
// tag and classify from the context and from the spelling (char_word_encoder) of words it has
// not seen; the identity in evaluation and prediction.
//
// Ports:  in   ids i32 (T, N) + lengths, from a vocabulary with <unk> (PortInfo vocab)
//         out  ids i32 (T, N) + the same lengths
// A valid token of id v becomes <unk> with probability p, or with alpha > 0, alpha / (alpha +
// count(v)) (count in the training split, so rare words are replaced more often; Kiperwasser &
// Goldberg 2016). Specials (<pad>, <unk>, ...) are never replaced. The choice for token (t, n)
// is a hash of (the stage's seed, epoch, batch, t, n): runs repeat exactly.
// Not supported: replacing by a random word instead of <unk>. Not differentiable (ids).
#pragma once

#include <memory>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class WordDropout final : public ModelStage {
public:
    static StageSchema schema();
    explicit WordDropout(const Params& p);

    void prepare(PrepareContext& ctx) override;
    void forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) override;

private:
    double p_, alpha_;
    std::int32_t unk_ = -1;
    std::int64_t specials_ = 0;
    std::vector<float> prob_;  // replacement probability per id
    std::uint64_t seed_ = 0;
};

}  // namespace rnnflow::stages
