// translation_metrics: corpus BLEU (sacreBLEU's default), lower-cased BLEU, exact match and token
// accuracy of decoded hypotheses; writes translations and attention maps; predicts (translate).
//
//   hypothesis  (ids)     i32 (Th, N) + lengths: decoded target ids, no <sos>/<eos>; PortInfo
//                         vocab = the target vocabulary (detokenised with its tokenizer)
//   reference   (ids)     i32 (Tt, N) + lengths, optional: y1 .. yn <eos> (seq2seq_batches'
//                         target_out); everything from the first <eos> on is ignored
//   references  (text)    optional: the raw target sentences per split (the reader's target);
//                         when given, both BLEU scores compare against these (item k of the
//                         split for batch column item_ids = k) instead of detokenised ids
//   source      (ids)     i32 (Ts, N), optional: for the source tokens of attention maps
//   attention   (tensor)  f32 (Th, N, Ts) + lengths, optional: attention weights per step
//
// Metrics per evaluation pass (training passes report none: nothing is decoded there):
//   <id>                 corpus BLEU, 0..100, as bleu.hpp describes (13a, exp smoothing, BP)
//   <id>.bleu_lc         the same on lower-cased text (sacreBLEU -lc)
//   <id>.exact           percentage of items whose hypothesis ids equal the reference ids
//   <id>.token_accuracy  percentage: Σ positions t with hyp_t = ref_t / Σ max(|hyp|, |ref|)
//                        (ids, <eos> excluded; too long or too short hypotheses lose)
// BLEU text: hypotheses and (without `references`) references are detokenised with the
// target vocabulary's tokenizer (char mode concatenates, word mode joins with spaces).
// write_outputs: <split>.translations.txt (one hypothesis a line, in item order) and, when
// attention is connected, for items k < heatmaps: <split>.attention_<k>.png (a heatmap, source
// tokens across, output tokens down; pipeline/core/plot.hpp) and <split>.attention_<k>.tsv
// (first row the source tokens, then one row per output token: the token, then its weights).
// Prediction runs: predicts() is true; predictions() are the detokenised hypotheses in item order.
// Not supported: several references per segment, sentence-level BLEU, chrF/TER.
#pragma once

#include <map>
#include <memory>

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

private:
    struct Map {  // attention of one item
        std::vector<std::string> source, target;
        std::vector<float> weights;  // (|target|, |source|)
    };
    std::int64_t heatmaps_;
    std::shared_ptr<const Vocabulary> tvocab_, svocab_;
    std::map<std::string, std::shared_ptr<const TextSplit>> raw_refs_;
    // The current pass.
    std::string split_;
    std::map<std::int64_t, std::string> hyps_, refs_;  // item id → text
    std::map<std::int64_t, Map> maps_;
    std::int64_t items_ = 0, exact_ = 0, tok_match_ = 0, tok_total_ = 0;
    bool have_refs_ = false;
    bool training_ = false;  // the pass is a training pass: nothing is decoded, no metrics
};

}  // namespace rnnflow::stages
