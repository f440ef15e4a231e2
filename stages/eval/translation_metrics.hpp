// translation_metrics: corpus BLEU (sacreBLEU's default), lower-cased BLEU, exact match and token
// accuracy of decoded hypotheses, with one or several references per segment; writes
// translations, captions, BLEU by source length and attention maps; predicts (translate).
//
//   hypothesis  (ids)     i32 (Th, N) + lengths: decoded target ids, no <sos>/<eos>; PortInfo
//                         vocab = the target vocabulary (detokenised with its tokenizer)
//   reference   (ids)     i32 (Tt, N) + lengths, optional: y1 .. yn <eos> (seq2seq_batches'
//                         target_out); everything from the first <eos> on is ignored
//   references  (text)    optional: the raw target sentences per split (the reader's target);
//                         when given, both BLEU scores compare against these (item k of the
//                         split for batch column item_ids = k) instead of detokenised ids
//   source      (ids)     i32 (Ts, N), optional: source tokens of attention maps, and source
//                         lengths for BLEU by length
//   attention   (tensor)  f32 (Th, N, Ts) + lengths, optional: attention weights per step;
//                         lengths 0 (attention: none) draw no map
//   groups      (text)    optional: per split, a key per item (features' `items`): the items
//                         with one key are one segment with several references (captioning)
//
// Segments. Without `groups` every item is a segment with one reference. With `groups`, the
// items (pairs) with equal key form one segment, in the order of their first item. Its
// hypothesis is that of its lowest-index item decoded in the pass (the items of one image
// decode the same features; when two decoded differently the lowest wins, and the pass warns
// with the count: group_disagreements()). Its references are the references of ALL its items
// in the split (the key → items map is built from the `groups` dataset at prepare), so a
// batch source that decodes one item per key still scores against every caption: the raw
// `references` text of each item when connected, else the detokenised reference ids of the
// items decoded in the pass. A key whose items were none decoded is no segment.
//
// Metrics per evaluation pass (training passes report none: nothing is decoded there):
//   <id>                 corpus BLEU over segments, 0..100, as bleu.hpp describes (13a, exp
//                        smoothing, BP; several references: max clipped counts, closest length)
//   <id>.bleu_lc         the same on lower-cased text (sacreBLEU -lc)
//   <id>.exact           percentage of segments whose hypothesis ids equal the ids of a reference
//                        (with groups: ANY reference of the group; the ids of an item not
//                        decoded in the pass are its raw reference tokenised as the target
//                        vocabulary was: TokenizerSpec::tokenize, then Vocabulary::id)
//   <id>.token_accuracy  percentage: Σ positions t with hyp_t = ref_t / Σ max(|hyp|, |ref|)
//                        (ids, <eos> excluded; too long or too short hypotheses lose); with
//                        groups against the segment's best-matching reference (the highest
//                        matches / max(|hyp|, |ref|), the first on a tie)
// BLEU text: hypotheses and (without `references`) references are detokenised with the
// target vocabulary's tokenizer (char mode concatenates, word mode joins with spaces).
// write_outputs, into RUN_DIR/<id>/ after each evaluation pass (`rnnflow eval` included):
//   <split>.translations.txt   one hypothesis a line, one line per segment, in item order
//   <split>.captions.tsv       with groups: a header line, then per segment: key, generated
//                              caption, exact (1/0, '-' without reference ids), the
//                              references joined by " | " (tabs and newlines in text become spaces)
//   <split>.bleu_by_length.tsv with source connected and references known: a header line
//                              (bucket, sentences, source_tokens, bleu, bleu_lc), a row per
//                              bucket of source length (tokens up to the length, without
//                              <pad>/<eos>; bounds from length_buckets, an open last bucket;
//                              an empty bucket shows '-' for both BLEU), then the row 'all'.
//                              Not metrics: they would flood the metrics table.
//   <split>.attention_<k>.png/.tsv  with attention, for items k < heatmaps: a heatmap (source
//                              tokens across, output tokens down; pipeline/core/plot.hpp) and
//                              its numbers (first row the source tokens, then one row per output
//                              token: the token, then its weights)
// Prediction runs: predicts() is true; predictions() are the detokenised hypotheses of every
// item in item order (no grouping).
// Not supported: sentence-level BLEU, chrF/TER, grouping without the `groups` dataset.
#pragma once

#include <map>
#include <memory>
#include <optional>

#include "bleu.hpp"
#include "pipeline/core/metric_name.hpp"
#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class TranslationMetrics final : public MetricStage, public MainMetricName {
public:
    std::string main_metric_name() const override { return "bleu"; }  // what <id> is, for people
    static StageSchema schema();
    explicit TranslationMetrics(const Params& p);
    void prepare(PrepareContext& ctx) override;
    void begin(const std::string& split) override;
    void accumulate(const Inputs& in, const StepInfo& step) override;
    std::vector<MetricValue> end() override;
    void write_outputs(const OutputContext& ctx) override;
    bool predicts() const override { return true; }
    std::vector<std::string> predictions() override;
    // Resume mid-pass (docs/resume.md): whether the pass trains, and its counts. Hypotheses
    // and attention maps are not kept: training passes decode nothing, and checkpoints fall in
    // training passes.
    void save_run_state(StageState& state) const override;
    void load_run_state(const StageState& state) override;
    // Groups of the last pass in which two decoded items gave different hypotheses.
    std::int64_t group_disagreements() const { return disagreements_; }

private:
    struct Map {  // attention of one item
        std::vector<std::string> source, target;
        std::vector<float> weights;  // (|target|, |source|)
    };
    struct Pair {  // one decoded item
        std::vector<std::int32_t> hyp;                 // ids without <eos>
        std::string text;                              // hyp detokenised
        std::optional<std::vector<std::int32_t>> ref;  // reference ids, when the batch had them
        std::int64_t source_len = -1;                  // source tokens, when source is connected
    };
    struct Groups {  // the `groups` dataset of one split
        std::vector<std::string> keys;                   // per group, in order of its first item
        std::vector<std::vector<std::int64_t>> members;  // per group, item indices ascending
        std::vector<std::int64_t> group_of;              // per item
        std::string origin;
    };
    struct Segment {  // what is scored: one item, or one group
        std::string key, hyp;
        const std::vector<std::int32_t>* hyp_ids = nullptr;
        std::vector<std::string> refs;                    // BLEU references
        std::vector<std::vector<std::int32_t>> ref_ids;   // for exact and token accuracy
        std::int64_t source_len = -1;
        int exact = -1;  // 1/0 once scored, -1 without reference ids
    };
    void add_map(std::int64_t id, std::int64_t n, const Tensor& src, const Tensor& att,
                 const std::vector<std::int32_t>& hy);
    std::vector<Segment> item_segments() const;
    std::vector<Segment> group_segments(const Groups& g);
    std::vector<std::int32_t> reference_ids(const std::string& text) const;
    void write_captions(const OutputContext& ctx) const;
    void write_bleu_by_length(const OutputContext& ctx) const;
    void write_maps(const OutputContext& ctx) const;

    std::int64_t heatmaps_;
    std::vector<std::int64_t> length_bounds_;  // upper bounds of the source-length buckets
    std::string id_;
    std::shared_ptr<const Vocabulary> tvocab_, svocab_;
    bool source_ = false;
    std::map<std::string, std::shared_ptr<const TextSplit>> raw_refs_;
    std::map<std::string, Groups> groups_;
    // The current pass.
    std::string split_;
    std::map<std::int64_t, Pair> pairs_;             // item id → decoded item
    std::map<std::int64_t, std::string> refs_;       // item id → reference text
    std::map<std::int64_t, Map> maps_;
    std::vector<Segment> segments_;                  // after end(), for write_outputs
    const Groups* pass_groups_ = nullptr;            // the split's groups, when connected
    std::int64_t items_ = 0, exact_ = 0, tok_match_ = 0, tok_total_ = 0, disagreements_ = 0;
    bool have_refs_ = false;
    bool training_ = false;  // the pass is a training pass: nothing is decoded, no metrics
};

}  // namespace rnnflow::stages
