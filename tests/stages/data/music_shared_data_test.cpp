// note_sets on the real polyphonic-music files in ../shared/data: pieces, time steps and sounding
// notes per split against the figures their READMEs give (skipped, exit 77, where ../shared is
// absent).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "stages/data/note_sets.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;

namespace {

std::filesystem::path shared_data(const std::string& sub) {
    const auto p = std::filesystem::path(RNNFLOW_SOURCE_DIR) / ".." / "shared" / "data" / sub;
    if (!std::filesystem::exists(p)) {
        std::cerr << "skipped: " << p.string() << " not found (../shared/data exists only on developer machines and in CI)\n";
        std::exit(77);
    }
    return p;
}

struct Counts {
    std::size_t pieces = 0;
    std::int64_t steps = 0, notes = 0;
};

Counts counts(const FrameSplit& fs) {
    Counts c;
    c.pieces = fs.items.size();
    for (const auto& item : fs.items) {
        c.steps += item.rows;
        for (float v : item.values) c.notes += v == 1.f;
    }
    return c;
}

void check_file(const std::filesystem::path& dir, const std::string& file, const std::vector<Counts>& want) {
    const StageSchema s = stages::NoteSets::schema();
    stages::NoteSets reader(params_for(s, {{"file", file}}));
    FakePrepare ctx(s);
    ctx.base(dir);
    reader.prepare(ctx);
    REQUIRE(reader.value("skipped_notes") == 0);
    const char* splits[] = {"train", "valid", "test"};
    for (std::size_t k = 0; k < 3; ++k) {
        INFO(file << " " << splits[k]);
        const Counts c = counts(ctx.out<FrameSplit>("frames", splits[k]));
        REQUIRE(c.pieces == want[k].pieces);
        REQUIRE(c.steps == want[k].steps);
        REQUIRE(c.notes == want[k].notes);
    }
}

}  // namespace

TEST_CASE("note_sets: JSB Chorales has the README's pieces, steps and notes", "[stage][data][note_sets][shared]") {
    // README: train 229 / 13,807 / 53,824; valid 76 / 4,602 / 17,811; test 77 / 4,725 / 18,367.
    check_file(shared_data("jsb_chorales"), "jsb_chorales.json", {{229, 13807, 53824}, {76, 4602, 17811}, {77, 4725, 18367}});
}

TEST_CASE("note_sets: Nottingham, MuseData and Piano-midi.de have the README's pieces, steps and notes",
          "[stage][data][note_sets][shared]") {
    const auto dir = shared_data("polyphonic_music");
    check_file(dir, "nottingham.json", {{694, 176561, 699403}, {173, 45513, 180192}, {170, 44463, 177421}});
    check_file(dir, "musedata.json", {{524, 245202, 856543}, {135, 82755, 287893}, {124, 64339, 211857}});
    check_file(dir, "piano_midi.json", {{87, 75911, 231089}, {12, 8540, 27623}, {25, 19036, 56067}});
}
