// What a metric stage's main metric measures, for people. metrics.jsonl and metrics.csv key the
// main metric by the stage id alone ("metrics"); the run's last lines and summary.txt say
// "metrics.bleu=33.41" when the stage names it here, so that a reader need not know the graph.
//
// A metric stage names its main metric by deriving from this class as well as from MetricStage:
//
//   class TranslationMetrics final : public MetricStage, public MainMetricName {
//       std::string main_metric_name() const override { return "bleu"; }
//       ...
//   };
//
// A class of its own rather than a virtual function of MetricStage: adding one would change
// MetricStage's layout and the plug-in ABI, and plug-ins built without it keep working (their
// main metric shows as the stage id, as before).
#pragma once

#include <string>

namespace rnnflow {

class MainMetricName {
public:
    virtual ~MainMetricName();
    // A short lower-case word for the stage's main metric (MetricValue with name ""), e.g.
    // "bleu", "accuracy", "perplexity"; not the name of one of its other values.
    virtual std::string main_metric_name() const = 0;
};

}  // namespace rnnflow
