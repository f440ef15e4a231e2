#include "frame_batches.hpp"

#include <algorithm>
#include <cstring>
#include <iostream>

namespace rnnflow::stages {

StageSchema FrameBatches::schema() {
    return StageSchema("frame_batches", "next-frame prediction batches over frame sequences (piano rolls)",
                       Role::source)
        .input("frames", PortType::frames, "f32 (T, P) per piece (note_sets)")
        .output("input", PortType::tensor, "f32 (T, N, P) the frame before each predicted one (zero before frame 0)")
        .output("target", PortType::tensor, "f32 (T, N, P) the predicted frames; lengths = frames per column")
        .param_int("batch", 16, Range{1.0, 65536.0}, "at most this many windows (pieces) per batch")
        .param_int("batch_tokens", 0, Range{0.0, 1e9},
                   "also at most this many padded frames, N * T, per batch; 0 = no limit")
        .param_int("pool", 50, Range{1.0, 1e6},
                   "training: windows are sorted by length within pools of this many batches")
        .param_bool("shuffle", true, "training: shuffle windows and batches every epoch (seeded)")
        .param_int("max_length", 0, Range{0.0, 1e9},
                   "training: cut pieces into windows of at most this many predicted frames, each from "
                   "zero state; 0 = whole pieces")
        .param_int("eval_max_length", 0, Range{0.0, 1e9},
                   "the other splits (valid, test, infer): the same; 0 = whole pieces (the papers' "
                   "evaluation, whatever max_length is)")
        .param_bool("predict_first", true,
                    "predict frame 0 too, from a zero start frame (the music papers' NLL per time step "
                    "averages over every frame); false: predict frames 1..T-1 from frames 0..T-2")
        .param_int("horizon", 1, Range{1.0, 1e6},
                   "the input is the frame this many steps before the target: a forecast of horizon H "
                   "(numeric series); 1 = the next frame")
        .value("dropped", "pieces with no frame to predict (at most `horizon` frames long, predict_first: false)")
        .details("input[t] is the frame before target[t]; both (T, N, P), zero after each column's "
                 "length. Windows (max_length for training, eval_max_length for the other splits) "
                 "start from zero recurrent state; their input starts with the real frame before them. "
                 "Batching as seq2seq_batches: sorted by length, training shuffled per epoch (seeded from the run seed and epoch) within pools.");
}

FrameBatches::FrameBatches(const Params& p)
    : batch_(p.get_int("batch")), batch_tokens_(p.get_int("batch_tokens")), pool_(p.get_int("pool")),
      max_length_(p.get_int("max_length")), eval_max_length_(p.get_int("eval_max_length")),
      shuffle_(p.get_bool("shuffle")), predict_first_(p.get_bool("predict_first")),
      horizon_(p.get_int("horizon")) {}

std::vector<FrameBatches::Window> FrameBatches::windows(const FrameSplit& frames, bool predict_first,
                                                        std::int64_t max_length, std::int64_t& dropped,
                                                        std::int64_t horizon) {
    std::vector<Window> out;
    const std::int64_t first = predict_first ? 0 : horizon;
    for (std::size_t i = 0; i < frames.items.size(); ++i) {
        const std::int64_t T = frames.items[i].rows;
        if (T <= first) {
            ++dropped;
            continue;
        }
        const std::int64_t step = max_length > 0 ? max_length : T;
        for (std::int64_t s = first; s < T; s += step)
            out.push_back(Window{static_cast<std::int64_t>(i), s, std::min(step, T - s)});
    }
    return out;
}

void FrameBatches::prepare(PrepareContext& ctx) {
    dim_ = ctx.input_info("frames").channels;
    ctx.set_output_info("input", PortInfo{PortType::tensor, dim_, -1, nullptr});
    ctx.set_output_info("target", PortInfo{PortType::tensor, dim_, -1, nullptr});
    seed_ = ctx.rng()();
    splits_.clear();
    dropped_ = 0;
    for (const auto& name : ctx.splits()) {
        if (!ctx.has_input("frames", name)) continue;
        Split s;
        s.frames = std::any_cast<const std::shared_ptr<const FrameSplit>&>(ctx.input_any("frames", name));
        RNNFLOW_CHECK(s.frames->dim == dim_, "split '", name, "' (", s.frames->origin, "): frames of width ",
                      s.frames->dim, ", the port says ", dim_);
        s.windows = windows(*s.frames, predict_first_, name == "train" ? max_length_ : eval_max_length_, dropped_,
                            horizon_);
        if (name == "train" && s.windows.empty())
            throw Error(detail::concat("no training piece has a frame to predict (", s.frames->items.size(), " pieces)"),
                        "pieces of one frame predict nothing with predict_first: false");
        splits_[name] = std::move(s);
    }
    if (dropped_ > 0)
        std::cerr << "frame_batches '" << ctx.stage_id() << "': left out " << dropped_
                  << " piece(s) of one frame (nothing to predict with predict_first: false)\n";
}

std::int64_t FrameBatches::value(const std::string& name) const {
    if (name == "dropped") return dropped_;
    return Stage::value(name);
}

std::int64_t FrameBatches::begin(const std::string& split, std::int64_t epoch) {
    pos_ = 0;
    batches_.clear();
    auto it = splits_.find(split);
    cur_ = it == splits_.end() ? nullptr : &it->second;
    if (!cur_) return 0;
    const auto& w = cur_->windows;
    auto len = [&w](std::int64_t p) { return w[static_cast<std::size_t>(p)].length; };
    auto shorter = [&](std::int64_t a, std::int64_t b) { return len(a) != len(b) ? len(a) < len(b) : a < b; };
    batches_ = batching::pass_batches(static_cast<std::int64_t>(w.size()), split == "train" && shuffle_, seed_, epoch,
                                      {batch_, batch_tokens_, pool_}, shorter, len);
    return static_cast<std::int64_t>(batches_.size());
}

bool FrameBatches::next(Batch& batch) {
    if (cur_ == nullptr || pos_ >= batches_.size()) return false;
    const auto& cols = batches_[pos_++];
    const auto N = static_cast<std::int64_t>(cols.size());
    const std::int64_t P = dim_;
    std::int64_t T = 0;
    for (std::int64_t p : cols) T = std::max(T, cur_->windows[static_cast<std::size_t>(p)].length);
    batch.outputs.resize(2);
    Tensor& input = batch.outputs[0];   // (T, N, P)
    Tensor& target = batch.outputs[1];  // (T, N, P)
    input.resize(DType::f32, {T, N, P});
    target.resize(DType::f32, {T, N, P});
    input.zero();
    target.zero();
    input.lengths.assign(static_cast<std::size_t>(N), 0);
    batch.item_ids.resize(static_cast<std::size_t>(N));
    batch.items = 0;
    float* x = input.data<float>();
    float* y = target.data<float>();
    const auto row_bytes = static_cast<std::size_t>(P) * sizeof(float);
    for (std::int64_t n = 0; n < N; ++n) {
        const auto p = cols[static_cast<std::size_t>(n)];
        const Window& w = cur_->windows[static_cast<std::size_t>(p)];
        const float* roll = cur_->frames->items[static_cast<std::size_t>(w.piece)].values.data();  // (T_i, P)
        for (std::int64_t t = 0; t < w.length; ++t) {
            const std::int64_t f = w.start + t;  // the predicted frame
            std::memcpy(y + (t * N + n) * P, roll + f * P, row_bytes);
            if (f >= horizon_) std::memcpy(x + (t * N + n) * P, roll + (f - horizon_) * P, row_bytes);
        }
        input.lengths[static_cast<std::size_t>(n)] = static_cast<std::int32_t>(w.length);
        batch.item_ids[static_cast<std::size_t>(n)] = p;
        batch.items += w.length;
    }
    target.lengths = input.lengths;
    batch.reset_state = true;
    return true;
}

}  // namespace rnnflow::stages
