// conllu: sentences with one label per word from CoNLL-U files (Universal Dependencies).
//
//   text   (text)    TextSplit per split: each sentence's words joined by single spaces
//   tokens (tokens)  TokenSplit per split: the words exactly (the treebank's tokenisation)
//   labels (tokens)  TokenSplit per split: the chosen label column, one token per word
//   value skipped    sentences dropped as malformed (on_error: skip), all splits together
//
// A sentence is the word lines up to an empty line (or the end of the file). Lines starting
// with '#' are comments; multi-word token lines (ID "1-2": the surface form "don't" over the
// words "do" "n't") and empty nodes (ID "5.1", enhanced graphs) are skipped, so the words are
// the syntactic words with integer IDs. Word lines have 10 tab-separated fields; IDs count
// 1, 2, ... within a sentence. Malformed (a wrong field count, a bad or out-of-order ID, an empty
// chosen field): file:line, or the whole sentence dropped under on_error: skip.
// Restore mode reads nothing; in a prediction run (infer_lines) each input line is one sentence
// of split "infer": text = the line, tokens = its whitespace-separated words, no labels.
// Not supported: surface forms from multi-word tokens as the words (the syntactic words are
// read), the enhanced graph, sentence-level metadata other than skipping it.
#pragma once

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class Conllu final : public DataStage {
public:
    static StageSchema schema();
    explicit Conllu(const Params& p);
    void prepare(PrepareContext& ctx) override;
    std::int64_t value(const std::string& name) const override;

private:
    Params params_;
    int word_col_, label_col_;  // 0-based field indices
    std::int64_t skipped_ = 0;
};

}  // namespace rnnflow::stages
