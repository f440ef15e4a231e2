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
// extend_from: FILE (fit mode): the tokens of a GloVe/word2vec text file (read as embedding's
// pretrained: reads them) that are not already ids get ids after the training tokens, in file
// order, with their training count (0 if unseen; a token below min_count can come back this
// way); max_size cuts and size_cap counts them too. So words absent from the training text but
// in the vectors file are looked up (exactly: no lower-casing here) and take their vectors,
// instead of all becoming <unk>. The number added goes to standard error.
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
    std::string extend_from_;
    std::shared_ptr<const rnnflow::Vocabulary> vocab_;

    struct Extended {
        std::int64_t added = 0, seen = 0;  // ids added by extend_from; of them seen in training
    };
    rnnflow::Vocabulary fit(const TokenSplit& train, const std::filesystem::path& base_dir, Extended* extended) const;
};

}  // namespace rnnflow::stages
