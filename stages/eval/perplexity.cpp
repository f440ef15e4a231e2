#include "perplexity.hpp"

#include <cmath>
#include <numbers>

namespace rnnflow::stages {

StageSchema Perplexity::schema() {
    return StageSchema("perplexity", "perplexity, mean loss and bits per item of a loss",
                       Role::metric)
        .input("loss", PortType::loss, "(sum of per-item losses in nats, item count) per batch")
        .details("perplexity = exp(sum / count) over a split (lower is better); also reports "
                 "<id>.loss = sum / count (nats per item) and <id>.bpc = loss / ln 2.");
}

Perplexity::Perplexity(const Params& p) { (void)p; }

void Perplexity::begin(const std::string& split) {
    split_ = split;
    sum_ = 0;
    count_ = 0;
}

void Perplexity::accumulate(const Inputs& in, const StepInfo& step) {
    (void)step;
    const Tensor& loss = in.at("loss");  // (2)
    RNNFLOW_CHECK(loss.numel() == 2, "perplexity: input 'loss' must be (2) = (sum, count), got ",
                  shape_str(loss.shape()));
    sum_ += loss.data<float>()[0];
    count_ += loss.data<float>()[1];
}

std::vector<MetricValue> Perplexity::end() {
    RNNFLOW_CHECK(count_ > 0, "perplexity: no items evaluated in split '", split_,
                  "' (count 0); is the split empty?");
    const double loss = sum_ / count_;
    return {{"", std::exp(loss), false},
            {"loss", loss, false},
            {"bpc", loss / std::numbers::ln2, false}};
}

void Perplexity::save_run_state(StageState& state) const {
    state.put_text("split", split_);
    state.put_number("sum", sum_);
    state.put_number("count", count_);
}

void Perplexity::load_run_state(const StageState& state) {
    if (const std::string* s = state.text("split")) split_ = *s;
    sum_ = state.number("sum", 0);
    count_ = state.number("count", 0);
}

}  // namespace rnnflow::stages
