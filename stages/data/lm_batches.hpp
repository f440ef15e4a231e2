// lm_batches: language-model batches over one id stream per split (truncated BPTT, as in
// Zaremba et al. 2014 and char-rnn).
//
//   in      (sequences)  SequenceSplit per split
//   ids     (ids)        i32 (T', N) time-major: ids[t][n]     = stream_n[b*T + t]
//   targets (ids)        i32 (T', N)             targets[t][n] = stream_n[b*T + t + 1]
//
// Per split the items are concatenated into one stream of len ids and cut into N = batch
// contiguous streams of L = (len - 1) / N ids (the remainder is dropped; stream n starts at n*L,
// its targets run one id ahead, so the last target of stream n is the first id of stream n+1).
// Batch b holds steps [b*T, min(b*T + T, L)): the last batch may be shorter, T' < T, and every
// column is then T' long, so `lengths` stays empty (all full). A pass yields ceil(L / T) batches;
// reset_state is true only on the first one, so the model carries its state across the rest.
// A split too short for N streams (L < 1) is an error at prepare.
// Not supported: shuffling, random BPTT lengths (AWD-LSTM), item boundaries as state resets.
// In restore mode there are no datasets and begin returns 0. A pass depends only on the split,
// so a resumed pass jumps to its batch (skip).
#pragma once

#include <map>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class LmBatches final : public DataSource {
public:
    static StageSchema schema();
    explicit LmBatches(const Params& p);
    void prepare(PrepareContext& ctx) override;
    std::int64_t begin(const std::string& split, std::int64_t epoch) override;
    bool next(Batch& batch) override;
    bool skip(std::int64_t batches) override;  // a batch is a position: jump there

private:
    std::int64_t batch_, bptt_;
    std::map<std::string, std::vector<std::int32_t>> streams_;  // split → concatenated ids
    // The current pass (only next() and begin() touch these).
    const std::vector<std::int32_t>* cur_ = nullptr;
    std::int64_t len_ = 0;       // L: ids per parallel stream
    std::int64_t batches_ = 0;   // batches in this pass
    std::int64_t pos_ = 0;       // next batch index
};

}  // namespace rnnflow::stages
