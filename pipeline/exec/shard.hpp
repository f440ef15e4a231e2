// Data parallelism: the share of a batch that one process trains on (RunOptions::shard_rank and
// shard_count). Each of `count` processes keeps columns [N*rank/count, N*(rank+1)/count) of the
// batch's N columns, so that together they cover the batch once; the gradients are then combined
// by RunOptions::reduce_gradients.
#pragma once

#include "../core/stage.hpp"

namespace rnnflow {

// Keeps this process's columns of every time-major (T, N, ...) output of `b` (outputs of rank
// below 2 stay whole) with their lengths, its item ids, and its item count scaled to the share.
// `scratch`: a buffer reused from batch to batch. Throws when a batch has fewer columns than
// there are processes.
void take_shard(Batch& b, int rank, int count, Tensor& scratch);

}  // namespace rnnflow
