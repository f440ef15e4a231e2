// vocabulary: fits token ↔ id on the training split and encodes every split.
//
//   in    (tokens)     TokenSplit per split (TokenSplit::spec is kept with the vocabulary)
//   out   (sequences)  SequenceSplit per split the input has; PortInfo classes = size
//   vocab (vocab)      PortInfo vocab = the fitted rnnflow::Vocabulary, classes = size
//   value size         number of ids, specials included (known after prepare)
//
// Ids: the specials first, in the order given, then tokens with count >= min_count by
// descending count, ties by token text (bytewise), cut to max_size ids. A token equal to a
// special's text ("<unk>" in the data) maps to that special. Tokens not in the vocabulary map to
// <unk>; without <unk> such a token is an error naming it, the split and the 1-based item.
// Saves STATE/vocab.tsv when the run has a state folder; restore mode loads it instead of
// fitting (and outputs no sequences).
// Not supported: fitting on splits other than train, frequency smoothing, subword vocabularies,
// checking that a restored vocabulary matches this stage's parameters.
#pragma once

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class Vocabulary final : public DataStage {
public:
    static StageSchema schema();
    explicit Vocabulary(const Params& p);
    void prepare(PrepareContext& ctx) override;
    std::int64_t value(const std::string& name) const override;
    const std::shared_ptr<const rnnflow::Vocabulary>& vocab() const { return vocab_; }

private:
    std::int64_t min_count_, max_size_, size_cap_;
    std::vector<std::string> specials_;
    bool append_eos_;
    std::shared_ptr<const rnnflow::Vocabulary> vocab_;

    rnnflow::Vocabulary fit(const TokenSplit& train) const;
};

}  // namespace rnnflow::stages
