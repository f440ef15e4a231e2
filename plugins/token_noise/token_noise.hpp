// token_noise: tokens -> tokens with noise on chosen splits (the training split by default):
// adjacent swaps, then dropped tokens — a cheap augmentation that makes a model less sure of
// exact spelling (char mode) or word order (word mode).
//
// Ports:  in   tokens  TokenSplit per split
//         out  tokens  TokenSplit per split that the input has; the tokenizer spec passes on
// Per item, left to right: with probability `swap` a token trades places with the next one
// (the pair is then skipped, so a token moves at most one place); then each token is dropped
// with probability `drop`. Other splits pass through unchanged.
// Deterministic: one generator seeded from `seed` (or, with seed -1, from the run's seed and
// the stage id), draws turned into doubles by bit arithmetic, not std::uniform_real_distribution
// (whose output the C++ standard leaves to the library).
// Not supported: fresh noise every epoch (data stages run once, before training), keeping
// special tokens out of the noise.
#pragma once

#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <rnnflow/stage.hpp>

namespace token_noise_plugin {

class TokenNoise final : public rnnflow::DataStage {
public:
    static rnnflow::StageSchema schema();
    explicit TokenNoise(const rnnflow::Params& p);
    void prepare(rnnflow::PrepareContext& ctx) override;

    // The noise on one token sequence (exposed for tests).
    std::vector<std::string> apply(const std::vector<std::string>& tokens, std::mt19937_64& rng) const;

private:
    double drop_, swap_;
    std::int64_t seed_;
    std::set<std::string> splits_;
};

}  // namespace token_noise_plugin
