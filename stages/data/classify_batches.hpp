// classify_batches: batches of whole sentences for classification (one label per sentence) and
// tagging (one label per token), bucketed by length.
//
//   tokens (sequences)  SequenceSplit per split: the token ids of each sentence
//   labels (sequences)  SequenceSplit per split: one id per item (level: sentence) or one per
//                       token (level: token); optional, and absent in prediction runs
//   words  (tokens)     optional: the TokenSplit the token ids were made from, for `chars`
//   ids    (ids)    i32 (T, N) + lengths: token ids, padded with <pad> (0 without one)
//   labels (ids)    i32 (1, N) lengths 1 (sentence), or (T, N) with the ids' lengths (token);
//                   in a split without labels (1, N) with lengths 0
//   chars  (ids)    i32 (Lc, T*N) + lengths (T*N): the characters of the word at (t, n) in
//                   column t*N + n, length = its characters (0 at padding), at most max_chars;
//                   char ids from a vocabulary fitted on the training words (<pad> 0, <unk> 1,
//                   then by count), saved as STATE/chars.tsv and loaded in restore/evaluate
//                   modes; PortInfo classes = its size. Without `words`: (1, T*N), lengths 0.
//
// A pass over a split: the item order is shuffled (train only, shuffle: true; seeded from the
// run seed and the epoch, so the same seed gives the same batches), then, with bucket: true,
// sorted by length within pools of `pool` batches (evaluation splits: the whole split), cut
// into batches of N (the last may be smaller), and the batch order is shuffled (train).
// Batch::item_ids gives each column's item index in the split. items = tokens in the batch.
// An empty sentence (0 tokens) is one placeholder token (<unk>, else <pad>, else id 0) of
// length 1 at sentence level and in prediction runs; at token level it has nothing to tag and
// is left out of labelled splits.
// Errors name the split and the 1-based item: a sentence label that is not one id, tags that do
// not match the tokens one to one, words that do not match the token ids.
// Not supported: truncating long sentences, a token budget per batch (N is fixed), multi-label.
#pragma once

#include <map>
#include <memory>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class ClassifyBatches final : public DataSource {
public:
    static StageSchema schema();
    explicit ClassifyBatches(const Params& p);
    void prepare(PrepareContext& ctx) override;
    std::int64_t begin(const std::string& split, std::int64_t epoch) override;
    bool next(Batch& batch) override;
    const std::shared_ptr<const rnnflow::Vocabulary>& char_vocab() const { return chars_; }

private:
    struct SplitData {
        std::vector<std::vector<std::int32_t>> ids;
        std::vector<std::vector<std::int32_t>> labels;  // empty when the split has none
        std::vector<std::vector<std::vector<std::int32_t>>> chars;  // per item, per token; empty without words
        std::vector<std::int64_t> item_ids;  // index in the split as the reader gave it
    };
    std::int64_t batch_;
    bool token_level_, bucket_, shuffle_;
    std::int64_t pool_, max_chars_;
    std::uint64_t seed_ = 0;
    std::int32_t pad_ = 0;
    bool with_chars_ = false;
    std::shared_ptr<const rnnflow::Vocabulary> chars_;
    std::map<std::string, SplitData> data_;
    // The current pass.
    const SplitData* cur_ = nullptr;
    std::vector<std::vector<std::size_t>> batches_;  // positions in cur_ per batch
    std::size_t pos_ = 0;
};

}  // namespace rnnflow::stages
