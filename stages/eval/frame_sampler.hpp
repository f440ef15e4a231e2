// frame_sampler: generates music from a trained frame model (piano rolls, next-frame
// prediction as frame_batches trains it), one frame at a time, and writes it as a Standard MIDI
// File, a piano-roll picture and note-set JSON.
//
//   logits (tensor)  f32 (T, N, P) from the model, given frames (T, N, P) by the ModelRunner
//   frames (frames)  optional: the pieces to prime from ("SPLIT:INDEX"), note_sets.frames
//
// As frame_batches feeds the model in training, the model reads frame t - 1 (the zero frame
// before frame 0) and gives the logits of frame t. Without a prime the model reads the zero frame
// from a zero state; primed with the first K frames p_0..p_{K-1} of a piece, it reads (zero,
// p_0, ..., p_{K-1}) (K + 1 steps, one call) and the sample continues at frame K. Each next frame
// is drawn unit by unit, independently: unit k is on with probability σ(logit_k / temperature)
// (temperature 0: on when logit_k > 0, i.e. σ > 0.5, no drawing), and fed back as the next input
// (1, 1, P). The piece is the prime's frames and then `length` sampled frames.
// Drawing: std::mt19937_64 seeded with `seed`; per frame, units in order 0..P-1, each on when
// uniform01 (53 bits) < σ in double. Same seed, model and settings → the same piece everywhere.
// Priming: "SPLIT:INDEX" takes piece INDEX (0-based) of the run's split from the `frames`
// input (the data is read in training and when `rnnflow generate` is given --prime-from
// SPLIT:INDEX); "FILE" or "FILE:SPLIT:INDEX" reads a note-set JSON file (note_sets' format and
// checks; the notes must lie in [low, low + P - 1]), piece 0 of split "test" when not given; as
// a parameter relative to the graph file's folder, in a request to the current folder. A prime the
// parameter names is read at prepare (a piece of the data when the run read it), so that a bad
// one stops a run before training rather than after its first epoch.
// A piece shorter than prime_frames primes with all of it.
// Files (SampleRequest::output, e.g. RUN_DIR/generated): OUTPUT.mid (midi.hpp: format 0,
// `tempo` bpm, a frame = 1 / steps_per_beat quarter notes, note pitch = low + unit, a unit on over
// consecutive frames one held note), OUTPUT.png (the roll: time across, pitch up; prime frames in
// another colour) and OUTPUT.json ({"test": [piece]} in note_sets' format, readable by note_sets
// and by --prime-from), each written atomically. generate() returns a one-line summary.
// A request's values override the parameters (SampleRequest). Not supported: velocities or
// durations from the model, note-level (rather than frame-level) sampling, several voices'
// constraints, batches of samples.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class FrameSampler final : public SamplerStage {
public:
    static StageSchema schema();
    explicit FrameSampler(const Params& p);
    void prepare(PrepareContext& ctx) override;
    std::string generate(ModelRunner& model, const SampleRequest& req) override;

    // A sampled piece: the roll (frames, P) row-major, its first `primed` frames from the prime.
    struct Piece {
        std::int64_t frames = 0, P = 0, primed = 0;
        std::vector<float> roll;
        std::string prime_from;  // where the prime came from ("" when not primed)
    };
    // The sampling alone (no files): what generate() writes.
    Piece sample(ModelRunner& model, const SampleRequest& req) const;
    // The files of a piece: OUTPUT.mid, OUTPUT.png, OUTPUT.json.
    void write_files(const Piece& piece, const std::filesystem::path& output) const;

private:
    void check_prime(const PrepareContext& ctx);
    // The first `frames` rows of the piece `from` names; a file is read relative to `base`.
    std::vector<float> prime_rows(const std::string& from, const std::filesystem::path& base, std::int64_t frames,
                                  std::int64_t P) const;

    double temperature_, tempo_;
    std::int64_t seed_, length_, prime_frames_, low_, steps_per_beat_, velocity_;
    std::string prime_from_;
    std::int64_t P_ = -1;  // the logits' width, when known at prepare
    std::filesystem::path base_dir_;  // the graph file's folder: prime_from files given as parameters
    std::map<std::string, std::shared_ptr<const FrameSplit>> splits_;  // from `frames`, by split
};

}  // namespace rnnflow::stages
