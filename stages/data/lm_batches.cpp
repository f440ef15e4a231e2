#include "lm_batches.hpp"

namespace rnnflow::stages {

StageSchema LmBatches::schema() {
    return StageSchema("lm_batches", "language-model batches: N parallel streams, T steps each",
                       Role::source)
        .input("in", PortType::sequences, "id sequences per split, concatenated into one stream")
        .output("ids", PortType::ids, "i32 (T, N): inputs, time-major")
        .output("targets", PortType::ids, "i32 (T, N): the next id of each input")
        .param_int("batch", 32, Range{1.0, 4096.0}, "N: parallel streams per batch")
        .param_int("bptt", 64, Range{1.0, 100000.0}, "T: time steps per batch (backprop through time)")
        .details("Each split's ids form one stream cut into N contiguous parts of (len - 1) / N "
                 "ids; batch b holds steps [bT, bT + T) of every part; the last batch may be "
                 "shorter. State is reset only at the first batch of a pass.");
}

LmBatches::LmBatches(const Params& p) : batch_(p.get_int("batch")), bptt_(p.get_int("bptt")) {}

void LmBatches::prepare(PrepareContext& ctx) {
    const PortInfo& in = ctx.input_info("in");
    ctx.set_output_info("ids", PortInfo{PortType::ids, -1, in.classes, in.vocab});
    ctx.set_output_info("targets", PortInfo{PortType::ids, -1, in.classes, in.vocab});
    streams_.clear();
    for (const auto& split : ctx.splits()) {
        if (!ctx.has_input("in", split)) continue;
        const auto& seq = ctx.input<SequenceSplit>("in", split);
        std::vector<std::int32_t> stream;
        std::size_t total = 0;
        for (const auto& item : seq.items) total += item.size();
        if (total == 0) continue;  // no data: begin() gives 0 batches
        stream.reserve(total);
        for (const auto& item : seq.items) stream.insert(stream.end(), item.begin(), item.end());
        const auto len = static_cast<std::int64_t>(stream.size());
        if ((len - 1) / batch_ < 1)
            throw Error(detail::concat("split '", split, "' (", seq.origin, ") has ", len,
                                       " ids, too few for batch = ", batch_,
                                       " streams (each needs at least 2)"),
                        detail::concat("lower batch to at most ", std::max<std::int64_t>(len - 1, 1)));
        streams_[split] = std::move(stream);
    }
}

std::int64_t LmBatches::begin(const std::string& split, std::int64_t epoch) {
    (void)epoch;  // the order is the same every epoch
    pos_ = 0;
    auto it = streams_.find(split);
    if (it == streams_.end()) {
        cur_ = nullptr;
        len_ = batches_ = 0;
        return 0;
    }
    cur_ = &it->second;
    len_ = (static_cast<std::int64_t>(cur_->size()) - 1) / batch_;
    batches_ = (len_ + bptt_ - 1) / bptt_;
    return batches_;
}

bool LmBatches::next(Batch& batch) {
    if (cur_ == nullptr || pos_ >= batches_) return false;
    const std::int64_t t0 = pos_ * bptt_;
    const std::int64_t steps = std::min(bptt_, len_ - t0);  // T'
    const std::int64_t n = batch_;
    batch.outputs.resize(2);
    Tensor& ids = batch.outputs[0];
    Tensor& targets = batch.outputs[1];
    ids.resize(DType::i32, {steps, n});     // (T', N)
    targets.resize(DType::i32, {steps, n});  // (T', N)
    ids.lengths.clear();
    targets.lengths.clear();
    std::int32_t* x = ids.data<std::int32_t>();
    std::int32_t* y = targets.data<std::int32_t>();
    const std::int32_t* s = cur_->data();
    for (std::int64_t t = 0; t < steps; ++t)
        for (std::int64_t c = 0; c < n; ++c) {
            const std::int64_t at = c * len_ + t0 + t;  // stream c starts at c * L
            x[t * n + c] = s[at];
            y[t * n + c] = s[at + 1];
        }
    batch.reset_state = pos_ == 0;
    batch.items = steps * n;
    ++pos_;
    return true;
}

bool LmBatches::skip(std::int64_t batches) {
    pos_ = std::min(batches_, pos_ + std::max<std::int64_t>(0, batches));
    return true;
}

}  // namespace rnnflow::stages
