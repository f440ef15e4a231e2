// caption_batches: batches of (features, caption) pairs for a decoder conditioned on dense
// inputs — attention over image regions (Xu et al. 2015) or one feature vector (Vinyals et al.
// 2015) — bucketed by length like seq2seq_batches.
//
//   in  features  (frames)     FrameSplit per split: f32 (F_i, D) per pair (features reader)
//   in  target    (sequences)  caption id sequences per split, aligned with features
//                              (vocabulary with <pad> <sos> <eos>); none for split "infer"
//   out memory     (tensor) f32 (F, N, D): column n's rows r < F_n at memory[r][n], zero after;
//                           lengths = F_n. A decoder attends over it through a projection
//                           (memory: linear over caption_batches.memory) as over an encoder's.
//   out target_in  (ids) i32 (Tt, N): <sos> y1 .. yn   (decoder input under teacher forcing)
//   in  groups    (text)       optional: the item of each pair (the features reader's `items`);
//                              evaluation passes (valid, test) then give each item once, as
//                              its first pair in the split (a prediction run keeps every line)
//   out target_out (ids) i32 (Tt, N): y1 .. yn <eos>   (loss targets), lengths n + 1 for both;
//                        padded with the target <pad> id. Split "infer": (1, N), lengths 0.
//   out state      (state) f32 (1, 1, N, D): the mean of each column's feature rows (its vector
//                        for (N, D) features); directions 1. The decoder's bridge maps it to its
//                        initial state (Show and Tell; Xu et al. initialise from this mean), and
//                        attention: none uses it as the fixed context C.
//
// Batching (as seq2seq_batches, stages/data/batch_common.hpp): a pass sorts pairs by (rows,
// caption length, index) into batches of similar length; training with shuffle reorders per
// epoch with a generator seeded from the run seed and the epoch, within pools of `pool`
// batches, then shuffles the batch order; other splits: one sort, the same every pass. A batch
// holds at most `batch` pairs and, when batch_tokens > 0, at most batch_tokens padded steps,
// N * max(F, Tt). Training pairs whose caption (with <eos>) is longer than max_target_length
// are left out (value 'dropped', printed at prepare).
// Batch::item_ids: the pair's index in its split (the features reader's order; its `items`
// output names the item of each pair). Batch::items: caption tokens (target_out lengths).
// Not supported: items of different D in one split, several captions per batch column, learned
// pooling for state (use the mean, or attention over memory).
#pragma once

#include <map>

#include "batch_common.hpp"
#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class CaptionBatches final : public DataSource {
public:
    static StageSchema schema();
    explicit CaptionBatches(const Params& p);
    void prepare(PrepareContext& ctx) override;
    std::int64_t begin(const std::string& split, std::int64_t epoch) override;
    bool next(Batch& batch) override;
    std::int64_t value(const std::string& name) const override;

private:
    struct Split {
        std::shared_ptr<const FrameSplit> frames;                // all pairs of the split
        std::vector<std::vector<std::int32_t>> target;           // kept pairs' captions
        std::vector<std::int64_t> ids;                           // kept pairs' index in the split
        bool has_target = false;
    };
    std::int64_t batch_, batch_tokens_, pool_, max_target_;
    bool shuffle_;
    batching::TargetIds target_ids_;
    std::int64_t dim_ = 0;
    std::uint64_t seed_ = 0;
    std::int64_t dropped_ = 0;
    std::map<std::string, Split> splits_;
    // The current pass.
    const Split* cur_ = nullptr;
    std::vector<std::vector<std::int64_t>> batches_;  // positions into cur_'s vectors
    std::size_t pos_ = 0;
    std::vector<const std::vector<std::int32_t>*> targets_;  // next()'s columns' captions

    std::int64_t rows(const Split& s, std::int64_t p) const;
    static std::vector<bool> first_of_item(const PrepareContext& ctx, const std::string& split,
                                           const FrameSplit& fr);
    void mean_rows(const Tensor& memory, Tensor& state) const;
};

}  // namespace rnnflow::stages
