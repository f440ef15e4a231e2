// note_sets: polyphonic music as sets of sounding notes per time step, read into piano rolls —
// the JSON format of Boulanger-Lewandowski et al. 2012's JSB Chorales, Nottingham, MuseData and
// Piano-midi.de sets:
//   {"train": [piece, ...], "valid": [...], "test": [...]}, piece = [step, ...],
//   step = [note, ...] (MIDI note numbers, ints; [] is a rest)
//
//   out frames (frames)  FrameSplit per split: one f32 (T, P) piano roll per piece,
//                        roll[t][k] = 1 when note low + k sounds at step t, else 0;
//                        P = high - low + 1 (PortInfo channels = P, known without data)
//   value pitches        P, for an output layer's width (out_dim: notes.pitches)
//   value low            the MIDI note of unit 0, for frame_sampler's low (low: notes.low)
//   value skipped_notes  notes outside [low, high] dropped under on_error: skip (all splits)
//   value empty_pieces   pieces without a step dropped under on_error: skip (all splits)
//
// One file holds every split; `splits` names the keys read, each into the split of that name
// (other keys are skipped). The parser is our own, strict JSON (RFC 8259) over the whole file,
// because yaml-cpp took 23 s and 830 MB on MuseData (6 MB) and locates a syntax error at the
// start of the flow rather than where it is. Malformed JSON stops with file:line:column (1-based,
// columns in bytes); a note outside the range and an empty piece name file:line:column and
// split[piece][step] (0-based, as json.load would index them) and stop, or, with on_error: skip,
// are dropped, counted and reported once on standard error. A note that is not an integer
// (60.5, "60", 1e2) is malformed. A note given twice in one step counts once.
// Restore mode reads nothing (the rolls' width comes from the parameters).
// Not supported: note durations or velocities (only on/off per step), other containers (MIDI
// files, .mat, .pkl), splits spread over several files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

// The piano rolls of the `keys` of a note-set JSON text; `file` names it in messages. Notes
// outside [low, high]: an Error, or with skip dropped and counted in `skipped_notes` (likewise
// empty pieces in `empty_pieces`). A key that is absent is an Error naming the keys present.
struct NoteSetRolls {
    std::vector<std::pair<std::string, FrameSplit>> splits;  // in the order of `keys`
    std::int64_t skipped_notes = 0, empty_pieces = 0;
    std::string first_skipped;  // the first skipped note or piece, for the warning
};
NoteSetRolls parse_note_sets(const std::string& text, const std::string& file, const std::vector<std::string>& keys,
                             std::int64_t low, std::int64_t high, bool skip);

class NoteSets final : public DataStage {
public:
    static StageSchema schema();
    explicit NoteSets(const Params& p);
    void prepare(PrepareContext& ctx) override;
    std::int64_t value(const std::string& name) const override;

private:
    std::string file_;
    std::vector<std::string> splits_;
    std::int64_t low_, high_;
    bool skip_;
    std::int64_t skipped_notes_ = 0, empty_pieces_ = 0;
};

}  // namespace rnnflow::stages
