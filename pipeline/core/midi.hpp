// Standard MIDI Files: piano rolls out as notes, written and read with libsmf (Debian's
// libsmf-dev 1.3), a maintained library for the file format rather than byte code of our own.
//
// Part of the SDK (<rnnflow/midi.hpp>), so that plug-in samplers write music as frame_sampler
// does; libsmf itself stays inside the library (no public header names it).
//
// A roll (T, P), unit k = MIDI note low + k, becomes notes: a unit on (> 0.5) over consecutive
// frames is ONE note, from the tick of its first frame to the tick after its last. A roll cannot
// tell a held note from one struck again on the next frame (the JSB Chorales at quarter-note
// steps write a half note as two equal frames), and holding is the reading that sounds like the
// music the frames came from.
// Files: format 0, one track; a tempo event at tick 0 (microseconds per quarter note = 60e6 /
// bpm, rounded); note on (channel 1, the note's velocity) and note off (velocity 0 in a note-off
// message) per note; at one tick, offs come before ons so a note ending where another starts
// never cuts it. The end of track is at the last note's end.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace rnnflow::midi {

struct Note {
    int pitch = 60;          // MIDI note number, 0..127
    std::int64_t start = 0;  // ticks
    std::int64_t end = 0;    // ticks, exclusive (> start)
    int velocity = 80;       // 1..127
    bool operator==(const Note&) const = default;
};

struct Song {
    int ppqn = 480;            // ticks per quarter note
    double bpm = 120;          // quarter notes per minute
    std::vector<Note> notes;   // sorted by (start, pitch)
};

// The notes of a roll (T, P) row-major, unit k = pitch low + k, one frame = step_ticks ticks.
// Throws when a pitch with a note falls outside 0..127.
std::vector<Note> notes_from_roll(const float* roll, std::int64_t T, std::int64_t P, int low, std::int64_t step_ticks,
                                  int velocity);

// Writes the song atomically (a temporary file beside `file`, then a rename). Throws
// rnnflow::Error naming the file when it cannot, or when a value is out of range (ppqn 1..32767,
// bpm giving 1..16777215 microseconds per quarter, pitch 0..127, velocity 1..127, end > start).
void write_smf(const std::filesystem::path& file, const Song& song);

// Reads a Standard MIDI File with libsmf: ppqn, the first tempo (120 bpm when the file has
// none), and every note of every track and channel, each note on paired with the next note off
// (or note on of velocity 0) of its pitch and channel; notes sorted by (start, pitch). Throws
// rnnflow::Error naming the file when libsmf cannot load it, when its time base is SMPTE frames
// rather than ticks per quarter note, or when a note is never switched off.
Song read_smf(const std::filesystem::path& file);

}  // namespace rnnflow::midi
