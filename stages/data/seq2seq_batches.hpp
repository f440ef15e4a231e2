// seq2seq_batches: batches of sentence pairs for encoder-decoder models, bucketed by length.
//
//   in  source  (sequences)  source id sequences per split (vocabulary with <pad>)
//   in  target  (sequences)  target id sequences per split (vocabulary with <pad> <sos> <eos>);
//                            none for the prediction split "infer"
//   out source      (ids) i32 (Ts, N): source ids, time-major, reversed when reverse_source;
//                         padded with the source <pad> id; lengths = source lengths
//   out target_in   (ids) i32 (Tt, N): <sos> y1 .. yn   (decoder input under teacher forcing)
//   out target_out  (ids) i32 (Tt, N): y1 .. yn <eos>   (loss targets), lengths n + 1 for both;
//                         padded with the target <pad> id. Split "infer": (1, N), lengths 0.
//
// Batching (stages/data/batch_common.hpp, shared with caption_batches): a pass sorts pairs by
// (source length, target length, index) into batches of similar length. Training: every epoch
// shuffles the pairs with a generator seeded from the run seed and the epoch, cuts them into
// pools of `pool` batches, sorts each pool by length, cuts it into batches and shuffles the
// batch order: every kept pair appears exactly once per epoch, the order is deterministic.
// Other splits: one sort by length, the same every pass.
// A batch holds at most `batch` pairs and, when batch_tokens > 0, at most batch_tokens padded
// tokens: N * max(Ts, Tt) <= batch_tokens (a single longer pair gets a batch of its own).
// Filtering (training split only): pairs whose source is longer than max_source_length or whose
// target (with <eos>) is longer than max_target_length (0 = no limit), and pairs with an empty
// source, are left out; their count is printed to standard error at prepare and given by
// value 'dropped'. Other splits keep every pair (an empty source there is an error naming the
// item: an encoder cannot read it).
// Batch::item_ids: the pair's index in its split as the reader numbered it (0-based).
// Batch::items: target tokens (target_out lengths) per batch; source tokens in split "infer".
// Not supported: batches sorted by target length, several target sentences per source (for
// several references per item, as in captioning, see caption_batches with groups).
#pragma once

#include <map>

#include "batch_common.hpp"
#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class Seq2seqBatches final : public DataSource {
public:
    static StageSchema schema();
    explicit Seq2seqBatches(const Params& p);
    void prepare(PrepareContext& ctx) override;
    std::int64_t begin(const std::string& split, std::int64_t epoch) override;
    bool next(Batch& batch) override;
    std::int64_t value(const std::string& name) const override;

private:
    struct Split {
        std::vector<std::vector<std::int32_t>> source, target;  // kept pairs
        std::vector<std::int64_t> ids;                           // their item index in the split
        bool has_target = false;
    };
    std::int64_t batch_, batch_tokens_, pool_, max_source_, max_target_;
    bool reverse_, shuffle_;
    std::int32_t src_pad_ = 0;
    batching::TargetIds target_ids_;
    std::uint64_t seed_ = 0;
    std::int64_t dropped_ = 0;
    std::map<std::string, Split> splits_;
    // The current pass.
    const Split* cur_ = nullptr;
    std::vector<std::vector<std::int64_t>> batches_;  // positions into cur_'s vectors
    std::size_t pos_ = 0;
    std::vector<const std::vector<std::int32_t>*> targets_;  // next()'s columns' targets
};

}  // namespace rnnflow::stages
