#include "word_dropout.hpp"

#include "dropout_mask.hpp"  // batch_key, splitmix64

#include <cstring>
#include <iterator>

namespace rnnflow::stages {

StageSchema WordDropout::schema() {
    return StageSchema("word_dropout", "replace token ids by <unk> at random in training",
                       Role::model)
        .input("in", PortType::ids, "token ids (T, N) + lengths from a vocabulary with <unk>")
        .output("out", PortType::ids, "(T, N): some valid tokens replaced by <unk> in training")
        .param_float("p", 0.0, Range{0, 1}, "probability of replacing each valid token (alpha 0)")
        .param_float("alpha", 0.0, Range{0, 1e6},
                     "> 0: replace id v with probability alpha / (alpha + count(v)), count in the "
                     "training split (rare words more often); overrides p")
        .details("Training only: a valid, non-special token becomes <unk> with probability p or "
                 "alpha / (alpha + count). Evaluation and prediction pass ids through. Use before "
                 "the word embedding, and give char_word_encoder the original ids. Ref: "
                 "Kiperwasser & Goldberg 2016 (frequency-based word dropout).");
}

WordDropout::WordDropout(const Params& p) : p_(p.get_float("p")), alpha_(p.get_float("alpha")) {}

void WordDropout::prepare(PrepareContext& ctx) {
    const PortInfo& info = ctx.input_info("in");
    if (!info.vocab)
        throw Error("word_dropout needs ids from a vocabulary (input 'in' has none)",
                    "connect the ids of a batch source fed by a `vocabulary` stage");
    unk_ = info.vocab->unk();
    if (unk_ < 0)
        throw Error("word_dropout: the vocabulary of input 'in' has no <unk>",
                    "add <unk> to the vocabulary's specials");
    specials_ = static_cast<std::int64_t>(info.vocab->specials().size());
    const std::int64_t V = info.vocab->size();
    prob_.assign(static_cast<std::size_t>(V), 0.f);
    for (std::int64_t v = specials_; v < V; ++v) {
        const double c = static_cast<double>(info.vocab->count(static_cast<std::int32_t>(v)));
        prob_[static_cast<std::size_t>(v)] = static_cast<float>(alpha_ > 0 ? alpha_ / (alpha_ + c) : p_);
    }
    seed_ = ctx.rng()();
    ctx.set_output_info("out", info);
}

void WordDropout::forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) {
    (void)saved;
    const Tensor& x = in.at("in");
    RNNFLOW_CHECK(x.dtype() == DType::i32 && x.rank() == 2, "word_dropout: input 'in' must be ids (T, N), got ",
                  to_string(x.dtype()), " ", shape_str(x.shape()));
    const std::int64_t T = x.dim(0), N = x.dim(1);
    Tensor& y = out.at("out");
    y.resize(DType::i32, {T, N});
    y.lengths = x.lengths;
    std::memcpy(y.raw(), x.raw(), x.bytes());
    if (!step.training() || (p_ <= 0 && alpha_ <= 0)) return;
    const std::uint64_t key = batch_key(seed_, step.epoch, step.batch);
    std::int32_t* ids = y.data<std::int32_t>();
    const auto V = std::ssize(prob_);
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            if (t >= x.length(n)) continue;
            std::int32_t& v = ids[t * N + n];
            if (v < specials_ || v >= V) continue;  // the embedding reports ids out of range
            const double u = static_cast<double>(splitmix64(key + static_cast<std::uint64_t>(t * N + n)) >> 11) * 0x1.0p-53;
            if (u < prob_[static_cast<std::size_t>(v)]) v = unk_;
        }
}

}  // namespace rnnflow::stages
