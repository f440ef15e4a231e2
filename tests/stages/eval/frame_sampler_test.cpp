#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include "pipeline/core/midi.hpp"
#include "pipeline/core/text.hpp"
#include "stages/data/note_sets.hpp"
#include "stages/eval/frame_sampler.hpp"
#include "support/error_text.hpp"
#include "support/harness.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace rnnflow;
using rnnflow::stages::FrameSampler;
using rnnflow::test::FakePrepare;
using rnnflow::test::error_text;
using rnnflow::test::params_for;
using rnnflow::test::TempDir;
using Set = std::map<std::string, ParamValue>;

namespace {

constexpr std::int64_t kP = 6;  // units: MIDI 60..65 with low 60

// A model without state: the logits of a step depend only on the frame fed at that step,
// through `row`. Records every call and every frame fed.
class FakeFrameModel : public ModelRunner {
public:
    explicit FakeFrameModel(std::function<std::vector<float>(const float* frame)> row) : row_(std::move(row)) {}
    const Tensor& run(const Tensor& input, bool reset) override {
        REQUIRE(input.dtype() == DType::f32);
        REQUIRE(input.rank() == 3);
        REQUIRE(input.dim(1) == 1);
        REQUIRE(input.dim(2) == kP);
        calls.push_back({input.dim(0), reset});
        out_.resize(DType::f32, {input.dim(0), 1, kP});  // (T, 1, P)
        for (std::int64_t t = 0; t < input.dim(0); ++t) {
            const float* f = input.data<float>() + t * kP;
            fed.emplace_back(f, f + kP);
            const auto r = row_(f);
            std::copy(r.begin(), r.end(), out_.data<float>() + t * kP);
        }
        return out_;
    }
    struct Call { std::int64_t t; bool reset; };
    std::vector<Call> calls;
    std::vector<std::vector<float>> fed;

private:
    std::function<std::vector<float>(const float*)> row_;
    Tensor out_;
};

// Fixed logits, whatever the input.
std::function<std::vector<float>(const float*)> constant(std::vector<float> logits) {
    return [logits](const float*) { return logits; };
}

// Each unit copies the previous unit of the frame fed (a rising line), sure by `margin`; the
// zero frame starts unit 0.
std::function<std::vector<float>(const float*)> rising(float margin) {
    return [margin](const float* f) {
        std::vector<float> r(kP, -margin);
        bool silent = true;
        for (std::int64_t k = 0; k < kP; ++k) silent = silent && f[k] == 0.f;
        if (silent) r[0] = margin;
        for (std::int64_t k = 0; k < kP; ++k)
            if (f[k] > 0.5f) r[static_cast<std::size_t>((k + 1) % kP)] = margin;
        return r;
    };
}

// Three pieces in split "test": piece i has i + 2 frames, frame t sounds unit (t + i) % P.
FrameSplit test_pieces() {
    FrameSplit s;
    s.dim = kP;
    for (std::int64_t i = 0; i < 3; ++i) {
        FrameSplit::Item item;
        item.rows = i + 2;
        item.values.assign(static_cast<std::size_t>(item.rows * kP), 0.f);
        for (std::int64_t t = 0; t < item.rows; ++t) item.values[static_cast<std::size_t>(t * kP + (t + i) % kP)] = 1.f;
        s.items.push_back(std::move(item));
    }
    return s;
}

FrameSampler make(Set set, bool with_frames = true) {
    static const StageSchema s = FrameSampler::schema();
    set.emplace("low", std::int64_t(60));
    FrameSampler stage(params_for(s, set));
    FakePrepare ctx(s);
    ctx.info("logits", PortInfo{PortType::tensor, kP, -1, nullptr});
    if (with_frames) {
        ctx.info("frames", PortInfo{PortType::frames, kP, -1, nullptr});
        ctx.data<FrameSplit>("frames", "test", test_pieces());
    }
    stage.prepare(ctx);
    return stage;
}

SampleRequest request(std::int64_t length, std::int64_t seed = -1, double temperature = -1) {
    SampleRequest r;
    r.length = length;
    r.seed = seed;
    r.temperature = temperature;
    return r;
}

}  // namespace

TEST_CASE("frame_sampler: schema defaults and bad values", "[stage][eval]") {
    const auto s = FrameSampler::schema();
    REQUIRE(s.type() == "frame_sampler");
    REQUIRE(s.role() == Role::sampler);
    const Params p = default_params(s);
    REQUIRE(p.get_int("length") == 64);
    REQUIRE(p.get_float("temperature") == 1.0);
    REQUIRE(p.get_string("prime_from").empty());
    REQUIRE(p.get_int("prime_frames") == 8);
    REQUIRE(p.get_float("tempo") == 120.0);
    REQUIRE(p.get_int("steps_per_beat") == 1);
    REQUIRE(StageSchema::check(*s.find_param("low"), ParamValue(std::int64_t(128))) == "must be in [0, 127], got 128");
    REQUIRE(error_text([&] { FrameSampler bad(params_for(s, {{"steps_per_beat", std::int64_t(7)}})); }) ==
            "steps_per_beat 7 does not divide 480 ticks per quarter note");
    FrameSampler high(params_for(s, {{"low", std::int64_t(125)}}));
    FakePrepare ctx(s);
    ctx.info("logits", PortInfo{PortType::tensor, kP, -1, nullptr});
    REQUIRE(error_text([&] { high.prepare(ctx); }) == "low 125 + 6 units reaches MIDI note 130, above 127");
}

TEST_CASE("frame_sampler: the zero frame first, then each sampled frame fed back", "[stage][eval]") {
    FrameSampler stage = make({});
    FakeFrameModel model(rising(40.f));
    const auto piece = stage.sample(model, request(8));
    REQUIRE(piece.frames == 8);
    REQUIRE(piece.primed == 0);
    for (std::int64_t t = 0; t < 8; ++t)
        for (std::int64_t k = 0; k < kP; ++k)
            REQUIRE(piece.roll[static_cast<std::size_t>(t * kP + k)] == (k == t % kP ? 1.f : 0.f));
    REQUIRE(model.calls.size() == 8);  // the zero frame, then one call per frame but the last
    REQUIRE(model.calls[0].t == 1);
    REQUIRE(model.calls[0].reset);
    REQUIRE(model.fed[0] == std::vector<float>(kP, 0.f));
    for (std::size_t i = 1; i < model.calls.size(); ++i) {
        REQUIRE(model.calls[i].t == 1);
        REQUIRE_FALSE(model.calls[i].reset);
        const auto* prev = piece.roll.data() + static_cast<std::ptrdiff_t>((i - 1) * kP);
        REQUIRE(model.fed[i] == std::vector<float>(prev, prev + kP));
    }
}

TEST_CASE("frame_sampler: seeds, temperature and the 0.5 threshold", "[stage][eval]") {
    const std::vector<float> logits = {2.f, -2.f, 0.3f, -0.3f, 0.05f, -0.05f};
    SECTION("same seed, same piece; another seed, another piece") {
        FrameSampler stage = make({});
        FakeFrameModel m1(constant(logits)), m2(constant(logits)), m3(constant(logits));
        const auto a = stage.sample(m1, request(50, 7)), b = stage.sample(m2, request(50, 7)),
                   c = stage.sample(m3, request(50, 8));
        REQUIRE(a.roll == b.roll);
        REQUIRE(a.roll != c.roll);
    }
    SECTION("temperature 0 is the threshold at probability 0.5; a tiny temperature agrees") {
        std::vector<float> want;
        for (int t = 0; t < 20; ++t)
            for (float l : logits) want.push_back(l > 0 ? 1.f : 0.f);
        for (double temperature : {0.0, 1e-4}) {
            FrameSampler stage = make({});
            FakeFrameModel model(constant(logits));
            REQUIRE(stage.sample(model, request(20, 3, temperature)).roll == want);
        }
    }
    SECTION("temperature 1 draws each unit with probability sigmoid(logit)") {
        FrameSampler stage = make({});
        FakeFrameModel model(constant(logits));
        const std::int64_t T = 4000;
        const auto piece = stage.sample(model, request(T, 11, 1.0));
        for (std::int64_t k = 0; k < kP; ++k) {
            double on = 0;
            for (std::int64_t t = 0; t < T; ++t) on += piece.roll[static_cast<std::size_t>(t * kP + k)];
            const double p = 1 / (1 + std::exp(-static_cast<double>(logits[static_cast<std::size_t>(k)])));
            // 4 standard deviations of a binomial frequency over T draws: a wrong law fails, noise does not.
            REQUIRE(std::abs(on / T - p) < 4 * std::sqrt(p * (1 - p) / T));
        }
    }
    SECTION("a high temperature flattens towards 0.5") {
        FrameSampler stage = make({{"temperature", 50.0}});
        FakeFrameModel model(constant(logits));
        const auto piece = stage.sample(model, request(4000, 5));
        double on = 0;
        for (std::int64_t t = 0; t < 4000; ++t) on += piece.roll[static_cast<std::size_t>(t * kP)];  // logit 2
        REQUIRE(on / 4000 == Approx(1 / (1 + std::exp(-2.0 / 50))).margin(0.03));
    }
}

TEST_CASE("frame_sampler: priming reproduces the primed frames and starts from them", "[stage][eval]") {
    FrameSampler stage = make({});
    const FrameSplit pieces = test_pieces();
    SECTION("SPLIT:INDEX, the first K frames") {
        FakeFrameModel model(rising(40.f));
        SampleRequest req = request(5);
        req.prime_from = "test:2";
        req.prime_frames = 3;
        const auto piece = stage.sample(model, req);
        REQUIRE(piece.primed == 3);
        REQUIRE(piece.frames == 8);
        const auto& item = pieces.items[2].values;  // frame t sounds unit (t + 2) % P
        REQUIRE(std::vector<float>(piece.roll.begin(), piece.roll.begin() + 3 * kP) ==
                std::vector<float>(item.begin(), item.begin() + 3 * kP));
        // One call with the zero frame and the prime, then the rising line goes on from unit 4.
        REQUIRE(model.calls[0].t == 4);
        REQUIRE(model.calls[0].reset);
        REQUIRE(model.fed[0] == std::vector<float>(kP, 0.f));
        for (std::int64_t t = 3; t < 8; ++t) REQUIRE(piece.roll[static_cast<std::size_t>(t * kP + (t + 2) % kP)] == 1.f);
    }
    SECTION("a piece shorter than prime_frames primes with all of it") {
        FakeFrameModel model(rising(40.f));
        SampleRequest req = request(2);
        req.prime_from = "test:0";
        req.prime_frames = 10;
        REQUIRE(stage.sample(model, req).primed == 2);
    }
    SECTION("the parameter, and \"none\" in a request to leave it out") {
        FrameSampler primed = make({{"prime_from", std::string("test:1")}, {"prime_frames", std::int64_t(2)}});
        FakeFrameModel model(rising(40.f));
        REQUIRE(primed.sample(model, request(3)).primed == 2);
        SampleRequest req = request(3);
        req.prime_from = "none";
        REQUIRE(primed.sample(model, req).primed == 0);
    }
    SECTION("a note-set JSON file, FILE and FILE:SPLIT:INDEX") {
        TempDir dir("rnnflow_fs");
        const fs::path file = dir.path / "prime.json";
        std::ofstream(file) << R"({"test": [[[60, 62], [61]]], "valid": [[[65]], [[63], [64], [65]]]})";
        FakeFrameModel model(rising(40.f));
        SampleRequest req = request(1);
        req.prime_from = file.string();
        auto piece = stage.sample(model, req);
        REQUIRE(piece.primed == 2);
        REQUIRE(std::vector<float>(piece.roll.begin(), piece.roll.begin() + 2 * kP) ==
                std::vector<float>{1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0});
        req.prime_from = file.string() + ":valid:1";
        piece = stage.sample(model, req);
        REQUIRE(piece.primed == 3);
        REQUIRE(piece.roll[2 * kP + 5] == 1.f);
        req.prime_from = file.string() + ":valid:2";
        REQUIRE(error_text([&] { (void)stage.sample(model, req); }) ==
                file.string() + ": split 'valid' has 2 pieces (0..1), not piece 2");
        std::ofstream(file) << R"({"test": [[[60, 70]]]})";
        req.prime_from = file.string();
        REQUIRE_THROWS_WITH(stage.sample(model, req), Catch::Contains("note 70 is outside [60, 65]"));
    }
}

TEST_CASE("frame_sampler: a prime the parameters name is read at prepare, a file from the graph's folder",
          "[stage][eval]") {
    static const StageSchema s = FrameSampler::schema();
    auto prepare_with = [&](const std::string& from, const fs::path& base, bool data) {
        FrameSampler stage(params_for(s, {{"low", std::int64_t(60)}, {"prime_from", from}}));
        FakePrepare ctx(s);
        ctx.base(base);
        ctx.info("logits", PortInfo{PortType::tensor, kP, -1, nullptr});
        ctx.info("frames", PortInfo{PortType::frames, kP, -1, nullptr});
        if (data) ctx.data<FrameSplit>("frames", "test", test_pieces());
        stage.prepare(ctx);
        return stage;
    };
    REQUIRE(error_text([&] { (void)prepare_with("test:5", ".", true); }) ==
            "prime_from 'test:5': split 'test' has 3 pieces (0..2)");
    REQUIRE_NOTHROW(prepare_with("test:5", ".", false));  // a restored run: generate says what to do
    TempDir dir("rnnflow_fs");
    std::ofstream(dir.path / "p.json") << R"({"test": [[[61], [62]]]})";
    FrameSampler stage = prepare_with("p.json", dir.path, false);
    FakeFrameModel model(rising(40.f));
    REQUIRE(stage.sample(model, request(1)).primed == 2);
    REQUIRE_THROWS_WITH(prepare_with("missing.json", dir.path, false), Catch::Contains("'missing.json' not found"));
}

TEST_CASE("frame_sampler: bad requests are clear", "[stage][eval]") {
    FakeFrameModel model(rising(40.f));
    SampleRequest req = request(4);
    SECTION("a piece index out of range") {
        FrameSampler stage = make({});
        req.prime_from = "test:3";
        REQUIRE(error_text([&] { (void)stage.sample(model, req); }) == "prime_from 'test:3': split 'test' has 3 pieces (0..2)");
    }
    SECTION("a split the run did not read") {
        FrameSampler stage = make({});
        req.prime_from = "valid:0";
        REQUIRE(error_text([&] { (void)stage.sample(model, req); }) == "prime_from 'valid:0': the run's data has no split 'valid'");
    }
    SECTION("a split piece without the run's data (a restored run)") {
        FrameSampler stage = make({}, false);
        req.prime_from = "test:0";
        REQUIRE(error_text([&] { (void)stage.sample(model, req); }) ==
                "prime_from 'test:0' names a piece of the run's data, which this run did not read");
    }
    SECTION("a missing file") {
        FrameSampler stage = make({});
        req.prime_from = "no_such_file.json";
        REQUIRE_THROWS_WITH(stage.sample(model, req), Catch::Contains("no_such_file.json"));
    }
    SECTION("text to prime with") {
        FrameSampler stage = make({});
        req.prime = "abc";
        REQUIRE(error_text([&] { (void)stage.sample(model, req); }) ==
                "this run's sampler generates frames: it primes with a piece, not with text");
    }
    SECTION("logits of another width") {
        FrameSampler stage = make({});
        struct Wide : ModelRunner {
            Tensor t = Tensor::f32({1, 1, kP + 1});
            const Tensor& run(const Tensor&, bool) override { return t; }
        } wrong;
        REQUIRE(error_text([&] { (void)stage.sample(wrong, req); }) ==
                "model gave logits (1, 1, 7), the frame sampler expects (1, 1, 6)");
    }
}

TEST_CASE("frame_sampler: the MIDI file, picture and JSON of a piece", "[stage][eval][midi]") {
    TempDir dir("rnnflow_fs");
    FrameSampler stage = make({{"tempo", 90.0}, {"steps_per_beat", std::int64_t(2)}, {"velocity", std::int64_t(70)}});
    FakeFrameModel model(constant({3.f, -3.f, 0.2f, -0.2f, 1.f, -1.f}));
    SampleRequest req = request(12, 4);
    req.prime_from = "test:1";
    req.prime_frames = 3;
    req.output = dir.path / "piece";
    const std::string summary = stage.generate(model, req);
    REQUIRE_THAT(summary, Catch::StartsWith("15 frames (3 from test:1, 12 sampled), "));
    REQUIRE_THAT(summary, Catch::Contains("; wrote " + (dir.path / "piece").string() + ".mid, "));

    FakeFrameModel again(constant({3.f, -3.f, 0.2f, -0.2f, 1.f, -1.f}));
    req.output.clear();
    const auto piece = stage.sample(again, req);  // the same seed: the piece the files hold

    // MIDI: the roll's notes, 240 ticks a frame (two frames a quarter note), 90 bpm.
    const midi::Song song = midi::read_smf(dir.path / "piece.mid");
    REQUIRE(song.ppqn == 480);
    REQUIRE(std::round(60e6 / song.bpm) == std::round(60e6 / 90));
    REQUIRE(song.notes == midi::notes_from_roll(piece.roll.data(), piece.frames, kP, 60, 240, 70));
    REQUIRE(song.notes.front().start == 0);  // the prime is part of the piece

    // JSON: note_sets reads it back into the same roll.
    const std::string json = read_text_file({}, (dir.path / "piece.json").string(), "piece");
    const auto rolls = stages::parse_note_sets(json, "piece.json", {"test"}, 60, 65, false);
    REQUIRE(rolls.splits.at(0).second.items.size() == 1);
    REQUIRE(rolls.splits.at(0).second.items[0].values == piece.roll);

    // PNG: a picture (PLplot's).
    std::ifstream png(dir.path / "piece.png", std::ios::binary);
    std::string magic(8, '\0');
    png.read(magic.data(), 8);
    REQUIRE(magic == std::string("\x89PNG\r\n\x1a\n", 8));

    SECTION("into a folder that does not exist: a clear error") {
        req.output = dir.path / "missing" / "piece";
        REQUIRE(error_text([&] { (void)stage.generate(again, req); }) ==
                "cannot write the generated piece: folder '" + (dir.path / "missing").string() + "' does not exist");
    }
}
