// subword: text → subword pieces with a SentencePiece model (BPE or unigram) trained on the
// training split.
//
//   in  (text)    TextSplit per split
//   out (tokens)  TokenSplit per split the input has: each item's pieces ("▁the", "▁cat", "s"),
//                 '▁' (U+2581) marking a word start, as SentencePiece writes them
//   value size    pieces in the model (known after prepare)
//
// fit: trains on the train split's non-empty items (SentencePiece's trainer, in memory, with
// num_threads = the run's threads and hard_vocab_limit off, so vocab_size is an upper bound on
// small data), saves the model as STATE/subword.model (SentencePiece's own format, readable by
// spm_encode) and encodes every split. restore and evaluate modes load that file instead (a
// prediction run encodes the "infer" lines with it). Text is normalised by SentencePiece's
// default rule (nmt_nfkc) first.
// The pieces go on to `vocabulary`, which gives them ids (<unk> for pieces unseen in training).
// Errors: no training split or no text in it; a trainer failure with SentencePiece's message.
// Not supported: subword sampling (regularisation), user-defined symbols, other normalisation
// rules, prompts for `rnnflow generate` (the TokenizerSpec kept with the vocabulary cannot apply
// the model; its mode is "word").
#pragma once

#include <memory>

#include "pipeline/core/stage.hpp"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace rnnflow::stages {

class Subword final : public DataStage {
public:
    static StageSchema schema();
    explicit Subword(const Params& p);
    ~Subword() override;
    void prepare(PrepareContext& ctx) override;
    std::int64_t value(const std::string& name) const override;

private:
    std::string model_type_;
    std::int64_t vocab_size_;
    double coverage_;
    std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

}  // namespace rnnflow::stages
