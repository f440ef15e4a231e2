// frame_batches: next-frame prediction over sequences of frames (piano rolls from note_sets,
// or any FrameSplit): the model reads frame t - 1 and predicts frame t.
//
//   in  frames (frames)  FrameSplit per split: f32 (T_i, P) per piece
//   out input  (tensor)  f32 (T, N, P): input[t][n] = frame s_n + t - 1 of column n's piece, the
//                        zero frame for frame -1 (a "start" frame: silence)
//   out target (tensor)  f32 (T, N, P): target[t][n] = frame s_n + t
//                        both zero after the column's length; lengths = the window's length
//
// What is predicted: with predict_first (default) every frame of a piece, frame 0 from the zero
// start frame and the model's initial state — the music papers' negative log-likelihood per time
// step averages over all T frames of each piece (Boulanger-Lewandowski et al. 2012; Chung et al.
// 2014). predict_first: false predicts frames 1..T-1 from frames 0..T-2 (T - 1 targets; a piece
// of one frame gives nothing and is left out, counted in 'dropped').
// Horizon (numeric series, stages/data/series.hpp): with horizon H the input is H frames back,
// input[t][n] = frame s_n + t - H (zero before frame 0), so the model forecasts H steps ahead of
// everything it has read; predict_first: false then predicts frames H..T-1 (pieces of at most H
// frames are dropped). H = 1 (default) is the next frame, as above.
// Windows: with max_length > 0 the predicted frames of a training piece are cut into consecutive
// windows of at most max_length frames; each window is a column of its own and starts from zero
// state (its input still starts with the real frame before it). With max_length 0 a window is a
// piece. Other splits (valid, test, infer) are cut by eval_max_length, 0 by default: they are
// evaluated on whole pieces, as the papers do, however training was windowed.
// Batching (stages/data/batch_common.hpp, as seq2seq_batches): windows sorted by (length,
// index) into batches of at most `batch` windows and, with batch_tokens > 0, at most
// batch_tokens padded frames N * T; training with shuffle reorders per epoch with a generator
// seeded from the run seed and the epoch, within pools of `pool` batches, then shuffles the
// batch order; other splits: one sort, the same every pass. Batch::item_ids: the window's index
// in its split (the piece's index when max_length is 0); Batch::items: predicted frames.
// Not supported: carrying recurrent state from one window to the next, overlapping windows,
// frames of different widths in one run.
#pragma once

#include <map>
#include <memory>

#include "batch_common.hpp"
#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class FrameBatches final : public DataSource {
public:
    static StageSchema schema();
    explicit FrameBatches(const Params& p);
    void prepare(PrepareContext& ctx) override;
    std::int64_t begin(const std::string& split, std::int64_t epoch) override;
    bool next(Batch& batch) override;
    std::int64_t value(const std::string& name) const override;

    // A column: frames [start, start + length) of piece `piece` are predicted.
    struct Window {
        std::int64_t piece, start, length;
    };
    // The windows of the pieces of `frames`, in piece order (see above); `dropped` counts
    // pieces with nothing to predict.
    static std::vector<Window> windows(const FrameSplit& frames, bool predict_first, std::int64_t max_length,
                                       std::int64_t& dropped, std::int64_t horizon = 1);

private:
    struct Split {
        std::shared_ptr<const FrameSplit> frames;
        std::vector<Window> windows;
    };
    std::int64_t batch_, batch_tokens_, pool_, max_length_, eval_max_length_;
    bool shuffle_, predict_first_;
    std::int64_t horizon_;
    std::int64_t dim_ = 0;
    std::uint64_t seed_ = 0;
    std::int64_t dropped_ = 0;
    std::map<std::string, Split> splits_;
    // The current pass.
    const Split* cur_ = nullptr;
    std::vector<std::vector<std::int64_t>> batches_;  // window positions into cur_->windows
    std::size_t pos_ = 0;
};

}  // namespace rnnflow::stages
