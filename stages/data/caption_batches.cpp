#include "caption_batches.hpp"

#include <algorithm>
#include <cstring>
#include <iostream>
#include <set>
#include <string_view>


namespace rnnflow::stages {

StageSchema CaptionBatches::schema() {
    return StageSchema("caption_batches",
                       "batches of (features, caption) pairs bucketed by length: memory, <sos> caption, caption <eos>",
                       Role::source)
        .input("features", PortType::frames, "f32 (F, D) per pair (the features reader)")
        .input("target", PortType::sequences, "caption id sequences per split (vocabulary with <pad>, <sos>, <eos>)")
        .optional_input("groups", PortType::text,
                        "the item of each pair (the features reader's items): evaluation passes then "
                        "give one column per item, its first pair")
        .output("memory", PortType::tensor, "f32 (F, N, D) the pairs' feature rows, zero-padded; lengths = rows")
        .output("target_in", PortType::ids, "i32 (Tt, N) <sos> y1 .. yn, padded with the target <pad>")
        .output("target_out", PortType::ids, "i32 (Tt, N) y1 .. yn <eos>, same lengths as target_in")
        .output("state", PortType::state,
                "f32 (1, 1, N, D): the mean of each pair's feature rows, one vector per column, for a "
                "decoder's bridge (Show and Tell) or its fixed context (attention: none)")
        .param_int("batch", 64, Range{1.0, 65536.0}, "at most this many pairs per batch")
        .param_int("batch_tokens", 0, Range{0.0, 1e9},
                   "also at most this many padded steps, N * max(F, Tt), per batch; 0 = no limit")
        .param_int("pool", 50, Range{1.0, 1e6},
                   "training: pairs are sorted by length within pools of this many batches")
        .param_bool("shuffle", true, "training: shuffle pairs and batches every epoch (seeded)")
        .param_int("max_target_length", 0, Range{0.0, 1e7},
                   "training: leave out pairs with a longer caption (tokens, <eos> included); 0 = no limit")
        .value("dropped", "training pairs left out by the length filter")
        .details("Pairs are sorted by (feature rows, caption length) into batches of similar length; "
                 "training shuffles per epoch with a generator seeded from the run seed and the "
                 "epoch, within pools of `pool` batches, then shuffles the batch order (as "
                 "seq2seq_batches). Every pair appears once per pass; batch item ids are the pairs' "
                 "indices in their split. memory feeds a decoder through a projection: "
                 "attention_decoder's memory = linear over caption_batches.memory. state is the mean "
                 "of the rows (Xu et al. 2015 initialise the decoder from it; for (N, D) features it "
                 "is the vector itself). With groups connected, passes other than training give "
                 "each item once (its first pair in the split): decoding and evaluation do not "
                 "repeat per caption; the metric takes every caption of the item as a reference.");
}

CaptionBatches::CaptionBatches(const Params& p)
    : batch_(p.get_int("batch")), batch_tokens_(p.get_int("batch_tokens")), pool_(p.get_int("pool")),
      max_target_(p.get_int("max_target_length")), shuffle_(p.get_bool("shuffle")) {}

void CaptionBatches::prepare(PrepareContext& ctx) {
    target_ids_ = batching::target_ids(ctx);
    dim_ = ctx.input_info("features").channels;
    ctx.set_output_info("memory", PortInfo{PortType::tensor, dim_, -1, nullptr});
    ctx.set_output_info("state", PortInfo{PortType::state, dim_, -1, nullptr, 1});
    const bool grouped = ctx.connected("groups");
    seed_ = ctx.rng()();

    splits_.clear();
    dropped_ = 0;
    std::int64_t train_total = 0;
    for (const auto& name : ctx.splits()) {
        if (!ctx.has_input("features", name)) continue;
        Split s;
        s.frames = std::any_cast<const std::shared_ptr<const FrameSplit>&>(ctx.input_any("features", name));
        const FrameSplit& fr = *s.frames;
        RNNFLOW_CHECK(fr.dim == dim_, "split '", name, "' (", fr.origin, "): features of D = ", fr.dim,
                      ", the port says ", dim_);
        const SequenceSplit* tgt = ctx.has_input("target", name) ? &ctx.input<SequenceSplit>("target", name) : nullptr;
        if (tgt && tgt->items.size() != fr.items.size())
            throw Error(detail::concat("split '", name, "': ", fr.items.size(), " feature items (", fr.origin, ") but ",
                                       tgt->items.size(), " captions (", tgt->origin, ")"),
                        "features and captions must come from one reader (features)");
        if (!tgt && name != "infer")
            throw Error(detail::concat("split '", name, "' has features but no captions"),
                        "connect target to the vocabulary over the same reader's captions");
        s.has_target = tgt != nullptr;
        const bool train = name == "train";
        const std::vector<bool> first = grouped && !train && name != "infer" ? first_of_item(ctx, name, fr) : std::vector<bool>{};
        for (std::size_t i = 0; i < fr.items.size(); ++i) {
            if (!first.empty() && !first[i]) continue;
            if (train) {
                ++train_total;
                if (max_target_ > 0 && static_cast<std::int64_t>(tgt->items[i].size()) + 1 > max_target_) {
                    ++dropped_;
                    continue;
                }
            }
            if (tgt) s.target.push_back(tgt->items[i]);
            s.ids.push_back(static_cast<std::int64_t>(i));
        }
        if (train && s.ids.empty())
            throw Error(detail::concat("no training pair is left after filtering (", dropped_, " longer than ",
                                       "max_target_length ", max_target_, ")"),
                        "raise max_target_length");
        splits_[name] = std::move(s);
    }
    if (dropped_ > 0)
        std::cerr << "caption_batches '" << ctx.stage_id() << "': left out " << dropped_ << " of " << train_total
                  << " training pairs (caption longer than max_target_length " << max_target_ << ")\n";
}

// Whether each pair of a split is the first of its item (groups: one key per pair).
std::vector<bool> CaptionBatches::first_of_item(const PrepareContext& ctx, const std::string& split,
                                                const FrameSplit& fr) {
    RNNFLOW_CHECK(ctx.has_input("groups", split), "split '", split, "' has features but no groups");
    const TextSplit& keys = ctx.input<TextSplit>("groups", split);
    if (keys.items.size() != fr.items.size())
        throw Error(detail::concat("split '", split, "': ", fr.items.size(), " feature items (", fr.origin,
                                   ") but ", keys.items.size(), " groups (", keys.origin, ")"),
                    "groups must be the items output of the reader that gives the features");
    std::vector<bool> first(keys.items.size(), false);
    std::set<std::string_view> seen;
    for (std::size_t i = 0; i < keys.items.size(); ++i) first[i] = seen.insert(keys.items[i]).second;
    return first;
}

std::int64_t CaptionBatches::value(const std::string& name) const {
    if (name == "dropped") return dropped_;
    return Stage::value(name);
}

std::int64_t CaptionBatches::rows(const Split& s, std::int64_t p) const {
    return s.frames->items[static_cast<std::size_t>(s.ids[static_cast<std::size_t>(p)])].rows;
}

std::int64_t CaptionBatches::begin(const std::string& split, std::int64_t epoch) {
    pos_ = 0;
    batches_.clear();
    auto it = splits_.find(split);
    cur_ = it == splits_.end() ? nullptr : &it->second;
    if (!cur_) return 0;
    const Split& s = *cur_;
    auto caption_len = [&s](std::int64_t p) {
        return s.has_target ? static_cast<std::int64_t>(s.target[static_cast<std::size_t>(p)].size()) + 1 : 0;
    };
    auto shorter = [&](std::int64_t a, std::int64_t b) {
        if (rows(s, a) != rows(s, b)) return rows(s, a) < rows(s, b);
        if (caption_len(a) != caption_len(b)) return caption_len(a) < caption_len(b);
        return a < b;
    };
    auto len = [&](std::int64_t p) { return std::max(rows(s, p), caption_len(p)); };
    batches_ = batching::pass_batches(static_cast<std::int64_t>(s.ids.size()), split == "train" && shuffle_, seed_,
                                      epoch, {batch_, batch_tokens_, pool_}, shorter, len);
    return static_cast<std::int64_t>(batches_.size());
}

bool CaptionBatches::next(Batch& batch) {
    if (cur_ == nullptr || pos_ >= batches_.size()) return false;
    const Split& s = *cur_;
    const auto& cols = batches_[pos_];
    const auto N = static_cast<std::int64_t>(cols.size());
    std::int64_t F = 0;
    for (std::int64_t p : cols) F = std::max(F, rows(s, p));
    batch.outputs.resize(4);
    Tensor& memory = batch.outputs[0];
    memory.resize(DType::f32, {F, N, dim_});  // (F, N, D)
    memory.zero();
    memory.lengths.assign(static_cast<std::size_t>(N), 0);
    batch.item_ids.resize(static_cast<std::size_t>(N));
    std::vector<const std::vector<std::int32_t>*>& targets = targets_;  // kept: no allocation per batch
    targets.assign(static_cast<std::size_t>(N), nullptr);
    float* m = memory.data<float>();
    for (std::int64_t n = 0; n < N; ++n) {
        const auto p = static_cast<std::size_t>(cols[static_cast<std::size_t>(n)]);
        const FrameSplit::Item& item = s.frames->items[static_cast<std::size_t>(s.ids[p])];
        for (std::int64_t r = 0; r < item.rows; ++r)  // row r of the item → memory[r][n]
            std::memcpy(m + (r * N + n) * dim_, item.values.data() + r * dim_, static_cast<std::size_t>(dim_) * sizeof(float));
        memory.lengths[static_cast<std::size_t>(n)] = static_cast<std::int32_t>(item.rows);
        batch.item_ids[static_cast<std::size_t>(n)] = s.ids[p];
        if (s.has_target) targets[static_cast<std::size_t>(n)] = &s.target[p];
    }
    batch.items = batching::fill_targets(targets, target_ids_, batch.outputs[1], batch.outputs[2]);
    mean_rows(memory, batch.outputs[3]);
    batch.reset_state = true;
    ++pos_;
    return true;
}

// state (1, 1, N, D) = the mean over r < lengths[n] of memory[r][n], in double, rounded once.
void CaptionBatches::mean_rows(const Tensor& memory, Tensor& state) const {
    const std::int64_t N = memory.dim(1);
    state.resize(DType::f32, {1, 1, N, dim_});
    state.lengths.clear();
    const float* m = memory.data<float>();
    float* st = state.data<float>();
    std::vector<double> sum(static_cast<std::size_t>(dim_));
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t rows = memory.lengths[static_cast<std::size_t>(n)];
        std::fill(sum.begin(), sum.end(), 0.0);
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t d = 0; d < dim_; ++d) sum[static_cast<std::size_t>(d)] += m[(r * N + n) * dim_ + d];
        for (std::int64_t d = 0; d < dim_; ++d)
            st[n * dim_ + d] = rows > 0 ? static_cast<float>(sum[static_cast<std::size_t>(d)] / double(rows)) : 0.0f;
    }
}

}  // namespace rnnflow::stages
