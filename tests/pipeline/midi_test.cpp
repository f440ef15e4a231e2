// pipeline/core/midi: a piano roll into notes, and Standard MIDI Files written and read back
// through libsmf.
#include "pipeline/core/midi.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/error_text.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace rnnflow;
using rnnflow::midi::Note;
using rnnflow::midi::Song;
using rnnflow::test::error_text;
using rnnflow::test::TempDir;

TEST_CASE("midi: a roll's notes — held over consecutive frames, struck again after a gap", "[midi]") {
    // 5 frames x 3 units (pitches 60, 61, 62), 120 ticks a frame.
    const std::vector<float> roll = {
        1, 0, 0,   // t0: 60 starts
        1, 0, 1,   // t1: 60 held, 62 starts
        0, 0, 1,   // t2: 60 ends at t2, 62 held
        1, 0, 0,   // t3: 60 again, 62 ends
        1, 0, 0,   // t4: 60 held to the end
    };
    const auto notes = midi::notes_from_roll(roll.data(), 5, 3, 60, 120, 90);
    const std::vector<Note> want = {{60, 0, 240, 90}, {62, 120, 360, 90}, {60, 360, 600, 90}};
    REQUIRE(notes == want);
    REQUIRE(midi::notes_from_roll(roll.data(), 5, 3, 30, 1, 80).front() == Note{30, 0, 2, 80});
    SECTION("a silent roll has no note; a note above 127 is refused") {
        const std::vector<float> silent(12, 0.f);
        REQUIRE(midi::notes_from_roll(silent.data(), 4, 3, 60, 120, 80).empty());
        REQUIRE(error_text([&] { (void)midi::notes_from_roll(roll.data(), 5, 3, 126, 120, 80); }) ==
                "a note at roll unit 2 is MIDI pitch 128, outside 0..127");
    }
}

TEST_CASE("midi: a written file reads back with the same notes, times and tempo", "[midi]") {
    TempDir dir("rnnflow_midi");
    const fs::path file = dir.path / "song.mid";
    Song song;
    song.ppqn = 480;
    song.bpm = 100;  // 600000 microseconds per quarter note: exact
    // A chord, a note that ends where the same pitch starts again (the off must come first),
    // overlapping notes of different velocities, and a long rest before the last note.
    song.notes = {{48, 0, 960, 80},   {60, 0, 480, 80},    {64, 0, 480, 80},
                  {67, 240, 1440, 60}, {60, 480, 960, 100}, {72, 4800, 5280, 127}};  // by (start, pitch)
    midi::write_smf(file, song);
    REQUIRE(fs::exists(file));
    for (const auto& e : fs::directory_iterator(dir.path)) REQUIRE(e.path() == file);  // no temporary left

    const Song back = midi::read_smf(file);
    REQUIRE(back.ppqn == 480);
    REQUIRE(back.bpm == Approx(100.0).epsilon(1e-12));
    REQUIRE(back.notes == song.notes);  // both sorted by (start, pitch)

    SECTION("a tempo that is not a whole number of microseconds rounds to the nearest") {
        song.bpm = 90;  // 666666.67 us -> 666667
        midi::write_smf(file, song);
        REQUIRE(midi::read_smf(file).bpm == Approx(60e6 / 666667).epsilon(1e-12));
    }
    SECTION("rewriting replaces the file whole") {
        song.notes = {{50, 0, 10, 1}};
        song.ppqn = 96;
        midi::write_smf(file, song);
        const Song again = midi::read_smf(file);
        REQUIRE(again.ppqn == 96);
        REQUIRE(again.notes == song.notes);
    }
    SECTION("an empty song is a valid file") {
        song.notes.clear();
        midi::write_smf(file, song);
        REQUIRE(midi::read_smf(file).notes.empty());
    }
}

TEST_CASE("midi: errors name the file", "[midi]") {
    TempDir dir("rnnflow_midi");
    const fs::path file = dir.path / "bad.mid";
    Song song;
    song.notes = {{60, 0, 480, 0}};
    REQUIRE(error_text([&] { midi::write_smf(file, song); }) ==
            "cannot write MIDI file '" + file.string() + "': note pitch 60 velocity 0 ticks [0, 480) is not a valid note");
    song.notes = {{60, 480, 480, 80}};
    REQUIRE_THROWS_WITH(midi::write_smf(file, song), Catch::Contains("ticks [480, 480) is not a valid note"));
    song.notes.clear();
    song.ppqn = 0;
    REQUIRE_THROWS_WITH(midi::write_smf(file, song), Catch::Contains("ppqn 0 is outside 1..32767"));
    song.ppqn = 480;
    REQUIRE_THROWS_WITH(midi::write_smf(dir.path / "no" / "such.mid", song), Catch::Contains("no/such.mid"));
    REQUIRE_FALSE(fs::exists(file));

    std::ofstream(file) << "not a MIDI file at all";
    // libsmf's own words (from GLib's log, not printed on stderr) end the message.
    REQUIRE(error_text([&] { (void)midi::read_smf(file); }) ==
            "cannot read MIDI file '" + file.string() + "': libsmf: SMF error: MThd signature not found, is that a MIDI file?");
    REQUIRE_THROWS_WITH(midi::read_smf(dir.path / "missing.mid"),
                        Catch::Contains("missing.mid': libsmf: Cannot open input file: No such file or directory"));
}
