// Data parallelism: this process's columns of a batch (shard.hpp).
#include "shard.hpp"

#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "../core/error.hpp"

namespace rnnflow {

void take_shard(Batch& b, int rank, int count, Tensor& scratch) {
    double share = 1.0;
    for (Tensor& t : b.outputs) {
        if (t.rank() < 2) continue;
        const std::int64_t T = t.dim(0), N = t.dim(1);
        const std::int64_t lo = N * rank / count, hi = N * (rank + 1) / count;
        RNNFLOW_CHECK(hi > lo, "batch of ", N, " columns cannot be shared by ", count, " processes",
                      "use a batch size of at least the number of processes");
        const std::int64_t inner = t.numel() / (T * N);
        Shape shape = t.shape();
        shape[1] = hi - lo;
        scratch.resize(t.dtype(), shape);
        const std::size_t esz = dtype_size(t.dtype());
        const auto* src = static_cast<const std::byte*>(t.raw());
        auto* dst = static_cast<std::byte*>(scratch.raw());
        for (std::int64_t tt = 0; tt < T; ++tt)
            std::memcpy(dst + static_cast<std::size_t>(tt * (hi - lo) * inner) * esz,
                        src + static_cast<std::size_t>((tt * N + lo) * inner) * esz,
                        static_cast<std::size_t>((hi - lo) * inner) * esz);
        std::vector<std::int32_t> lengths;
        if (!t.lengths.empty()) lengths.assign(t.lengths.begin() + lo, t.lengths.begin() + hi);
        std::swap(t, scratch);
        t.lengths = std::move(lengths);
        share = static_cast<double>(hi - lo) / static_cast<double>(N);
    }
    if (!b.item_ids.empty()) {
        const auto N = static_cast<std::int64_t>(b.item_ids.size());
        const std::int64_t lo = N * rank / count, hi = N * (rank + 1) / count;
        b.item_ids = std::vector<std::int64_t>(b.item_ids.begin() + lo, b.item_ids.begin() + hi);
    }
    b.items = std::llround(static_cast<double>(b.items) * share);
}

}  // namespace rnnflow
