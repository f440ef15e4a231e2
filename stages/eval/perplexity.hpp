// perplexity: exp(Σ loss sums / Σ counts) over one pass of a split (lower is better).
//
// Port:    loss  loss f32 (2) = (sum of per-item losses in nats, item count) per batch
// Metrics: ""     perplexity = exp(L), L = Σ sum / Σ count, both accumulated in double
//          "loss" L, nats per item
//          "bpc"  L / ln 2, bits per item (bits per character when items are characters)
// A pass with no items is an error (nothing was evaluated).
// Not supported: per-sequence or per-word (vs per-token) normalisation.
#pragma once

#include "pipeline/core/metric_name.hpp"
#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class Perplexity final : public MetricStage, public MainMetricName {
public:
    std::string main_metric_name() const override { return "perplexity"; }  // what <id> is, for people
    static StageSchema schema();
    explicit Perplexity(const Params& p);

    void begin(const std::string& split) override;
    void accumulate(const Inputs& in, const StepInfo& step) override;
    std::vector<MetricValue> end() override;
    void save_run_state(StageState& state) const override;   // the running sums
    void load_run_state(const StageState& state) override;

private:
    std::string split_;
    double sum_ = 0;
    double count_ = 0;
};

}  // namespace rnnflow::stages
