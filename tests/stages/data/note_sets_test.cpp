// note_sets: piano rolls from note-set JSON against hand-written rolls; every malformed input
// located as file:line:column (and split[piece][step] for notes and pieces); on_error: skip
// counts; restore mode reads nothing.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "stages/data/note_sets.hpp"
#include "support/error_text.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using rnnflow::stages::NoteSets;
using rnnflow::stages::parse_note_sets;
using rnnflow::test::FakePrepare;
using rnnflow::test::params_for;

namespace {

const std::vector<std::string> kSplits{"train", "valid", "test"};

std::string parse_error(const std::string& text, std::int64_t low = 60, std::int64_t high = 64) {
    try {
        (void)parse_note_sets(text, "m.json", kSplits, low, high, false);
    } catch (const Error& e) {
        return e.message();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("note_sets: rolls hold 1 where a note sounds, P = high - low + 1", "[stage][data][note_sets]") {
    const std::string text = R"({"test": [[[60]]], "train": [[[60, 64], [], [62, 62]], [[61]]],
                                 "valid": [[[64], [60]]], "extra": {"a": [1.5, -2e3, true, null, "\u00e9"]}})";
    const auto rolls = parse_note_sets(text, "m.json", kSplits, 60, 64, false);
    REQUIRE(rolls.splits.size() == 3);
    REQUIRE(rolls.splits[0].first == "train");  // the order of `keys`, not of the file
    const FrameSplit& train = rolls.splits[0].second;
    REQUIRE(train.dim == 5);
    REQUIRE(train.items.size() == 2);
    REQUIRE(train.items[0].rows == 3);
    REQUIRE(train.items[0].values == std::vector<float>{1, 0, 0, 0, 1, /* rest */ 0, 0, 0, 0, 0, /* 62 twice */ 0, 0, 1, 0, 0});
    REQUIRE(train.items[1].values == std::vector<float>{0, 1, 0, 0, 0});
    REQUIRE(rolls.splits[1].second.items[0].values == std::vector<float>{0, 0, 0, 0, 1, 1, 0, 0, 0, 0});
    REQUIRE(rolls.splits[2].second.items.size() == 1);
    REQUIRE(rolls.skipped_notes == 0);
}

TEST_CASE("note_sets: malformed JSON is located by line and column", "[stage][data][note_sets]") {
    REQUIRE(parse_error("{\"train\": [[[60], [61],]]}") == "m.json:1:24: ']' after a ','");
    REQUIRE(parse_error("{\"train\": [[[60]\n  [61]]]}") ==
            "m.json:2:3: expected ',' or ']' after a time step of train[0], found '['");
    REQUIRE(parse_error("{\"train\": [[[60.5]]]}") == "m.json:1:14: a MIDI note number in train[0][0] 60.5 is not an integer");
    REQUIRE(parse_error("{\"train\": [[[\"60\"]]]}") ==
            "m.json:1:14: expected a MIDI note number in train[0][0] (an integer), found '\"'");
    REQUIRE(parse_error("{\"train\": [[[60]]]") == "m.json:1:19: expected ',' or '}' after a split, found the end of the file");
    REQUIRE(parse_error("{\"train\": [[[60]]]} x") == "m.json:1:21: text after the JSON object: 'x'");
    REQUIRE(parse_error("[1]") == "m.json:1:1: expected '{' (the file is one JSON object of splits), found '['");
    REQUIRE(parse_error("{\"train\": [], \"train\": []}") == "m.json:1:15: key 'train' appears again");
    REQUIRE(parse_error("{\"x\": [tru]}") == "m.json:1:8: expected a JSON value, found 't'");
    REQUIRE(parse_error("{\"train\": [[[060]]]}") == "m.json:1:14: a number with a leading zero");
}

TEST_CASE("note_sets: a missing split names the keys present", "[stage][data][note_sets]") {
    const std::string text = R"({"train": [[[60]]], "validation": [[[60]]]})";
    REQUIRE(parse_error(text) == "m.json: no split 'valid'");
    try {
        (void)parse_note_sets(text, "m.json", kSplits, 60, 64, false);
    } catch (const Error& e) {
        REQUIRE(e.hint() == "its keys: 'train', 'validation'; set splits to those to read");
    }
}

TEST_CASE("note_sets: notes outside the range and empty pieces stop, or are skipped and counted",
          "[stage][data][note_sets]") {
    const std::string text = "{\"train\": [[[60], [59, 61]],\n [], [[65]]], \"valid\": [[[60]]], \"test\": [[[64]]]}";
    SECTION("error") {
        REQUIRE(parse_error(text) == "m.json:1:20: train[0][1]: note 59 is outside [60, 64]");
        REQUIRE(parse_error(text, 59) == "m.json:2:2: train[1]: empty piece (no time steps)");
    }
    SECTION("skip") {
        const auto rolls = parse_note_sets(text, "m.json", kSplits, 60, 64, true);
        REQUIRE(rolls.skipped_notes == 2);
        REQUIRE(rolls.empty_pieces == 1);
        REQUIRE(rolls.first_skipped == "m.json:1:20: train[0][1]: note 59 is outside [60, 64]");
        const FrameSplit& train = rolls.splits[0].second;
        REQUIRE(train.items.size() == 2);                      // the empty piece is gone
        REQUIRE(train.items[0].values[5 + 1] == 1.f);          // 61 kept, 59 dropped
        REQUIRE(train.items[1].rows == 1);                     // [[65]]: a step whose note is dropped is a rest
        REQUIRE(train.items[1].values == std::vector<float>(5, 0.f));
    }
}

TEST_CASE("note_sets: the stage reads a file, reports its values, and reads nothing in restore mode",
          "[stage][data][note_sets]") {
    const auto dir = std::filesystem::temp_directory_path() / "rnnflow_note_sets_test";
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "m.json") << R"({"train": [[[21], [108, 20]]], "valid": [[[21]]]})";
    const StageSchema s = NoteSets::schema();
    REQUIRE(s.find_param("low")->default_value == ParamValue(std::int64_t(21)));
    REQUIRE(s.find_param("high")->default_value == ParamValue(std::int64_t(108)));
    REQUIRE(StageSchema::check(*s.find_param("high"), ParamValue(std::int64_t(128))) == "must be in [0, 127], got 128");
    REQUIRE(rnnflow::test::error_text([&] { NoteSets bad(params_for(s, {{"file", std::string("m.json")},
                                                                        {"low", std::int64_t(70)},
                                                                        {"high", std::int64_t(60)}})); }) ==
            "low (70) is above high (60)");
    {
        NoteSets stage(params_for(s, {{"file", std::string("m.json")}, {"splits", std::vector<std::string>{"train", "valid"}},
                                      {"on_error", std::string("skip")}}));
        FakePrepare ctx(s);
        ctx.base(dir);
        stage.prepare(ctx);
        REQUIRE(ctx.out_info("frames").channels == 88);
        REQUIRE(stage.value("pitches") == 88);
        REQUIRE(stage.value("skipped_notes") == 1);
        const FrameSplit& train = ctx.out<FrameSplit>("frames", "train");
        REQUIRE(train.items.at(0).rows == 2);
        REQUIRE(train.items[0].values[0] == 1.f);
        REQUIRE(train.items[0].values[88 + 87] == 1.f);
        REQUIRE(!ctx.has_out("frames", "test"));
    }
    {
        NoteSets stage(params_for(s, {{"file", std::string("missing.json")}}));
        FakePrepare ctx(s, 1, PrepareMode::restore);
        stage.prepare(ctx);  // reads nothing: the file need not exist
        REQUIRE(ctx.out_info("frames").channels == 88);
        REQUIRE(!ctx.has_out("frames", "train"));
    }
    std::filesystem::remove_all(dir);
}
