#include "translation_metrics.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "pipeline/core/plot.hpp"

namespace rnnflow::stages {

StageSchema TranslationMetrics::schema() {
    return StageSchema("translation_metrics",
                       "BLEU (sacreBLEU default, one or several references), lower-cased BLEU, exact match, "
                       "token accuracy; translations, captions, BLEU by source length and attention maps",
                       Role::metric)
        .input("hypothesis", PortType::ids, "i32 (Th, N) decoded target ids without <sos>/<eos>")
        .optional_input("reference", PortType::ids,
                        "i32 (Tt, N) reference ids y1 .. yn <eos> (seq2seq_batches.target_out)")
        .optional_input("references", PortType::text,
                        "raw reference sentences per split (the reader's target): BLEU against these")
        .optional_input("source", PortType::ids,
                        "i32 (Ts, N) source ids, for attention maps and <split>.bleu_by_length.tsv")
        .optional_input("attention", PortType::tensor, "f32 (Th, N, Ts) attention weights, for attention maps")
        .optional_input("groups", PortType::text,
                        "a key per item and split (features.items): items with one key are one segment "
                        "with all their references; writes <split>.captions.tsv")
        .param_int("heatmaps", 3, Range{0.0, 1000.0},
                   "write attention maps of the items with index below this (needs attention)")
        .param_list("length_buckets", {"8", "10", "12", "15", "20"},
                    "upper bounds (source tokens, increasing) of the buckets of <split>.bleu_by_length.tsv, "
                    "which adds an open last bucket; the default suits Multi30k (test2016: 5-35 tokens, "
                    "mean 12; at least 46 sentences a bucket)")
        .details("BLEU as sacreBLEU's corpus_bleu computes it by default: 13a tokenisation, 4-grams, "
                 "brevity penalty exp(1 - r/c) when c < r, 'exp' smoothing of zero n-gram matches; with "
                 "several references per segment (groups), clipped counts take each n-gram's largest count "
                 "in one reference and r the reference length closest to the hypothesis. "
                 "<id>.bleu_lc lower-cases first. <id>.exact and <id>.token_accuracy compare ids, in "
                 "percent (with groups: against any reference / the best-matching one). Writes "
                 "<split>.translations.txt (a line per segment), with groups <split>.captions.tsv, with source "
                 "<split>.bleu_by_length.tsv, and <split>.attention_<k>.png (and .tsv) into the run "
                 "folder; `rnnflow translate` prints the detokenised hypotheses.");
}

namespace {
std::vector<std::int64_t> parse_length_buckets(const std::vector<std::string>& list) {
    std::vector<std::int64_t> out;
    for (const auto& v : list) {
        std::size_t used = 0;
        long long b = 0;
        try {
            b = std::stoll(v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != v.size() || v.empty() || b < 1)
            throw Error("length_buckets: '" + v + "' is not a positive whole number",
                        "give upper bounds in source tokens, e.g. [8, 10, 12, 15, 20]");
        if (!out.empty() && b <= out.back())
            throw Error(detail::concat("length_buckets must increase: ", b, " after ", out.back()),
                        "give upper bounds in source tokens, e.g. [8, 10, 12, 15, 20]");
        out.push_back(b);
    }
    return out;
}

std::string detok(const Vocabulary& v, const std::vector<std::int32_t>& ids) {
    std::vector<std::string> toks;
    toks.reserve(ids.size());
    for (auto id : ids) toks.push_back(id >= 0 && id < v.size() ? v.token(id) : std::string("<?>"));
    return v.tokenizer().detokenize(toks);
}

// Column n of a time-major (T, N) id tensor up to its length, cut at the first `stop` id.
std::vector<std::int32_t> column_ids(const Tensor& t, std::int64_t n, std::int32_t stop) {
    std::vector<std::int32_t> out;
    const std::int64_t N = t.dim(1), len = std::min(t.length(n), t.dim(0));
    const std::int32_t* d = t.data<std::int32_t>();
    for (std::int64_t k = 0; k < len; ++k) {
        const std::int32_t v = d[k * N + n];
        if (v == stop) break;
        out.push_back(v);
    }
    return out;
}
}  // namespace

TranslationMetrics::TranslationMetrics(const Params& p)
    : heatmaps_(p.get_int("heatmaps")), length_bounds_(parse_length_buckets(p.get_list("length_buckets"))) {}

void TranslationMetrics::prepare(PrepareContext& ctx) {
    id_ = ctx.stage_id();
    tvocab_ = ctx.input_info("hypothesis").vocab;
    if (!tvocab_)
        throw Error("input 'hypothesis' carries no vocabulary",
                    "connect the decoder's hypothesis, whose target_in comes from seq2seq_batches");
    if (ctx.connected("reference")) {
        const auto& r = ctx.input_info("reference").vocab;
        if (r && r->size() != tvocab_->size())
            throw Error(detail::concat("hypothesis and reference vocabularies differ (", tvocab_->size(),
                                       " vs ", r->size(), " ids)"),
                        "connect reference to the target_out of the batches that feed the decoder");
    }
    source_ = ctx.connected("source");
    if (source_) svocab_ = ctx.input_info("source").vocab;
    raw_refs_.clear();
    groups_.clear();
    for (const auto& split : ctx.splits()) {
        if (ctx.connected("references") && ctx.has_input("references", split))
            raw_refs_[split] = std::any_cast<const std::shared_ptr<const TextSplit>&>(ctx.input_any("references", split));
        if (!ctx.connected("groups") || !ctx.has_input("groups", split)) continue;
        const auto& keys = ctx.input<TextSplit>("groups", split);
        Groups& g = groups_[split];
        g.origin = keys.origin;
        std::map<std::string, std::int64_t> index;
        for (std::size_t k = 0; k < keys.items.size(); ++k) {
            auto [it, fresh] = index.emplace(keys.items[k], static_cast<std::int64_t>(g.keys.size()));
            if (fresh) {
                g.keys.push_back(keys.items[k]);
                g.members.emplace_back();
            }
            g.members[static_cast<std::size_t>(it->second)].push_back(static_cast<std::int64_t>(k));
            g.group_of.push_back(it->second);
        }
        if (auto r = raw_refs_.find(split); r != raw_refs_.end() && r->second->items.size() != keys.items.size())
            throw Error(detail::concat("split '", split, "': 'groups' has ", keys.items.size(), " items (", keys.origin,
                                       ") but 'references' has ", r->second->items.size(), " (", r->second->origin, ")"),
                        "connect groups and references to the same reader (features.items and features.captions)");
    }
}

void TranslationMetrics::begin(const std::string& split) {
    split_ = split;
    pairs_.clear();
    refs_.clear();
    maps_.clear();
    segments_.clear();
    auto g = groups_.find(split);
    pass_groups_ = g == groups_.end() ? nullptr : &g->second;
    items_ = exact_ = tok_match_ = tok_total_ = disagreements_ = 0;
    have_refs_ = false;
    training_ = false;
}

void TranslationMetrics::accumulate(const Inputs& in, const StepInfo& step) {
    // Training passes decode nothing (the decoder's hypothesis is empty there): no metrics.
    if (step.phase == Phase::train) {
        training_ = true;
        return;
    }
    const Tensor& hyp = in.at("hypothesis");  // (Th, N)
    RNNFLOW_CHECK(hyp.rank() == 2, "translation_metrics: 'hypothesis' must be (T, N), got ", shape_str(hyp.shape()));
    const std::int64_t N = hyp.dim(1);
    RNNFLOW_CHECK(static_cast<std::int64_t>(step.item_ids.size()) == N,
                  "translation_metrics: the batch has ", N, " columns but ", step.item_ids.size(),
                  " item ids; the batch source must set item ids (seq2seq_batches does)");
    const std::int32_t eos = tvocab_->special("<eos>");

    const Tensor* ref = in.has("reference") ? &in.at("reference") : nullptr;
    if (ref && (ref->rank() != 2 || ref->dim(1) != N)) ref = nullptr;
    bool ref_valid = ref != nullptr && step.phase != Phase::infer;
    if (ref_valid) {
        bool any = false;
        for (std::int64_t n = 0; n < N; ++n) any = any || ref->length(n) > 0;
        ref_valid = any;
    }
    const TextSplit* raw = nullptr;
    if (auto it = raw_refs_.find(step.split); it != raw_refs_.end() && step.phase != Phase::infer) raw = it->second.get();

    const Tensor* src = in.has("source") ? &in.at("source") : nullptr;
    if (src && (src->rank() != 2 || src->dim(1) != N)) src = nullptr;
    const Tensor* att = in.has("attention") ? &in.at("attention") : nullptr;
    const bool maps = att && src && svocab_ && att->rank() == 3 && att->dim(1) == N;
    const std::int32_t src_pad = svocab_ ? svocab_->special("<pad>") : -1;
    const std::int32_t src_eos = svocab_ ? svocab_->special("<eos>") : -1;

    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t id = step.item_ids[static_cast<std::size_t>(n)];
        RNNFLOW_CHECK(!pass_groups_ || (id >= 0 && static_cast<std::size_t>(id) < pass_groups_->group_of.size()),
                      "translation_metrics: item ", id, " is beyond the ", pass_groups_ ? pass_groups_->group_of.size() : 0,
                      " keys of split '", step.split, "' (", pass_groups_ ? pass_groups_->origin : std::string(),
                      "); connect groups to the reader that feeds the batches");
        Pair p;
        p.hyp = column_ids(hyp, n, eos);
        p.text = detok(*tvocab_, p.hyp);
        ++items_;
        if (ref_valid) {
            have_refs_ = true;
            p.ref = column_ids(*ref, n, eos);
            if (!raw) refs_[id] = detok(*tvocab_, *p.ref);
        }
        if (raw) {
            RNNFLOW_CHECK(id >= 0 && static_cast<std::size_t>(id) < raw->items.size(), "translation_metrics: item ", id,
                          " is beyond the ", raw->items.size(), " references of split '", step.split, "' (",
                          raw->origin, "); connect references to the reader that feeds the batches");
            refs_[id] = raw->items[static_cast<std::size_t>(id)];
            have_refs_ = true;
        }
        if (src) {  // source tokens without padding or <eos>
            p.source_len = 0;
            for (auto v : column_ids(*src, n, src_eos)) p.source_len += v != src_pad ? 1 : 0;
        }
        if (maps && id < heatmaps_ && att->length(n) > 0)  // lengths 0: no attention (attention: none)
            add_map(id, n, *src, *att, p.hyp);
        pairs_[id] = std::move(p);
    }
}

void TranslationMetrics::add_map(std::int64_t id, std::int64_t n, const Tensor& src, const Tensor& att,
                                 const std::vector<std::int32_t>& hy) {
    const std::int64_t N = src.dim(1);
    Map m;
    const std::int64_t ts = src.length(n), th = std::min(att.length(n), att.dim(0));
    const std::int32_t* s = src.data<std::int32_t>();
    for (std::int64_t t = 0; t < ts; ++t) m.source.push_back(svocab_->token(s[t * N + n]));
    for (std::int64_t t = 0; t < th; ++t)
        m.target.push_back(t < static_cast<std::int64_t>(hy.size()) ? tvocab_->token(hy[static_cast<std::size_t>(t)])
                                                                    : std::string("<eos>"));
    const std::int64_t S = att.dim(2);
    const float* a = att.data<float>();
    for (std::int64_t t = 0; t < th; ++t)
        for (std::int64_t k = 0; k < ts && k < S; ++k) m.weights.push_back(a[(t * N + n) * S + k]);
    if (ts > S) m.source.resize(static_cast<std::size_t>(S));
    maps_[id] = std::move(m);
}

// Without groups: every decoded item is a segment, with its reference when it has one.
std::vector<TranslationMetrics::Segment> TranslationMetrics::item_segments() const {
    std::vector<Segment> out;
    out.reserve(pairs_.size());
    for (const auto& [id, p] : pairs_) {
        Segment s;
        s.key = std::to_string(id);
        s.hyp = p.text;
        s.hyp_ids = &p.hyp;
        s.source_len = p.source_len;
        if (auto r = refs_.find(id); r != refs_.end()) s.refs.push_back(r->second);
        if (p.ref) s.ref_ids.push_back(*p.ref);
        out.push_back(std::move(s));
    }
    return out;
}

std::vector<std::int32_t> TranslationMetrics::reference_ids(const std::string& text) const {
    std::vector<std::int32_t> ids;
    for (const auto& t : tvocab_->tokenizer().tokenize(text)) ids.push_back(tvocab_->id(t));
    return ids;
}

// With groups: a segment per key with a decoded item; counts the disagreements.
std::vector<TranslationMetrics::Segment> TranslationMetrics::group_segments(const Groups& g) {
    const TextSplit* raw = nullptr;
    if (auto it = raw_refs_.find(split_); it != raw_refs_.end()) raw = it->second.get();
    bool ref_ids = false;  // the pass had reference ids: exact and token accuracy are computed
    for (const auto& [id, p] : pairs_) ref_ids = ref_ids || p.ref.has_value();
    std::vector<Segment> out;
    for (std::size_t gi = 0; gi < g.keys.size(); ++gi) {
        const Pair* rep = nullptr;
        bool differ = false;
        for (std::int64_t m : g.members[gi])
            if (auto it = pairs_.find(m); it != pairs_.end()) {
                if (!rep) rep = &it->second;
                else differ = differ || it->second.hyp != rep->hyp;
            }
        if (!rep) continue;
        disagreements_ += differ ? 1 : 0;
        Segment s;
        s.key = g.keys[gi];
        s.hyp = rep->text;
        s.hyp_ids = &rep->hyp;
        s.source_len = rep->source_len;
        for (std::int64_t m : g.members[gi]) {
            auto it = pairs_.find(m);
            const Pair* p = it == pairs_.end() ? nullptr : &it->second;
            const std::string* text = raw ? &raw->items[static_cast<std::size_t>(m)] : nullptr;
            if (text) s.refs.push_back(*text);
            else if (p && p->ref) s.refs.push_back(detok(*tvocab_, *p->ref));
            if (p && p->ref) s.ref_ids.push_back(*p->ref);
            else if (text && ref_ids) s.ref_ids.push_back(reference_ids(*text));
        }
        out.push_back(std::move(s));
    }
    return out;
}

namespace {
// Token accuracy of one segment against its best reference: (matches, max(|hyp|, |ref|)) of the
// reference with the highest matches / max(|hyp|, |ref|) (both empty: 1), the first on a tie.
std::pair<std::int64_t, std::int64_t> best_token_match(const std::vector<std::int32_t>& hy,
                                                       const std::vector<std::vector<std::int32_t>>& refs) {
    std::pair<std::int64_t, std::int64_t> best{0, 0};
    double best_rate = -1;
    for (const auto& ry : refs) {
        const std::size_t common = std::min(hy.size(), ry.size());
        std::int64_t match = 0;
        for (std::size_t t = 0; t < common; ++t) match += hy[t] == ry[t] ? 1 : 0;
        const auto total = static_cast<std::int64_t>(std::max(hy.size(), ry.size()));
        const double rate = total == 0 ? 1.0 : static_cast<double>(match) / static_cast<double>(total);
        if (rate > best_rate) {
            best_rate = rate;
            best = {match, total};
        }
    }
    return best;
}
}  // namespace

std::vector<MetricValue> TranslationMetrics::end() {
    segments_.clear();
    disagreements_ = 0;
    if (split_ == "infer" || (training_ && items_ == 0)) return {};
    RNNFLOW_CHECK(items_ > 0, "translation_metrics: no items evaluated in split '", split_, "'; is the split empty?");
    segments_ = pass_groups_ ? group_segments(*pass_groups_) : item_segments();
    if (disagreements_ > 0)
        std::cerr << "warning: stage '" << id_ << "': " << disagreements_ << " of " << segments_.size()
                  << " groups of split '" << split_ << "' decoded different hypotheses for their items; "
                  << "the lowest item's is scored\n";
    if (!have_refs_) return {};
    BleuStats cased, lower;
    exact_ = tok_match_ = tok_total_ = 0;
    for (auto& s : segments_) {
        if (!s.refs.empty()) {
            cased.add_text_multi(s.hyp, s.refs, false);
            lower.add_text_multi(s.hyp, s.refs, true);
        }
        if (s.ref_ids.empty()) continue;
        s.exact = std::any_of(s.ref_ids.begin(), s.ref_ids.end(), [&](const auto& r) { return r == *s.hyp_ids; }) ? 1 : 0;
        exact_ += s.exact;
        const auto [match, total] = best_token_match(*s.hyp_ids, s.ref_ids);
        tok_match_ += match;
        tok_total_ += total;
    }
    const auto count = static_cast<double>(segments_.size());
    std::vector<MetricValue> out{{"", cased.score(), true}, {"bleu_lc", lower.score(), true}};
    if (tok_total_ > 0 || exact_ > 0) {
        out.push_back({"exact", 100.0 * static_cast<double>(exact_) / count, true});
        out.push_back({"token_accuracy",
                       tok_total_ > 0 ? 100.0 * static_cast<double>(tok_match_) / static_cast<double>(tok_total_) : 100.0,
                       true});
    }
    return out;
}

namespace {
std::string tsv_field(std::string s) {
    for (char& c : s)
        if (c == '\t' || c == '\n' || c == '\r') c = ' ';
    return s;
}
std::string bleu_field(const BleuStats& s, bool any) {
    if (!any) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", s.score());
    return buf;
}
}  // namespace

void TranslationMetrics::write_outputs(const OutputContext& ctx) {
    std::string text;
    if (pass_groups_)
        for (const auto& s : segments_) text += s.hyp + "\n";
    else
        for (const auto& [id, p] : pairs_) text += p.text + "\n";
    write_file_atomic(ctx.dir / (ctx.split + ".translations.txt"), text);
    if (pass_groups_) write_captions(ctx);
    if (source_) write_bleu_by_length(ctx);
    write_maps(ctx);
}

void TranslationMetrics::write_captions(const OutputContext& ctx) const {
    std::string text = "item\tcaption\texact\treferences\n";
    for (const auto& s : segments_) {
        std::string refs;
        for (std::size_t k = 0; k < s.refs.size(); ++k) refs += (k ? " | " : "") + tsv_field(s.refs[k]);
        text += tsv_field(s.key) + "\t" + tsv_field(s.hyp) + "\t" + (s.exact < 0 ? "-" : std::to_string(s.exact)) +
                "\t" + refs + "\n";
    }
    write_file_atomic(ctx.dir / (ctx.split + ".captions.tsv"), text);
}

void TranslationMetrics::write_bleu_by_length(const OutputContext& ctx) const {
    const std::size_t B = length_bounds_.size() + 1;  // the last bucket is open
    std::vector<BleuStats> cased(B + 1), lower(B + 1);  // [B]: all
    std::vector<std::int64_t> sentences(B + 1), tokens(B + 1);
    for (const auto& s : segments_) {
        if (s.refs.empty() || s.source_len < 0) continue;
        const auto b = static_cast<std::size_t>(
            std::lower_bound(length_bounds_.begin(), length_bounds_.end(), s.source_len) - length_bounds_.begin());
        for (std::size_t k : {b, B}) {
            cased[k].add_text_multi(s.hyp, s.refs, false);
            lower[k].add_text_multi(s.hyp, s.refs, true);
            ++sentences[k];
            tokens[k] += s.source_len;
        }
    }
    if (sentences[B] == 0) return;  // no references, or no source lengths
    std::string text = "bucket\tsentences\tsource_tokens\tbleu\tbleu_lc\n";
    for (std::size_t k = 0; k <= B; ++k) {
        const std::int64_t lo = k == 0 || k == B ? 1 : length_bounds_[k - 1] + 1;  // "all" has no bounds
        const std::string name = k == B ? "all"
                                 : k + 1 == B ? detail::concat(lo, "+")
                                              : detail::concat(lo, "-", length_bounds_[k]);
        text += detail::concat(name, "\t", sentences[k], "\t", tokens[k], "\t", bleu_field(cased[k], sentences[k] > 0),
                               "\t", bleu_field(lower[k], sentences[k] > 0), "\n");
    }
    write_file_atomic(ctx.dir / (ctx.split + ".bleu_by_length.tsv"), text);
}

void TranslationMetrics::write_maps(const OutputContext& ctx) const {
    for (const auto& [id, m] : maps_) {
        std::ostringstream os;
        for (const auto& s : m.source) os << '\t' << s;
        os << '\n';
        for (std::size_t t = 0; t < m.target.size(); ++t) {
            os << m.target[t];
            for (std::size_t k = 0; k < m.source.size(); ++k) {
                char buf[32];
                std::snprintf(buf, sizeof buf, "\t%.4f", static_cast<double>(m.weights[t * m.source.size() + k]));
                os << buf;
            }
            os << '\n';
        }
        const std::string stem = ctx.split + ".attention_" + std::to_string(id);
        write_file_atomic(ctx.dir / (stem + ".tsv"), os.str());
        // Labels: a space token (char mode) shows as a middle dot, so the axis stays readable.
        auto label = [](const std::string& t) { return t == " " ? std::string("\u00B7") : t; };
        plot::Heatmap h;
        h.title = detail::concat("attention, ", ctx.split, " item ", id, ctx.epoch > 0 ? detail::concat(", epoch ", ctx.epoch) : std::string());
        h.x_label = "source";
        h.y_label = "output";
        for (const auto& t : m.source) h.col_labels.push_back(label(t));
        for (const auto& t : m.target) h.row_labels.push_back(label(t));
        h.rows = static_cast<std::int64_t>(m.target.size());
        h.cols = static_cast<std::int64_t>(m.source.size());
        h.values.assign(m.weights.begin(), m.weights.end());
        if (h.rows > 0 && h.cols > 0) plot::write_png(h, ctx.dir / (stem + ".png"));
    }
}

std::vector<std::string> TranslationMetrics::predictions() {
    std::vector<std::string> out;
    out.reserve(pairs_.size());
    for (const auto& [id, p] : pairs_) out.push_back(p.text);
    return out;
}

void TranslationMetrics::save_run_state(StageState& state) const {
    state.put_text("split", split_);
    state.put_text("training", training_ ? "1" : "0");
    for (const auto& [name, v] : {std::pair{"items", items_}, {"exact", exact_}, {"tok_match", tok_match_}, {"tok_total", tok_total_}})
        state.put_number(name, static_cast<double>(v));
}

void TranslationMetrics::load_run_state(const StageState& state) {
    if (const std::string* s = state.text("split")) split_ = *s;
    if (const std::string* t = state.text("training")) training_ = *t == "1";
    items_ = static_cast<std::int64_t>(state.number("items", 0));
    exact_ = static_cast<std::int64_t>(state.number("exact", 0));
    tok_match_ = static_cast<std::int64_t>(state.number("tok_match", 0));
    tok_total_ = static_cast<std::int64_t>(state.number("tok_total", 0));
}
}  // namespace rnnflow::stages
