#include "seq2seq_batches.hpp"

#include <algorithm>
#include <iostream>


namespace rnnflow::stages {

StageSchema Seq2seqBatches::schema() {
    return StageSchema("seq2seq_batches",
                       "batches of sentence pairs bucketed by length: source, <sos> target, target <eos>",
                       Role::source)
        .input("source", PortType::sequences, "source id sequences per split (vocabulary with <pad>)")
        .input("target", PortType::sequences,
               "target id sequences per split (vocabulary with <pad>, <sos>, <eos>)")
        .output("source", PortType::ids, "i32 (Ts, N) source ids, padded with the source <pad>")
        .output("target_in", PortType::ids, "i32 (Tt, N) <sos> y1 .. yn, padded with the target <pad>")
        .output("target_out", PortType::ids, "i32 (Tt, N) y1 .. yn <eos>, same lengths as target_in")
        .param_int("batch", 64, Range{1.0, 65536.0}, "at most this many sentence pairs per batch")
        .param_int("batch_tokens", 0, Range{0.0, 1e9},
                   "also at most this many padded tokens, N * max(Ts, Tt), per batch; 0 = no limit")
        .param_int("pool", 50, Range{1.0, 1e6},
                   "training: pairs are sorted by length within pools of this many batches")
        .param_bool("shuffle", true, "training: shuffle pairs and batches every epoch (seeded)")
        .param_bool("reverse_source", false, "feed the source reversed (Sutskever et al. 2014)")
        .param_int("max_source_length", 0, Range{0.0, 1e7},
                   "training: leave out pairs with a longer source (tokens); 0 = no limit")
        .param_int("max_target_length", 0, Range{0.0, 1e7},
                   "training: leave out pairs with a longer target (tokens, <eos> included); 0 = no limit")
        .value("dropped", "training pairs left out by the length filters (and empty sources)")
        .details("Pairs are sorted by (source length, target length) into batches of similar length; "
                 "training shuffles per epoch with a generator seeded from the run seed and the "
                 "epoch, within pools of `pool` batches, then shuffles the batch order. Every pair "
                 "appears once per pass. Batch item ids are the pairs' indices in their split. The "
                 "number of filtered training pairs is printed at prepare. In the prediction split "
                 "'infer' target_in and target_out are (1, N) with lengths 0.");
}

Seq2seqBatches::Seq2seqBatches(const Params& p)
    : batch_(p.get_int("batch")), batch_tokens_(p.get_int("batch_tokens")), pool_(p.get_int("pool")),
      max_source_(p.get_int("max_source_length")), max_target_(p.get_int("max_target_length")),
      reverse_(p.get_bool("reverse_source")), shuffle_(p.get_bool("shuffle")) {}

void Seq2seqBatches::prepare(PrepareContext& ctx) {
    const PortInfo& si = ctx.input_info("source");
    RNNFLOW_CHECK(si.vocab != nullptr, "input 'source' carries no vocabulary; connect a vocabulary stage's out");
    src_pad_ = si.vocab->special("<pad>");
    if (src_pad_ < 0)
        throw Error("the source vocabulary has no <pad>", "add <pad> to the source vocabulary's specials");
    target_ids_ = batching::target_ids(ctx);
    ctx.set_output_info("source", PortInfo{PortType::ids, -1, si.classes, si.vocab});
    seed_ = ctx.rng()();

    splits_.clear();
    dropped_ = 0;
    std::int64_t too_long = 0, empty = 0, train_total = 0;
    for (const auto& name : ctx.splits()) {
        if (!ctx.has_input("source", name)) continue;
        const auto& src = ctx.input<SequenceSplit>("source", name);
        const SequenceSplit* tgt = ctx.has_input("target", name) ? &ctx.input<SequenceSplit>("target", name) : nullptr;
        if (tgt && tgt->items.size() != src.items.size())
            throw Error(detail::concat("split '", name, "': ", src.items.size(), " source items (",
                                       src.origin, ") but ", tgt->items.size(), " target items (",
                                       tgt->origin, ")"),
                        "source and target must come from one reader (parallel_text, date_pairs)");
        if (!tgt && name != "infer")
            throw Error(detail::concat("split '", name, "' has source items but no target items"),
                        "connect the target side of the same reader");
        const bool train = name == "train";
        Split s;
        s.has_target = tgt != nullptr;
        for (std::size_t i = 0; i < src.items.size(); ++i) {
            const auto& x = src.items[i];
            if (x.empty()) {
                if (!train)
                    throw Error(detail::concat("split '", name, "' item ", i + 1, " (", src.origin,
                                               ") has an empty source: there is nothing to encode"),
                                "remove empty lines from the input");
                ++empty;
                continue;
            }
            if (train) {
                ++train_total;
                const auto tlen = static_cast<std::int64_t>(tgt->items[i].size()) + 1;
                if ((max_source_ > 0 && static_cast<std::int64_t>(x.size()) > max_source_) ||
                    (max_target_ > 0 && tlen > max_target_)) {
                    ++too_long;
                    continue;
                }
            }
            s.source.push_back(x);
            if (reverse_) std::reverse(s.source.back().begin(), s.source.back().end());
            if (tgt) s.target.push_back(tgt->items[i]);
            s.ids.push_back(static_cast<std::int64_t>(i));
        }
        if (train && s.source.empty())
            throw Error(detail::concat("no training pair is left after filtering (", too_long,
                                       " too long, ", empty, " with an empty source)"),
                        "raise max_source_length / max_target_length");
        splits_[name] = std::move(s);
    }
    dropped_ = too_long + empty;
    if (dropped_ > 0)
        std::cerr << "seq2seq_batches '" << ctx.stage_id() << "': left out " << dropped_ << " of "
                  << train_total + empty << " training pairs (" << too_long << " longer than max_source_length "
                  << max_source_ << " / max_target_length " << max_target_ << ", " << empty
                  << " with an empty source)\n";
}

std::int64_t Seq2seqBatches::value(const std::string& name) const {
    if (name == "dropped") return dropped_;
    return Stage::value(name);
}

std::int64_t Seq2seqBatches::begin(const std::string& split, std::int64_t epoch) {
    pos_ = 0;
    batches_.clear();
    auto it = splits_.find(split);
    cur_ = it == splits_.end() ? nullptr : &it->second;
    if (!cur_) return 0;
    const Split& s = *cur_;
    auto shorter = [&s](std::int64_t a, std::int64_t b) {
        const auto ia = static_cast<std::size_t>(a), ib = static_cast<std::size_t>(b);
        if (s.source[ia].size() != s.source[ib].size()) return s.source[ia].size() < s.source[ib].size();
        if (s.has_target && s.target[ia].size() != s.target[ib].size()) return s.target[ia].size() < s.target[ib].size();
        return a < b;
    };
    auto len = [&s](std::int64_t p) {
        const auto i = static_cast<std::size_t>(p);
        const auto src = static_cast<std::int64_t>(s.source[i].size());
        return s.has_target ? std::max(src, static_cast<std::int64_t>(s.target[i].size()) + 1) : src;
    };
    batches_ = batching::pass_batches(static_cast<std::int64_t>(s.source.size()), split == "train" && shuffle_, seed_,
                                      epoch, {batch_, batch_tokens_, pool_}, shorter, len);
    return static_cast<std::int64_t>(batches_.size());
}

bool Seq2seqBatches::next(Batch& batch) {
    if (cur_ == nullptr || pos_ >= batches_.size()) return false;
    const Split& s = *cur_;
    const auto& cols = batches_[pos_];
    const auto N = static_cast<std::int64_t>(cols.size());
    std::int64_t ts = 0;
    for (std::int64_t p : cols) ts = std::max(ts, static_cast<std::int64_t>(s.source[static_cast<std::size_t>(p)].size()));
    batch.outputs.resize(3);
    Tensor& src = batch.outputs[0];
    src.resize(DType::i32, {ts, N});  // (Ts, N)
    std::fill_n(src.data<std::int32_t>(), src.numel(), src_pad_);
    src.lengths.assign(static_cast<std::size_t>(N), 0);
    batch.item_ids.resize(static_cast<std::size_t>(N));
    std::vector<const std::vector<std::int32_t>*>& targets = targets_;  // kept: no allocation per batch
    targets.assign(static_cast<std::size_t>(N), nullptr);
    std::int64_t source_tokens = 0;
    std::int32_t* x = src.data<std::int32_t>();
    for (std::int64_t n = 0; n < N; ++n) {
        const auto i = static_cast<std::size_t>(cols[static_cast<std::size_t>(n)]);
        const auto& a = s.source[i];
        for (std::size_t t = 0; t < a.size(); ++t) x[static_cast<std::int64_t>(t) * N + n] = a[t];
        src.lengths[static_cast<std::size_t>(n)] = static_cast<std::int32_t>(a.size());
        batch.item_ids[static_cast<std::size_t>(n)] = s.ids[i];
        source_tokens += static_cast<std::int64_t>(a.size());
        if (s.has_target) targets[static_cast<std::size_t>(n)] = &s.target[i];
    }
    const std::int64_t target_tokens =
        batching::fill_targets(targets, target_ids_, batch.outputs[1], batch.outputs[2]);
    batch.reset_state = true;
    batch.items = s.has_target ? target_tokens : source_tokens;
    ++pos_;
    return true;
}

}  // namespace rnnflow::stages
