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
    const PortInfo& ti = ctx.input_info("target");
    RNNFLOW_CHECK(si.vocab != nullptr, "input 'source' carries no vocabulary; connect a vocabulary stage's out");
    RNNFLOW_CHECK(ti.vocab != nullptr, "input 'target' carries no vocabulary; connect a vocabulary stage's out");
    src_pad_ = si.vocab->special("<pad>");
    if (src_pad_ < 0)
        throw Error("the source vocabulary has no <pad>", "add <pad> to the source vocabulary's specials");
    tgt_pad_ = ti.vocab->special("<pad>");
    sos_ = ti.vocab->special("<sos>");
    eos_ = ti.vocab->special("<eos>");
    if (tgt_pad_ < 0 || sos_ < 0 || eos_ < 0)
        throw Error("the target vocabulary lacks <pad>, <sos> or <eos>",
                    "give the target vocabulary specials: [<pad>, <unk>, <sos>, <eos>]");
    ctx.set_output_info("source", PortInfo{PortType::ids, -1, si.classes, si.vocab});
    ctx.set_output_info("target_in", PortInfo{PortType::ids, -1, ti.classes, ti.vocab});
    ctx.set_output_info("target_out", PortInfo{PortType::ids, -1, ti.classes, ti.vocab});
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

// Cuts positions (already in batch order) into batches: at most batch_ pairs and, with
// batch_tokens_, at most batch_tokens_ padded tokens.
std::vector<std::vector<std::int64_t>> Seq2seqBatches::cut(const Split& s, std::vector<std::int64_t> order) const {
    std::vector<std::vector<std::int64_t>> out;
    std::vector<std::int64_t> cur;
    std::int64_t longest = 0;
    for (std::int64_t p : order) {
        const auto i = static_cast<std::size_t>(p);
        std::int64_t len = static_cast<std::int64_t>(s.source[i].size());
        if (s.has_target) len = std::max(len, static_cast<std::int64_t>(s.target[i].size()) + 1);
        const std::int64_t next_longest = std::max(longest, len);
        const bool full = static_cast<std::int64_t>(cur.size()) >= batch_ ||
                          (batch_tokens_ > 0 && !cur.empty() &&
                           next_longest * static_cast<std::int64_t>(cur.size() + 1) > batch_tokens_);
        if (full) {
            out.push_back(std::move(cur));
            cur.clear();
            longest = 0;
        }
        cur.push_back(p);
        longest = std::max(longest, len);
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
}

std::int64_t Seq2seqBatches::begin(const std::string& split, std::int64_t epoch) {
    pos_ = 0;
    batches_.clear();
    auto it = splits_.find(split);
    if (it == splits_.end()) {
        cur_ = nullptr;
        return 0;
    }
    cur_ = &it->second;
    const Split& s = *cur_;
    const auto n = static_cast<std::int64_t>(s.source.size());
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
    auto shorter = [&s](std::int64_t a, std::int64_t b) {
        const auto ia = static_cast<std::size_t>(a), ib = static_cast<std::size_t>(b);
        if (s.source[ia].size() != s.source[ib].size()) return s.source[ia].size() < s.source[ib].size();
        if (s.has_target && s.target[ia].size() != s.target[ib].size()) return s.target[ia].size() < s.target[ib].size();
        return a < b;
    };
    if (split == "train" && shuffle_) {
        // Our own Fisher-Yates over mt19937_64 (std::shuffle's use of the generator is
        // implementation-defined, so the order would differ between standard libraries).
        std::mt19937_64 rng(seed_ ^ (0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(epoch + 1)));
        auto shuffle = [&rng](auto& v) {
            for (std::size_t i = v.size(); i > 1; --i)
                std::swap(v[i - 1], v[static_cast<std::size_t>(rng() % i)]);
        };
        shuffle(order);
        const auto pool = static_cast<std::size_t>(pool_ * batch_);
        for (std::size_t at = 0; at < order.size(); at += pool) {
            const auto end = order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), at + pool));
            std::sort(order.begin() + static_cast<std::ptrdiff_t>(at), end, shorter);
        }
        // Cut each pool separately so no batch mixes two pools' lengths.
        for (std::size_t at = 0; at < order.size(); at += pool) {
            std::vector<std::int64_t> part(order.begin() + static_cast<std::ptrdiff_t>(at),
                                           order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), at + pool)));
            for (auto& b : cut(s, std::move(part))) batches_.push_back(std::move(b));
        }
        shuffle(batches_);
    } else {
        std::sort(order.begin(), order.end(), shorter);
        batches_ = cut(s, std::move(order));
    }
    return static_cast<std::int64_t>(batches_.size());
}

bool Seq2seqBatches::next(Batch& batch) {
    if (cur_ == nullptr || pos_ >= batches_.size()) return false;
    const Split& s = *cur_;
    const auto& cols = batches_[pos_];
    const auto N = static_cast<std::int64_t>(cols.size());
    std::int64_t ts = 0, tt = 0;
    for (std::int64_t p : cols) {
        const auto i = static_cast<std::size_t>(p);
        ts = std::max(ts, static_cast<std::int64_t>(s.source[i].size()));
        if (s.has_target) tt = std::max(tt, static_cast<std::int64_t>(s.target[i].size()) + 1);
    }
    batch.outputs.resize(3);
    Tensor& src = batch.outputs[0];
    Tensor& tin = batch.outputs[1];
    Tensor& tout = batch.outputs[2];
    src.resize(DType::i32, {ts, N});                            // (Ts, N)
    tin.resize(DType::i32, {std::max<std::int64_t>(tt, 1), N});  // (Tt, N)
    tout.resize(DType::i32, {std::max<std::int64_t>(tt, 1), N});
    std::fill_n(src.data<std::int32_t>(), src.numel(), src_pad_);
    std::fill_n(tin.data<std::int32_t>(), tin.numel(), tgt_pad_);
    std::fill_n(tout.data<std::int32_t>(), tout.numel(), tgt_pad_);
    src.lengths.assign(static_cast<std::size_t>(N), 0);
    tin.lengths.assign(static_cast<std::size_t>(N), 0);
    tout.lengths.assign(static_cast<std::size_t>(N), 0);
    batch.item_ids.resize(static_cast<std::size_t>(N));
    std::int64_t items = 0;
    std::int32_t* x = src.data<std::int32_t>();
    std::int32_t* yi = tin.data<std::int32_t>();
    std::int32_t* yo = tout.data<std::int32_t>();
    for (std::int64_t n = 0; n < N; ++n) {
        const auto i = static_cast<std::size_t>(cols[static_cast<std::size_t>(n)]);
        const auto& a = s.source[i];
        for (std::size_t t = 0; t < a.size(); ++t) x[static_cast<std::int64_t>(t) * N + n] = a[t];
        src.lengths[static_cast<std::size_t>(n)] = static_cast<std::int32_t>(a.size());
        batch.item_ids[static_cast<std::size_t>(n)] = s.ids[i];
        if (!s.has_target) {
            items += static_cast<std::int64_t>(a.size());
            continue;
        }
        const auto& b = s.target[i];
        const auto len = static_cast<std::int64_t>(b.size()) + 1;
        yi[n] = sos_;
        for (std::size_t t = 0; t < b.size(); ++t) {
            yi[(static_cast<std::int64_t>(t) + 1) * N + n] = b[t];
            yo[static_cast<std::int64_t>(t) * N + n] = b[t];
        }
        yo[static_cast<std::int64_t>(b.size()) * N + n] = eos_;
        tin.lengths[static_cast<std::size_t>(n)] = static_cast<std::int32_t>(len);
        tout.lengths[static_cast<std::size_t>(n)] = static_cast<std::int32_t>(len);
        items += len;
    }
    batch.reset_state = true;
    batch.items = items;
    ++pos_;
    return true;
}

}  // namespace rnnflow::stages
