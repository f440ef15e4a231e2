// conll_columns: sentences with one label per word from CoNLL-style column files (CoNLL-2000
// chunking, CoNLL-2002/2003 named entities, and the like).
//
//   text   (text)    TextSplit per split: each sentence's words joined by single spaces
//   tokens (tokens)  TokenSplit per split: the words, digits folded to 0 with digits: zero
//   labels (tokens)  TokenSplit per split: the label column, one tag per word, in `scheme`
//   words  (tokens)  TokenSplit per split: the words exactly as in the file (for evaluators'
//                    prediction files and printed entities)
//   value skipped    sentences dropped as malformed (on_error: skip), all splits together
//
// One word per line, its columns separated by spaces or tabs (runs of them); a sentence is the
// word lines up to an empty line (or the end of the file). Lines whose first column is
// -DOCSTART- (document boundaries in CoNLL-2003) are skipped. Columns count from 0; a negative
// column counts from the end (-1 = the last, where CoNLL files keep the label).
// Tags: with scheme other than `file`, each sentence's tags are read as chunks by conlleval's
// rules (pipeline/core/tag_scheme.hpp) and written in that scheme, e.g. CoNLL-2003's IOB1 as
// IOBES for training; entity_metrics writes predictions back in the file's scheme (its
// file_scheme parameter). Tags to convert must be "O" or B-, I-, E-, S- with a type.
// Digit folding (Lample et al. 2016): every ASCII digit of `tokens` becomes 0, so "1996" and
// "2003" share one embedding; `words` and `text` keep the file's words.
// Malformed (too few columns, an empty field, a bad tag when converting): file:line, or the whole
// sentence dropped under on_error: skip.
// Restore mode reads nothing; in a prediction run (infer_lines) each input line is one sentence
// of split "infer": text = the line, words = its whitespace-separated words, tokens = the same
// folded as in training, no labels.
// Not supported: several label columns at once, features from other columns (POS, chunk tags),
// IOE schemes.
#pragma once

#include "pipeline/core/stage.hpp"
#include "pipeline/core/tag_scheme.hpp"

namespace rnnflow::stages {

class ConllColumns final : public DataStage {
public:
    static StageSchema schema();
    explicit ConllColumns(const Params& p);
    void prepare(PrepareContext& ctx) override;
    std::int64_t value(const std::string& name) const override;

private:
    struct Sentences {
        TextSplit text;
        TokenSplit tokens, labels, words;
    };
    Sentences read_file(const std::vector<std::string>& lines, const std::string& file, bool skip,
                        const std::string& stage_id);
    std::vector<std::string> fold(const std::vector<std::string>& words) const;

    Params params_;
    std::int64_t word_col_, label_col_;
    std::optional<TagScheme> scheme_;  // nullopt: the file's tags unchanged
    bool fold_digits_;
    std::int64_t skipped_ = 0;
};

}  // namespace rnnflow::stages
