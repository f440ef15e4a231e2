#include <catch2/catch.hpp>

#include <filesystem>

#include "metric_support.hpp"
#include "stages/eval/attention_images.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using rnnflow::stages::AttentionImages;
using rnnflow::test::FakePrepare;
using rnnflow::test::make_inputs;
using rnnflow::test::metric;
using rnnflow::test::params_for;
using rnnflow::test::read_text;
namespace fs = std::filesystem;

namespace {
// <pad>=0 <unk>=1 <sos>=2 <eos>=3 a=4 red=5 circle=6 above=7 blue=8 square=9
std::shared_ptr<const Vocabulary> caption_vocab() {
    std::vector<std::string> t{"<pad>", "<unk>", "<sos>", "<eos>", "a", "red", "circle", "above", "blue", "square"};
    TokenizerSpec spec;
    spec.mode = "word";
    return std::make_shared<const Vocabulary>(t, std::vector<std::int64_t>(t.size(), 1),
                                              std::vector<std::string>{"<pad>", "<unk>", "<sos>", "<eos>"}, spec);
}

std::string message_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.message();
    }
    return "(no error)";
}

// Images of 4 x 4 pixels in 2 x 2 patches (patch 2): F = 4, D = 12 (no position channels).
FrameSplit images(std::size_t pairs, std::int64_t rows = 4) {
    FrameSplit f;
    f.dim = 12;
    f.origin = "test images";
    for (std::size_t k = 0; k < pairs; ++k) {
        std::vector<float> v(static_cast<std::size_t>(rows * 12), 0.0f);
        v[0] = 1.0f;  // a red pixel in the top-left corner
        f.items.push_back({rows, v});
    }
    return f;
}
}  // namespace

TEST_CASE("attention_images: layout lines parse; bad ones say what is wrong", "[stage][eval]") {
    const auto things = AttentionImages::parse_layout("red circle: 0 1 6 7; blue squares: 35", 36);
    REQUIRE(things.size() == 2);
    CHECK(things[0].words == std::vector<std::string>{"red", "circle"});
    CHECK(things[0].patches == std::vector<std::int64_t>{0, 1, 6, 7});
    CHECK(things[1].words == std::vector<std::string>{"blue", "squares"});
    CHECK(things[1].patches == std::vector<std::int64_t>{35});
    CHECK(message_of([] { AttentionImages::parse_layout("red circle 0 1", 36); }) ==
          "attention_images: layout entry 'red circle 0 1' has no ':' (expected 'phrase: p p p')");
    CHECK(message_of([] { AttentionImages::parse_layout("red circle: 0 36", 36); }) ==
          "attention_images: layout entry 'red circle: 0 36': patch 36 of 36");
    CHECK(message_of([] { AttentionImages::parse_layout("red circle: 0 x", 36); }) ==
          "attention_images: layout entry 'red circle: 0 x': 'x' is not a patch number");
}

TEST_CASE("attention_images: mass on the named thing at the step of its last word", "[stage][eval]") {
    // "a red circle above a blue square <eos>" over F = 4 patches; step t's weights: patch t % 4
    // gets 0.7, the others 0.1.
    const std::vector<std::string> words{"a", "red", "circle", "above", "a", "blue", "square", "<eos>"};
    std::vector<float> w(8 * 4, 0.1f);
    for (int t = 0; t < 8; ++t) w[static_cast<std::size_t>(t * 4 + t % 4)] = 0.7f;
    const auto things = AttentionImages::parse_layout("red circle: 1 2; blue square: 2; green cross: 0", 4);
    const auto s = AttentionImages::score(words, w, 4, things);
    CHECK(s.events == 2);  // the green cross is not named: no event
    // "circle" at step 2: patches 1, 2 = 0.1 + 0.7; "square" at step 6: patch 2 = 0.7.
    const double tol = 1e-6;  // float weights summed in double
    CHECK(s.mass == Approx(0.8 + 0.7).margin(tol));
    CHECK(s.chance == Approx(2.0 / 4 + 1.0 / 4).margin(tol));
}

TEST_CASE("attention_images: geometry checked against the images", "[stage][eval]") {
    const StageSchema schema = AttentionImages::schema();
    const auto v = caption_vocab();
    auto prepare = [&](std::int64_t image_size, std::int64_t patch, FrameSplit f) {
        AttentionImages m(params_for(schema, {{"image_size", image_size}, {"patch", patch}}));
        FakePrepare ctx(schema);
        ctx.info("hypothesis", PortInfo{PortType::ids, -1, v->size(), v});
        ctx.info("attention", PortInfo{PortType::tensor, 4, -1, nullptr});
        ctx.info("images", PortInfo{PortType::frames, 12, -1, nullptr});
        ctx.data("images", "test", std::move(f));
        m.prepare(ctx);
    };
    CHECK(message_of([&] { prepare(4, 2, images(2)); }) == "(no error)");
    CHECK(message_of([&] { prepare(6, 2, images(2)); }) ==
          "images (test images, test): item 0 has 4 patch rows, but image_size 6 / patch 2 gives 3 x 3 = 9");
    CHECK(message_of([&] { prepare(12, 6, images(1, 4)); }) ==
          "images (test images, test) have rows of D = 12, but patch 6 needs 108 values (patch^2 * RGB) a row");
    CHECK(message_of([&] { AttentionImages m(params_for(schema, {{"image_size", std::int64_t{10}}, {"patch", std::int64_t{4}}})); }) ==
          "patch 4 does not divide image_size 10");
}

TEST_CASE("attention_images: one count and one picture per scene", "[stage][eval]") {
    const StageSchema schema = AttentionImages::schema();
    const auto v = caption_vocab();
    AttentionImages m(params_for(schema, {{"image_size", std::int64_t{4}}, {"patch", std::int64_t{2}}}));
    FakePrepare ctx(schema);
    ctx.info("hypothesis", PortInfo{PortType::ids, -1, v->size(), v});
    ctx.info("attention", PortInfo{PortType::tensor, 4, -1, nullptr});
    ctx.info("images", PortInfo{PortType::frames, 12, -1, nullptr});
    ctx.info("layout", PortInfo{PortType::text, -1, -1, nullptr});
    ctx.info("items", PortInfo{PortType::text, -1, -1, nullptr});
    ctx.data("images", "test", images(3));
    // Pairs 0 and 1 are scene "0" (two captions), pair 2 is scene "1".
    ctx.data("layout", "test", TextSplit{{"red circle: 0", "red circle: 0", "blue square: 3"}, "layout"});
    ctx.data("items", "test", TextSplit{{"0", "0", "1"}, "items"});
    m.prepare(ctx);
    m.begin("test");
    // Columns: pair 1 ("a red circle", attention on patch 0 at "circle"), pair 0 (the same
    // scene again, other weights: not counted), pair 2 ("a blue square", half on patch 3).
    Tensor hyp = Tensor::i32({3, 3});
    const std::int32_t h[] = {4, 4, 4, 5, 5, 8, 6, 6, 9};  // (T, N) time-major
    std::copy(std::begin(h), std::end(h), hyp.data<std::int32_t>());
    hyp.lengths = {3, 3, 3};
    Tensor att = Tensor::f32({4, 3, 4});
    for (int t = 0; t < 4; ++t)
        for (int n = 0; n < 3; ++n)
            for (int q = 0; q < 4; ++q) att.data<float>()[(t * 3 + n) * 4 + q] = 0.25f;
    for (int q = 0; q < 4; ++q) att.data<float>()[(2 * 3 + 0) * 4 + q] = q == 0 ? 1.0f : 0.0f;
    for (int q = 0; q < 4; ++q) att.data<float>()[(2 * 3 + 2) * 4 + q] = q == 3 ? 0.5f : 0.5f / 3;
    att.lengths = {4, 4, 4};
    StepInfo step;
    step.phase = Phase::evaluate;
    step.split = "test";
    const std::vector<std::int64_t> ids{1, 0, 2};
    step.item_ids = ids;
    m.accumulate(make_inputs(schema, {&hyp, &att}), step);
    const auto values = m.end();
    CHECK(metric(values, "on_object_events") == 2);
    CHECK(metric(values, "on_object") == Approx(100.0 * (1.0 + 0.5) / 2));
    CHECK(metric(values, "on_object_chance") == Approx(25.0));

    const fs::path dir = fs::temp_directory_path() / ("attention_images_test_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    m.write_outputs(OutputContext{dir, "test", 1});
    CHECK(read_text(dir / "test.attention_image_0.png").substr(1, 3) == "PNG");
    CHECK(read_text(dir / "test.attention_image_1.png").substr(1, 3) == "PNG");
    CHECK_FALSE(fs::exists(dir / "test.attention_image_2.png"));
    fs::remove_all(dir);
}
