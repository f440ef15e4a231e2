// tokenize: text items → token sequences, per split, with a TokenizerSpec that travels on to the
// vocabulary (and so to prompts given to the trained run).
//
//   in  (text)    TextSplit per split
//   out (tokens)  TokenSplit per split that the input has; TokenSplit::spec = this stage's spec
//
// char: one token per UTF-8 code point (whitespace included). word: split at ASCII whitespace;
// split_punct makes each ASCII punctuation character a token of its own; keep_inner_punct keeps
// one between two word characters (ASCII letters or digits, or non-ASCII bytes) in the word.
// fold_numbers maps every ASCII digit to '0' (in both modes), so numbers share their shapes.
// Not supported: lowercasing beyond ASCII (lowercase leaves non-ASCII letters as they are),
// Unicode word boundaries or punctuation, subword units (BPE), normalisation (NFC).
// In restore mode there is no data: only the output info is set.
#pragma once

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class Tokenize final : public DataStage {
public:
    static StageSchema schema();
    explicit Tokenize(const Params& p);
    void prepare(PrepareContext& ctx) override;
    const TokenizerSpec& spec() const { return spec_; }

private:
    TokenizerSpec spec_;
};

}  // namespace rnnflow::stages
