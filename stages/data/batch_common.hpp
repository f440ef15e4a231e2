// Shared pieces of the encoder-decoder batch sources (seq2seq_batches, caption_batches): the
// order of a pass (length buckets, the seeded per-epoch shuffle) and the teacher-forcing target
// tensors.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages::batching {

// How a pass cuts a split: at most `batch` positions per batch and, when batch_tokens > 0, at
// most batch_tokens padded steps, N * max(len) <= batch_tokens (a single longer item gets a
// batch of its own); pool: positions sorted together in training (`pool` batches' worth).
struct BatchLimits {
    std::int64_t batch = 64, batch_tokens = 0, pool = 50;
};

// Positions 0..n-1 of a split cut into batches for one pass. `shorter(a, b)`: a strict order by
// length (ties by position); len(p): the padded length position p needs.
// Training with shuffle: the positions are shuffled with a generator seeded from `seed` and the
// epoch, sorted by length within pools of pool * batch positions, each pool cut separately (no
// batch mixes two pools' lengths), then the batch order is shuffled. Otherwise: one sort by
// length. Our own Fisher-Yates over mt19937_64: std::shuffle's use of the generator is
// implementation-defined, so the order would differ between standard libraries.
std::vector<std::vector<std::int64_t>> pass_batches(std::int64_t n, bool shuffle, std::uint64_t seed,
                                                    std::int64_t epoch, const BatchLimits& limits,
                                                    const std::function<bool(std::int64_t, std::int64_t)>& shorter,
                                                    const std::function<std::int64_t(std::int64_t)>& len);

// The targets of a batch under teacher forcing, column n from targets[n] (y1 .. yk):
//   tin  i32 (Tt, N): <sos> y1 .. yk,  tout i32 (Tt, N): y1 .. yk <eos>, lengths k + 1 for both,
// Tt = max(k) + 1, padded with `pad`. targets[n] nullptr (no target: prediction): a column of
// length 0; Tt is at least 1. Returns the target tokens (sum of k + 1).
struct TargetIds {
    std::int32_t pad = 0, sos = 0, eos = 0;
};
// The target vocabulary's <pad> <sos> <eos> from the `target` input's PortInfo; sets the
// outputs target_in and target_out (ids of that vocabulary). Throws when one is missing.
TargetIds target_ids(PrepareContext& ctx);
std::int64_t fill_targets(const std::vector<const std::vector<std::int32_t>*>& targets, const TargetIds& ids,
                          Tensor& tin, Tensor& tout);

}  // namespace rnnflow::stages::batching
