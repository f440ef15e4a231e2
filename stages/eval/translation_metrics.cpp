#include "translation_metrics.hpp"

#include <cstdio>
#include <sstream>

#include "pipeline/core/plot.hpp"

namespace rnnflow::stages {

StageSchema TranslationMetrics::schema() {
    return StageSchema("translation_metrics",
                       "BLEU (sacreBLEU default), lower-cased BLEU, exact match, token accuracy; "
                       "translations and attention maps",
                       Role::metric)
        .input("hypothesis", PortType::ids, "i32 (Th, N) decoded target ids without <sos>/<eos>")
        .optional_input("reference", PortType::ids,
                        "i32 (Tt, N) reference ids y1 .. yn <eos> (seq2seq_batches.target_out)")
        .optional_input("references", PortType::text,
                        "raw reference sentences per split (the reader's target): BLEU against these")
        .optional_input("source", PortType::ids, "i32 (Ts, N) source ids, for attention maps")
        .optional_input("attention", PortType::tensor, "f32 (Th, N, Ts) attention weights, for attention maps")
        .param_int("heatmaps", 3, Range{0.0, 1000.0},
                   "write attention maps of the items with index below this (needs attention)")
        .details("BLEU as sacreBLEU's corpus_bleu computes it by default: 13a tokenisation, 4-grams, "
                 "brevity penalty exp(1 - r/c) when c < r, 'exp' smoothing of zero n-gram matches. "
                 "<id>.bleu_lc lower-cases first. <id>.exact and <id>.token_accuracy compare ids, in "
                 "percent. Writes <split>.translations.txt and <split>.attention_<k>.png (and .tsv) into the run "
                 "folder; `rnnflow translate` prints the detokenised hypotheses.");
}

TranslationMetrics::TranslationMetrics(const Params& p) : heatmaps_(p.get_int("heatmaps")) {}

void TranslationMetrics::prepare(PrepareContext& ctx) {
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
    if (ctx.connected("source")) svocab_ = ctx.input_info("source").vocab;
    raw_refs_.clear();
    if (ctx.connected("references"))
        for (const auto& split : ctx.splits())
            if (ctx.has_input("references", split))
                raw_refs_[split] = std::any_cast<const std::shared_ptr<const TextSplit>&>(
                    ctx.input_any("references", split));
}

void TranslationMetrics::begin(const std::string& split) {
    split_ = split;
    hyps_.clear();
    refs_.clear();
    maps_.clear();
    items_ = exact_ = tok_match_ = tok_total_ = 0;
    have_refs_ = false;
    training_ = false;
}

namespace {
std::string detok(const Vocabulary& v, const std::vector<std::int32_t>& ids) {
    std::vector<std::string> toks;
    toks.reserve(ids.size());
    for (auto id : ids) toks.push_back(id >= 0 && id < v.size() ? v.token(id) : std::string("<?>"));
    return v.tokenizer().detokenize(toks);
}
}  // namespace

void TranslationMetrics::accumulate(const Inputs& in, const StepInfo& step) {
    // Training passes decode nothing (the decoder's hypothesis is empty there): no metrics.
    if (step.phase == Phase::train) {
        training_ = true;
        return;
    }
    const Tensor& hyp = in.at("hypothesis");  // (Th, N)
    RNNFLOW_CHECK(hyp.rank() == 2, "translation_metrics: 'hypothesis' must be (T, N), got ", shape_str(hyp.shape()));
    const std::int64_t T = hyp.dim(0), N = hyp.dim(1);
    RNNFLOW_CHECK(static_cast<std::int64_t>(step.item_ids.size()) == N,
                  "translation_metrics: the batch has ", N, " columns but ", step.item_ids.size(),
                  " item ids; the batch source must set item ids (seq2seq_batches does)");
    const std::int32_t eos = tvocab_->special("<eos>");
    const std::int32_t* h = hyp.data<std::int32_t>();

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
    const Tensor* att = in.has("attention") ? &in.at("attention") : nullptr;
    const bool maps = att && src && svocab_ && att->rank() == 3 && att->dim(1) == N && src->rank() == 2 &&
                      src->dim(1) == N && step.phase != Phase::train;

    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t id = step.item_ids[static_cast<std::size_t>(n)];
        std::vector<std::int32_t> hy;
        const std::int64_t hl = std::min(hyp.length(n), T);
        for (std::int64_t t = 0; t < hl; ++t) {
            const std::int32_t v = h[t * N + n];
            if (v == eos) break;
            hy.push_back(v);
        }
        hyps_[id] = detok(*tvocab_, hy);
        ++items_;
        if (ref_valid) {
            have_refs_ = true;
            std::vector<std::int32_t> ry;
            const std::int32_t* r = ref->data<std::int32_t>();
            for (std::int64_t t = 0; t < std::min(ref->length(n), ref->dim(0)); ++t) {
                const std::int32_t v = r[t * N + n];
                if (v == eos) break;
                ry.push_back(v);
            }
            exact_ += hy == ry ? 1 : 0;
            const std::size_t common = std::min(hy.size(), ry.size());
            for (std::size_t t = 0; t < common; ++t) tok_match_ += hy[t] == ry[t] ? 1 : 0;
            tok_total_ += static_cast<std::int64_t>(std::max(hy.size(), ry.size()));
            if (!raw) refs_[id] = detok(*tvocab_, ry);
        }
        if (raw) {
            RNNFLOW_CHECK(id >= 0 && static_cast<std::size_t>(id) < raw->items.size(), "translation_metrics: item ", id,
                          " is beyond the ", raw->items.size(), " references of split '", step.split, "' (",
                          raw->origin, "); connect references to the reader that feeds the batches");
            refs_[id] = raw->items[static_cast<std::size_t>(id)];
            have_refs_ = true;
        }
        if (maps && id < heatmaps_ && att->length(n) > 0) {  // lengths 0: no attention (attention: none)
            Map m;
            const std::int64_t ts = src->length(n), th = std::min(att->length(n), att->dim(0));
            const std::int32_t* s = src->data<std::int32_t>();
            for (std::int64_t t = 0; t < ts; ++t) m.source.push_back(svocab_->token(s[t * N + n]));
            for (std::int64_t t = 0; t < th; ++t)
                m.target.push_back(t < static_cast<std::int64_t>(hy.size()) ? tvocab_->token(hy[static_cast<std::size_t>(t)])
                                                                            : std::string("<eos>"));
            const std::int64_t S = att->dim(2);
            const float* a = att->data<float>();
            for (std::int64_t t = 0; t < th; ++t)
                for (std::int64_t k = 0; k < ts && k < S; ++k) m.weights.push_back(a[(t * N + n) * S + k]);
            if (ts > S) m.source.resize(static_cast<std::size_t>(S));
            maps_[id] = std::move(m);
        }
    }
}

std::vector<MetricValue> TranslationMetrics::end() {
    if (split_ == "infer" || (training_ && items_ == 0)) return {};
    RNNFLOW_CHECK(items_ > 0, "translation_metrics: no items evaluated in split '", split_, "'; is the split empty?");
    if (!have_refs_) return {};
    std::vector<std::string> h, r;
    for (const auto& [id, text] : refs_) {
        r.push_back(text);
        auto it = hyps_.find(id);
        h.push_back(it == hyps_.end() ? std::string() : it->second);
    }
    std::vector<MetricValue> out{{"", corpus_bleu(h, r, false), true}, {"bleu_lc", corpus_bleu(h, r, true), true}};
    if (tok_total_ > 0 || exact_ > 0) {
        out.push_back({"exact", 100.0 * static_cast<double>(exact_) / static_cast<double>(items_), true});
        out.push_back({"token_accuracy",
                       tok_total_ > 0 ? 100.0 * static_cast<double>(tok_match_) / static_cast<double>(tok_total_) : 100.0,
                       true});
    }
    return out;
}

void TranslationMetrics::write_outputs(const OutputContext& ctx) {
    std::string text;
    for (const auto& [id, line] : hyps_) text += line + "\n";
    write_file_atomic(ctx.dir / (ctx.split + ".translations.txt"), text);
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
    out.reserve(hyps_.size());
    for (const auto& [id, line] : hyps_) out.push_back(line);
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
