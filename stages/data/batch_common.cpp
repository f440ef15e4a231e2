#include "batch_common.hpp"

#include <algorithm>
#include <random>

namespace rnnflow::stages::batching {

namespace {

// Positions (in batch order) cut into batches within the limits.
std::vector<std::vector<std::int64_t>> cut_batches(const std::vector<std::int64_t>& order, const BatchLimits& limits,
                                                   const std::function<std::int64_t(std::int64_t)>& len) {
    std::vector<std::vector<std::int64_t>> out;
    std::vector<std::int64_t> cur;
    std::int64_t longest = 0;
    for (std::int64_t p : order) {
        const std::int64_t l = len(p);
        const std::int64_t next_longest = std::max(longest, l);
        const bool full = static_cast<std::int64_t>(cur.size()) >= limits.batch ||
                          (limits.batch_tokens > 0 && !cur.empty() &&
                           next_longest * static_cast<std::int64_t>(cur.size() + 1) > limits.batch_tokens);
        if (full) {
            out.push_back(std::move(cur));
            cur.clear();
            longest = 0;
        }
        cur.push_back(p);
        longest = std::max(longest, l);
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
}

}  // namespace

std::vector<std::vector<std::int64_t>> pass_batches(std::int64_t n, bool shuffle, std::uint64_t seed,
                                                    std::int64_t epoch, const BatchLimits& limits,
                                                    const std::function<bool(std::int64_t, std::int64_t)>& shorter,
                                                    const std::function<std::int64_t(std::int64_t)>& len) {
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
    if (!shuffle) {
        std::sort(order.begin(), order.end(), shorter);
        return cut_batches(order, limits, len);
    }
    std::mt19937_64 rng(seed ^ (0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(epoch + 1)));
    auto shuffled = [&rng](auto& v) {
        for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<std::size_t>(rng() % i)]);
    };
    shuffled(order);
    const auto pool = static_cast<std::size_t>(limits.pool * limits.batch);
    std::vector<std::vector<std::int64_t>> batches;
    for (std::size_t at = 0; at < order.size(); at += pool) {
        const auto b = order.begin() + static_cast<std::ptrdiff_t>(at);
        const auto e = order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), at + pool));
        std::sort(b, e, shorter);
        for (auto& batch : cut_batches(std::vector<std::int64_t>(b, e), limits, len)) batches.push_back(std::move(batch));
    }
    shuffled(batches);
    return batches;
}

TargetIds target_ids(PrepareContext& ctx) {
    const PortInfo& ti = ctx.input_info("target");
    RNNFLOW_CHECK(ti.vocab != nullptr, "input 'target' carries no vocabulary; connect a vocabulary stage's out");
    const TargetIds ids{ti.vocab->special("<pad>"), ti.vocab->special("<sos>"), ti.vocab->special("<eos>")};
    if (ids.pad < 0 || ids.sos < 0 || ids.eos < 0)
        throw Error("the target vocabulary lacks <pad>, <sos> or <eos>",
                    "give the target vocabulary specials: [<pad>, <unk>, <sos>, <eos>]");
    ctx.set_output_info("target_in", PortInfo{PortType::ids, -1, ti.classes, ti.vocab});
    ctx.set_output_info("target_out", PortInfo{PortType::ids, -1, ti.classes, ti.vocab});
    return ids;
}

std::int64_t fill_targets(const std::vector<const std::vector<std::int32_t>*>& targets, const TargetIds& ids,
                          Tensor& tin, Tensor& tout) {
    const auto N = static_cast<std::int64_t>(targets.size());
    std::int64_t tt = 1;
    for (const auto* y : targets)
        if (y) tt = std::max(tt, static_cast<std::int64_t>(y->size()) + 1);
    tin.resize(DType::i32, {tt, N});  // (Tt, N)
    tout.resize(DType::i32, {tt, N});
    std::fill_n(tin.data<std::int32_t>(), tin.numel(), ids.pad);
    std::fill_n(tout.data<std::int32_t>(), tout.numel(), ids.pad);
    tin.lengths.assign(static_cast<std::size_t>(N), 0);
    tout.lengths.assign(static_cast<std::size_t>(N), 0);
    std::int32_t* yi = tin.data<std::int32_t>();
    std::int32_t* yo = tout.data<std::int32_t>();
    std::int64_t tokens = 0;
    for (std::int64_t n = 0; n < N; ++n) {
        const auto* b = targets[static_cast<std::size_t>(n)];
        if (!b) continue;
        const auto len = static_cast<std::int64_t>(b->size()) + 1;
        yi[n] = ids.sos;
        for (std::size_t t = 0; t < b->size(); ++t) {
            yi[(static_cast<std::int64_t>(t) + 1) * N + n] = (*b)[t];
            yo[static_cast<std::int64_t>(t) * N + n] = (*b)[t];
        }
        yo[static_cast<std::int64_t>(b->size()) * N + n] = ids.eos;
        tin.lengths[static_cast<std::size_t>(n)] = static_cast<std::int32_t>(len);
        tout.lengths[static_cast<std::size_t>(n)] = static_cast<std::int32_t>(len);
        tokens += len;
    }
    return tokens;
}

}  // namespace rnnflow::stages::batching
