#include "classify_batches.hpp"

#include <algorithm>
#include <iostream>
#include <numeric>
#include <random>

namespace rnnflow::stages {

namespace fs = std::filesystem;

StageSchema ClassifyBatches::schema() {
    return StageSchema("classify_batches",
                       "sentence batches for classification and tagging: padded, bucketed, shuffled",
                       Role::source)
        .input("tokens", PortType::sequences, "token ids per sentence")
        .optional_input("labels", PortType::sequences,
                        "label ids: one per sentence (level: sentence) or one per token (level: token)")
        .optional_input("words", PortType::tokens,
                        "the words the token ids came from; gives the `chars` output")
        .output("ids", PortType::ids, "i32 (T, N) + lengths: token ids, padded")
        .output("labels", PortType::ids,
                "i32 (1, N) sentence labels, or (T, N) tags with the ids' lengths; lengths 0 without labels")
        .output("chars", PortType::ids,
                "i32 (Lc, T*N) + lengths: characters of the word at (t, n) in column t*N + n")
        .param_int("batch", 32, Range{1, 65536}, "N: sentences per batch (the last may have fewer)")
        .param_choice("level", "sentence", {"sentence", "token"},
                      "sentence: one label per sentence; token: one label per token (tagging)")
        .param_bool("bucket", true, "sort sentences by length within pools so batches hold similar lengths")
        .param_int("pool", 50, Range{0, 1e9},
                   "training: sort within pools of this many batches (0 = the whole split); "
                   "evaluation splits sort the whole split")
        .param_bool("shuffle", true, "training split: a new seeded order every epoch")
        .param_int("max_chars", 32, Range{1, 4096}, "chars: a word's characters past this many are cut")
        .details("Shuffles (train), buckets by length, pads; Batch item ids give each column's "
                 "sentence index so evaluators can write outputs in input order. chars needs the "
                 "`words` input; its character vocabulary is fitted on the training words and "
                 "saved as chars.tsv in the stage's state folder.");
}

ClassifyBatches::ClassifyBatches(const Params& p)
    : batch_(p.get_int("batch")), token_level_(p.get_string("level") == "token"),
      bucket_(p.get_bool("bucket")), shuffle_(p.get_bool("shuffle")), pool_(p.get_int("pool")),
      max_chars_(p.get_int("max_chars")) {}

namespace {

TokenizerSpec char_spec() {
    TokenizerSpec s;
    s.mode = "char";
    return s;
}

rnnflow::Vocabulary fit_chars(const TokenSplit& words) {
    const TokenizerSpec spec = char_spec();
    std::map<std::string, std::int64_t> counts;
    for (const auto& item : words.items)
        for (const auto& w : item)
            for (const auto& c : spec.tokenize(w)) ++counts[c];
    std::vector<std::pair<std::string, std::int64_t>> v;
    for (const auto& [c, n] : counts)
        if (c != "<pad>" && c != "<unk>") v.emplace_back(c, n);
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    std::vector<std::string> tokens{"<pad>", "<unk>"};
    std::vector<std::int64_t> n{0, 0};
    for (auto& [c, k] : v) {
        tokens.push_back(c);
        n.push_back(k);
    }
    return rnnflow::Vocabulary(std::move(tokens), std::move(n), {"<pad>", "<unk>"}, spec);
}

}  // namespace

void ClassifyBatches::prepare(PrepareContext& ctx) {
    const PortInfo& tok = ctx.input_info("tokens");
    const bool has_labels_port = ctx.connected("labels");
    with_chars_ = ctx.connected("words");
    ctx.set_output_info("ids", PortInfo{PortType::ids, -1, tok.classes, tok.vocab});
    PortInfo lab{PortType::ids, -1, -1, nullptr};
    if (has_labels_port) lab = PortInfo{PortType::ids, -1, ctx.input_info("labels").classes, ctx.input_info("labels").vocab};
    ctx.set_output_info("labels", lab);
    pad_ = 0;
    if (tok.vocab) {
        if (tok.vocab->special("<pad>") >= 0) pad_ = tok.vocab->special("<pad>");
    }
    std::int32_t placeholder = pad_;
    if (tok.vocab && tok.vocab->unk() >= 0) placeholder = tok.vocab->unk();
    seed_ = ctx.rng()();

    // The character vocabulary: fitted on the training words, or loaded.
    chars_.reset();
    if (with_chars_) {
        const fs::path dir = ctx.state_dir();
        if (ctx.mode() == PrepareMode::fit) {
            if (!ctx.has_input("words", "train"))
                throw Error("no training split on input 'words' to fit the character vocabulary on",
                            "connect the TokenSplit the token ids came from (e.g. the tokenizer's out)");
            chars_ = std::make_shared<const rnnflow::Vocabulary>(fit_chars(ctx.input<TokenSplit>("words", "train")));
            if (!dir.empty()) chars_->save(dir / "chars.tsv");
        } else {
            if (dir.empty()) throw Error("restore mode needs a state folder to load chars.tsv from", "restore from a run folder");
            if (!fs::exists(dir / "chars.tsv"))
                throw Error(detail::concat("no saved character vocabulary at '", (dir / "chars.tsv").string(), "'"),
                            "restore from the run folder that trained this graph");
            chars_ = std::make_shared<const rnnflow::Vocabulary>(rnnflow::Vocabulary::load(dir / "chars.tsv"));
        }
        ctx.set_output_info("chars", PortInfo{PortType::ids, -1, chars_->size(), chars_});
    } else {
        ctx.set_output_info("chars", PortInfo{PortType::ids, -1, -1, nullptr});
    }

    data_.clear();
    const TokenizerSpec cspec = char_spec();
    for (const auto& split : ctx.splits()) {
        if (!ctx.has_input("tokens", split)) continue;
        const auto& seq = ctx.input<SequenceSplit>("tokens", split);
        const SequenceSplit* labels = has_labels_port && ctx.has_input("labels", split)
                                          ? &ctx.input<SequenceSplit>("labels", split) : nullptr;
        const TokenSplit* words = with_chars_ && ctx.has_input("words", split)
                                      ? &ctx.input<TokenSplit>("words", split) : nullptr;
        if (with_chars_ && !words)
            throw Error(detail::concat("input 'words' has no split '", split, "' but 'tokens' has"),
                        "connect the TokenSplit the token ids came from");
        const std::size_t n = seq.items.size();
        if (labels && labels->items.size() != n)
            throw Error(detail::concat("split '", split, "': ", n, " token sequences (", seq.origin, ") but ",
                                       labels->items.size(), " label sequences (", labels->origin, ")"),
                        "tokens and labels must come from the same reader");
        if (words && words->items.size() != n)
            throw Error(detail::concat("split '", split, "': ", n, " token sequences but ", words->items.size(),
                                       " word sequences on input 'words'"),
                        "connect the TokenSplit the token ids came from");
        SplitData d;
        std::int64_t dropped = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const auto& ids = seq.items[i];
            if (labels) {
                const auto& l = labels->items[i];
                if (!token_level_ && l.size() != 1)
                    throw Error(detail::concat("split '", split, "' item ", i + 1, " (", labels->origin, ") has ",
                                               l.size(), " label ids; level: sentence needs exactly one"),
                                "give one label per sentence (no append_eos on the label vocabulary), or set level: token");
                if (token_level_ && l.size() != ids.size())
                    throw Error(detail::concat("split '", split, "' item ", i + 1, " (", seq.origin, ") has ", ids.size(),
                                               " tokens but ", l.size(), " tags"),
                                "tag sequences need one tag per token: tokenise with the reader's own tokens "
                                "(e.g. conllu's tokens output) and no append_eos");
            }
            if (words && words->items[i].size() != ids.size())
                throw Error(detail::concat("split '", split, "' item ", i + 1, ": ", ids.size(), " token ids but ",
                                           words->items[i].size(), " words on input 'words'"),
                            "connect the TokenSplit the token ids came from (and no append_eos)");
            if (ids.empty() && token_level_ && labels) {
                ++dropped;
                continue;
            }
            d.ids.push_back(ids.empty() ? std::vector<std::int32_t>{placeholder} : ids);
            if (labels) d.labels.push_back(labels->items[i]);
            if (words) {
                std::vector<std::vector<std::int32_t>> wc;
                if (ids.empty()) wc.push_back({});
                for (const auto& w : words->items[i]) {
                    std::vector<std::int32_t> c;
                    for (const auto& ch : cspec.tokenize(w)) {
                        if (static_cast<std::int64_t>(c.size()) >= max_chars_) break;
                        c.push_back(chars_->id(ch));
                    }
                    wc.push_back(std::move(c));
                }
                d.chars.push_back(std::move(wc));
            }
            d.item_ids.push_back(static_cast<std::int64_t>(i));
        }
        if (dropped > 0)
            std::cerr << "warning: stage '" << ctx.stage_id() << "': split '" << split << "': left out " << dropped
                      << " empty sentence" << (dropped == 1 ? "" : "s") << " (nothing to tag)\n";
        if (!d.ids.empty()) data_[split] = std::move(d);
    }
}

std::int64_t ClassifyBatches::begin(const std::string& split, std::int64_t epoch) {
    pos_ = 0;
    batches_.clear();
    auto it = data_.find(split);
    if (it == data_.end()) {
        cur_ = nullptr;
        return 0;
    }
    cur_ = &it->second;
    const std::size_t n = cur_->ids.size();
    const bool train = split == "train";
    std::mt19937_64 rng(seed_ ^ (0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(epoch + 1)));
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    if (train && shuffle_) std::shuffle(order.begin(), order.end(), rng);
    if (bucket_) {
        const std::size_t pool = train && pool_ > 0 ? static_cast<std::size_t>(pool_ * batch_) : n;
        auto len = [&](std::size_t i) { return cur_->ids[i].size(); };
        for (std::size_t a = 0; a < n; a += pool) {
            const std::size_t b = std::min(n, a + pool);
            std::stable_sort(order.begin() + static_cast<std::ptrdiff_t>(a), order.begin() + static_cast<std::ptrdiff_t>(b),
                             [&](std::size_t x, std::size_t y) { return len(x) < len(y); });
        }
    }
    const auto N = static_cast<std::size_t>(batch_);
    for (std::size_t a = 0; a < n; a += N)
        batches_.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(a),
                              order.begin() + static_cast<std::ptrdiff_t>(std::min(n, a + N)));
    if (train && shuffle_) std::shuffle(batches_.begin(), batches_.end(), rng);
    return static_cast<std::int64_t>(batches_.size());
}

bool ClassifyBatches::next(Batch& batch) {
    if (cur_ == nullptr || pos_ >= batches_.size()) return false;
    const auto& cols = batches_[pos_++];
    const auto N = static_cast<std::int64_t>(cols.size());
    std::int64_t T = 1;
    for (std::size_t c : cols) T = std::max<std::int64_t>(T, static_cast<std::int64_t>(cur_->ids[c].size()));
    batch.outputs.resize(3);
    Tensor& ids = batch.outputs[0];
    Tensor& labels = batch.outputs[1];
    Tensor& chars = batch.outputs[2];

    ids.resize(DType::i32, {T, N});  // (T, N)
    ids.lengths.assign(static_cast<std::size_t>(N), 0);
    std::int32_t* x = ids.data<std::int32_t>();
    std::fill_n(x, T * N, pad_);
    std::int64_t tokens = 0;
    batch.item_ids.resize(static_cast<std::size_t>(N));
    for (std::int64_t n = 0; n < N; ++n) {
        const auto& s = cur_->ids[cols[static_cast<std::size_t>(n)]];
        const auto L = static_cast<std::int64_t>(s.size());
        for (std::int64_t t = 0; t < L; ++t) x[t * N + n] = s[static_cast<std::size_t>(t)];
        ids.lengths[static_cast<std::size_t>(n)] = static_cast<std::int32_t>(L);
        tokens += L;
        batch.item_ids[static_cast<std::size_t>(n)] = cur_->item_ids[cols[static_cast<std::size_t>(n)]];
    }

    const bool with_labels = !cur_->labels.empty();
    if (!with_labels) {
        labels.resize(DType::i32, {1, N});  // (1, N), nothing valid
        labels.zero();
        labels.lengths.assign(static_cast<std::size_t>(N), 0);
    } else if (!token_level_) {
        labels.resize(DType::i32, {1, N});  // (1, N)
        labels.lengths.assign(static_cast<std::size_t>(N), 1);
        for (std::int64_t n = 0; n < N; ++n)
            labels.data<std::int32_t>()[n] = cur_->labels[cols[static_cast<std::size_t>(n)]][0];
    } else {
        labels.resize(DType::i32, {T, N});  // (T, N)
        labels.zero();
        labels.lengths = ids.lengths;
        std::int32_t* y = labels.data<std::int32_t>();
        for (std::int64_t n = 0; n < N; ++n) {
            const auto& l = cur_->labels[cols[static_cast<std::size_t>(n)]];
            for (std::size_t t = 0; t < l.size(); ++t) y[static_cast<std::int64_t>(t) * N + n] = l[t];
        }
    }

    if (!with_chars_ || cur_->chars.empty()) {
        chars.resize(DType::i32, {1, T * N});  // (1, T*N), nothing valid
        chars.zero();
        chars.lengths.assign(static_cast<std::size_t>(T * N), 0);
    } else {
        std::int64_t Lc = 1;
        for (std::size_t c : cols)
            for (const auto& w : cur_->chars[c]) Lc = std::max<std::int64_t>(Lc, static_cast<std::int64_t>(w.size()));
        chars.resize(DType::i32, {Lc, T * N});  // (Lc, T*N), <pad> = 0
        chars.zero();
        chars.lengths.assign(static_cast<std::size_t>(T * N), 0);
        std::int32_t* z = chars.data<std::int32_t>();
        const std::int64_t cols_total = T * N;
        for (std::int64_t n = 0; n < N; ++n) {
            const auto& words = cur_->chars[cols[static_cast<std::size_t>(n)]];
            for (std::size_t t = 0; t < words.size(); ++t) {
                const std::int64_t col = static_cast<std::int64_t>(t) * N + n;
                const auto& w = words[t];
                for (std::size_t k = 0; k < w.size(); ++k) z[static_cast<std::int64_t>(k) * cols_total + col] = w[k];
                chars.lengths[static_cast<std::size_t>(col)] = static_cast<std::int32_t>(w.size());
            }
        }
    }
    batch.reset_state = true;
    batch.items = tokens;
    return true;
}

}  // namespace rnnflow::stages
