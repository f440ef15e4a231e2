// sampler: generates text from a trained language model, one token at a time.
//
//   logits (tensor)  f32 (T, N, V) from the model, given ids (T, N) by the ModelRunner
//   vocab  (vocab)   the vocabulary (its tokenizer reads the prime)
//
// The prime is tokenised with the vocabulary's tokenizer and run through the model from a zero
// state (ids (T, 1)); then each next id is drawn from softmax(logits[last step] / temperature)
// over the top_k largest logits, cut to the top_p nucleus, and fed back as ids (1, 1). <pad>,
// <unk> and <sos> are never drawn; <eos> is written as "\n" (char and word mode alike). Prime
// tokens not in the vocabulary become <unk> (an error without <unk>) but are written back as
// given. Empty prime: start from <eos> when the vocabulary has it (not written), else from one
// token drawn uniformly (written, counted in length). Drawing: std::mt19937_64 seeded with `seed`, u = 53 random bits / 2^53,
// the first id whose cumulative weight (double) exceeds u × total; ties in top_k keep the
// lower id. Same seed, model and settings → same text on every machine.
// Nucleus (top-p, Holtzman et al., "The Curious Case of Neural Text Degeneration", 2020): after
// top_k and temperature, the candidates sorted by probability (ties: lower id first) are cut to
// the shortest prefix whose probabilities sum to at least top_p (always at least one token) and
// renormalised; top_p 1 cuts nothing (the same draws as without it), 0 keeps the most likely.
// A request's values override the parameters: prime when non-empty, length when > 0, seed,
// temperature, top_k and top_p when >= 0; temperature 0 means greedy (argmax).
// Not supported: beam search, min-p / typical sampling, batches of samples, stop strings.
#pragma once

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class Sampler final : public SamplerStage {
public:
    static StageSchema schema();
    explicit Sampler(const Params& p);
    void prepare(PrepareContext& ctx) override;
    std::string generate(ModelRunner& model, const SampleRequest& req) override;

private:
    double temperature_;
    std::int64_t top_k_, seed_, length_;
    std::string prime_;
    double top_p_;
    std::shared_ptr<const Vocabulary> vocab_;
};

}  // namespace rnnflow::stages
