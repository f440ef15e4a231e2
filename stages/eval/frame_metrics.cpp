#include "frame_metrics.hpp"

#include <cmath>

#include "stages/train/binary_cross_entropy.hpp"

namespace rnnflow::stages {

StageSchema FrameMetrics::schema() {
    return StageSchema("frame_metrics",
                       "NLL per time step, frame accuracy and F1 of multi-label frames, next to a repeat-the-last-frame baseline",
                       Role::metric)
        .input("logits", PortType::tensor, "scores (T, N, P); p = sigmoid(logits)")
        .input("target", PortType::tensor, "target frames (T, N, P) in [0, 1] + lengths")
        .optional_input("previous", PortType::tensor,
                        "the frame before each target (frame_batches.input): the baseline predicts it again")
        .param_float("threshold", 0.5, Range{0.0, 1.0}, "a unit is predicted on when p > threshold")
        .param_float("baseline_epsilon", 0.05, Range{1e-6, 0.5},
                     "the baseline's probability of a change: p = 1 - ε where the previous frame is on, ε where off")
        .details("nll (main, lower is better) = Σ over counted steps and units of the binary "
                 "cross-entropy / counted steps, as binary_cross_entropy; accuracy = TP / (TP + FP + FN) "
                 "(Bay et al. 2009, as Boulanger-Lewandowski et al. 2012), precision, recall, f1 = "
                 "2TP / (2TP + FP + FN), summed over the split; with `previous`, baseline_nll, "
                 "baseline_accuracy and baseline_f1 for predicting the previous frame again. "
                 "Also: frames (counted steps).");
}

FrameMetrics::FrameMetrics(const Params& p)
    : threshold_(p.get_float("threshold")), epsilon_(p.get_float("baseline_epsilon")) {}

void FrameMetrics::prepare(PrepareContext& ctx) {
    has_baseline_ = ctx.connected("previous");
    const std::int64_t a = ctx.input_info("logits").channels, b = ctx.input_info("target").channels;
    RNNFLOW_CHECK(a <= 0 || b <= 0 || a == b, "frame_metrics: 'logits' has ", a, " channels but 'target' has ", b,
                  "; they must be equal");
}

void FrameMetrics::begin(const std::string& split) {
    split_ = split;
    model_ = Sums{};
    baseline_ = Sums{};
    frames_ = 0;
}

namespace {

// Adds one unit's prediction (on / off) against its target.
void count(FrameMetrics::Sums& s, bool predicted, bool gold) {
    s.tp += predicted && gold;
    s.fp += predicted && !gold;
    s.fn += !predicted && gold;
}

}  // namespace

void FrameMetrics::accumulate(const Inputs& in, const StepInfo& step) {
    (void)step;
    const Tensor& x = in.at("logits");  // (T, N, P)
    const Tensor& y = in.at("target");  // (T, N, P)
    if (y.numel() == 0) return;          // a prediction run: nothing to score
    RNNFLOW_CHECK(x.rank() == 3 && x.shape() == y.shape(), "frame_metrics: 'logits' ", shape_str(x.shape()),
                  " and 'target' ", shape_str(y.shape()), " must both be (T, N, P)");
    const Tensor* prev = has_baseline_ && in.has("previous") ? &in.at("previous") : nullptr;
    RNNFLOW_CHECK(!prev || prev->shape() == y.shape(), "frame_metrics: 'previous' ", shape_str(prev->shape()),
                  " must be the shape of 'target' ", shape_str(y.shape()));
    const std::int64_t T = x.dim(0), N = x.dim(1), P = x.dim(2);
    const float* xd = x.data<float>();
    const float* yd = y.data<float>();
    const float* pd = prev ? prev->data<float>() : nullptr;
    const double log_keep = std::log1p(-epsilon_), log_change = std::log(epsilon_);
    for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t t = 0; t < std::min(T, y.length(n)); ++t) {
            frames_ += 1;
            for (std::int64_t p = 0; p < P; ++p) {
                const std::int64_t i = (t * N + n) * P + p;
                const bool gold = yd[i] > 0.5f;
                model_.nll += binary_cross_entropy_unit(xd[i], yd[i]);
                count(model_, stable_sigmoid(xd[i]) > threshold_, gold);
                if (!pd) continue;
                const bool on = pd[i] > 0.5f;  // p(on) = 1 - ε if on, ε if off
                baseline_.nll -= yd[i] * (on ? log_keep : log_change) + (1.0 - yd[i]) * (on ? log_change : log_keep);
                count(baseline_, on, gold);
            }
        }
}

namespace {

double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

}  // namespace

std::vector<MetricValue> FrameMetrics::end() {
    RNNFLOW_CHECK(frames_ > 0, "frame_metrics: no frame evaluated in split '", split_, "'; is the split empty?");
    const Sums& m = model_;
    std::vector<MetricValue> out{{"", m.nll / frames_, false},
                                 {"accuracy", ratio(m.tp, m.tp + m.fp + m.fn), true},
                                 {"precision", ratio(m.tp, m.tp + m.fp), true},
                                 {"recall", ratio(m.tp, m.tp + m.fn), true},
                                 {"f1", ratio(2 * m.tp, 2 * m.tp + m.fp + m.fn), true},
                                 {"frames", frames_, true}};
    if (has_baseline_) {
        const Sums& b = baseline_;
        out.push_back({"baseline_nll", b.nll / frames_, false});
        out.push_back({"baseline_accuracy", ratio(b.tp, b.tp + b.fp + b.fn), true});
        out.push_back({"baseline_f1", ratio(2 * b.tp, 2 * b.tp + b.fp + b.fn), true});
    }
    return out;
}

void FrameMetrics::save_run_state(StageState& state) const {
    state.put_text("split", split_);
    state.put_number("frames", frames_);
    for (const auto& [name, s] : {std::pair{"model", &model_}, std::pair{"baseline", &baseline_}}) {
        const std::string k = name;
        state.put_number(k + ".nll", s->nll);
        state.put_number(k + ".tp", s->tp);
        state.put_number(k + ".fp", s->fp);
        state.put_number(k + ".fn", s->fn);
    }
}

void FrameMetrics::load_run_state(const StageState& state) {
    if (const std::string* s = state.text("split")) split_ = *s;
    frames_ = state.number("frames", 0);
    for (const auto& [name, s] : {std::pair{"model", &model_}, std::pair{"baseline", &baseline_}}) {
        const std::string k = name;
        s->nll = state.number(k + ".nll", 0);
        s->tp = state.number(k + ".tp", 0);
        s->fp = state.number(k + ".fp", 0);
        s->fn = state.number(k + ".fn", 0);
    }
}

}  // namespace rnnflow::stages
