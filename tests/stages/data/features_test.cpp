// features: feature files (.npy, .safetensors) of shape (N, D) and (N, F, D) with their captions
// files, by row or by id; one output entry per (item, caption) pair; every malformed input
// located, under on_error: error and skip; the fitted shape saved and restored; prediction runs
// one item per line (FILE#k or a file of one item), shapes checked.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "cls_support.hpp"
#include "pipeline/core/safetensors.hpp"
#include "stages/data/features.hpp"
#include "support/npy_file.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::Features;
using Set = std::map<std::string, ParamValue>;
using Strings = std::vector<std::string>;

namespace {

FakePrepare run(const ClsTempDir& d, const Set& set, std::int64_t* skipped = nullptr) {
    return run_reader<Features>(d, set, skipped);
}
std::string message_of(const ClsTempDir& d, const Set& set) { return reader_message<Features>(d, set); }
std::string message_of_prepare(Features& stage, PrepareContext& ctx) {
    try {
        stage.prepare(ctx);
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

// Three items of D = 2, one vector each: item r is (r, 10 r).
void write_vectors(const ClsTempDir& d, const std::string& name = "train.npy") {
    d.write(name, npy_f32("(3, 2)", {0, 0, 1, 10, 2, 20}));
}

Set train_only(const std::string& captions) {
    return {{"train", std::string("train.npy")}, {"captions", Strings{captions}}};
}

// The same under on_error: skip; the skipped count into `skipped`.
FakePrepare run_skipping(const ClsTempDir& d, std::int64_t& skipped) {
    Set s = train_only("train.tsv");
    s["on_error"] = std::string("skip");
    return run(d, s, &skipped);
}

}  // namespace

TEST_CASE("features: schema defaults and bad parameters", "[stage][data][reader][features]") {
    const auto s = Features::schema();
    const Params p = default_params(s);
    REQUIRE(p.get_string("tensor").empty());
    REQUIRE(p.get_list("ids").empty());
    REQUIRE(p.get_string("on_error") == "error");
    REQUIRE(s.outputs()[0].type == PortType::frames);
    REQUIRE_THROWS_WITH(Features(params_for(s, {{"train", std::string("a.npy")}, {"valid", std::string("b.npy")},
                                                {"captions", Strings{"a.tsv"}}})),
                        "captions lists 1 file for 2 splits with features (train, valid)");
    REQUIRE_THROWS_WITH(Features(params_for(s, {{"train", std::string("a.npy")}, {"captions", Strings{"a.tsv"}},
                                                {"ids", Strings{"a.ids", "b.ids"}}})),
                        "ids lists 2 files for 1 split with features (train)");
}

TEST_CASE("features: (N, D) by row, several captions per item, uncaptioned items left out",
          "[stage][data][reader][features]") {
    ClsTempDir d;
    write_vectors(d);
    d.write("train.tsv", "2\ta red circle\n0\ta blue square \n\n2\tone red circle\n");
    std::int64_t skipped = -1;
    auto ctx = run(d, train_only("train.tsv"), &skipped);
    REQUIRE(skipped == 0);
    const auto& fr = ctx.out<FrameSplit>("features", "train");
    REQUIRE(fr.dim == 2);
    REQUIRE(fr.origin == "train.npy");
    REQUIRE(fr.items.size() == 3);  // pairs, in the captions file's order
    REQUIRE(fr.items[0].rows == 1);
    REQUIRE(fr.items[0].values == std::vector<float>{2, 20});
    REQUIRE(fr.items[1].values == std::vector<float>{0, 0});
    REQUIRE(fr.items[2].values == std::vector<float>{2, 20});
    REQUIRE(ctx.out<TextSplit>("captions", "train").items == Strings{"a red circle", "a blue square", "one red circle"});
    REQUIRE(ctx.out<TextSplit>("items", "train").items == Strings{"2", "0", "2"});
    REQUIRE(ctx.out_info("features").channels == 2);
    REQUIRE(ctx.out_info("features").type == PortType::frames);
}

TEST_CASE("features: (N, F, D) regions from .safetensors, items named by ids, splits agree on D",
          "[stage][data][reader][features]") {
    ClsTempDir d;
    TensorFile tf;
    Tensor regions = Tensor::f32({2, 3, 2});  // item r, region f: (r, f)
    for (int r = 0; r < 2; ++r)
        for (int f = 0; f < 3; ++f) {
            regions.data<float>()[(r * 3 + f) * 2] = static_cast<float>(r);
            regions.data<float>()[(r * 3 + f) * 2 + 1] = static_cast<float>(f);
        }
    tf.tensors.emplace_back("regions", regions);
    tf.tensors.emplace_back("labels", Tensor::f32({2}));
    save_safetensors(d.path / "train.safetensors", tf);
    d.write("train.ids", "img_a.jpg\nimg_b.jpg\n");
    d.write("train.tsv", "img_b.jpg\tshapes\nimg_a.jpg\tmore shapes\n");
    d.write("valid.npy", npy_f32("(1, 2)", {5, 6}));
    d.write("valid.ids", "v0\n");
    d.write("valid.tsv", "v0\tone\n");
    const Set with_ids{{"train", std::string("train.safetensors")}, {"valid", std::string("valid.npy")},
                       {"captions", Strings{"train.tsv", "valid.tsv"}}, {"ids", Strings{"train.ids", "valid.ids"}},
                       {"tensor", std::string("regions")}};
    auto ctx = run(d, with_ids);
    const auto& fr = ctx.out<FrameSplit>("features", "train");
    REQUIRE(fr.items.size() == 2);
    REQUIRE(fr.items[0].rows == 3);
    REQUIRE(fr.items[0].values == std::vector<float>{1, 0, 1, 1, 1, 2});  // img_b = row 1
    REQUIRE(ctx.out<TextSplit>("items", "train").items == Strings{"img_b.jpg", "img_a.jpg"});
    REQUIRE(ctx.out<TextSplit>("items", "valid").items == Strings{"v0"});
    REQUIRE(ctx.out<FrameSplit>("features", "valid").items[0].rows == 1);
    SECTION("two tensors and none named") {
        Set s = with_ids;
        s.erase("tensor");
        REQUIRE(message_of(d, s) == "train.safetensors: holds 2 tensors; name the features with tensor: NAME");
        s["tensor"] = std::string("region");
        REQUIRE(message_of(d, s) == "train.safetensors: no tensor 'region'");
    }
    SECTION("D differs between splits") {
        d.write("valid.npy", npy_f32("(1, 3)", {5, 6, 7}));
        REQUIRE(message_of(d, with_ids) ==
                "valid.npy: features have D = 3, the train split's (train.safetensors) have D = 2");
    }
}

TEST_CASE("features: malformed captions are located as file:line; on_error: skip counts them",
          "[stage][data][reader][features]") {
    ClsTempDir d;
    write_vectors(d);
    d.write("train.tsv", "0\tfine\n1 no tab\n7\tno such row\nx\tnot a number\n1\t  \n2\tfine too\n");
    REQUIRE(message_of(d, train_only("train.tsv")) == "train.tsv:2: no tab: expected item<TAB>caption");
    std::int64_t skipped = -1;
    auto ctx = run_skipping(d, skipped);
    REQUIRE(skipped == 4);
    REQUIRE(ctx.out<TextSplit>("captions", "train").items == Strings{"fine", "fine too"});
    for (const auto& [text, message] : std::vector<std::pair<std::string, std::string>>{
             {"7\tno such row\n", "train.tsv:1: item '7' is not a row of train.npy (0 to 2)"},
             {"x\tnot a number\n", "train.tsv:1: item 'x' is not a row of train.npy (0 to 2)"},
             {"1\t  \n", "train.tsv:1: empty caption for item '1'"}}) {
        d.write("train.tsv", text);
        REQUIRE(message_of(d, train_only("train.tsv")) == message);
    }
    SECTION("ids: unknown, repeated, missing") {
        d.write("train.tsv", "a\tfine\nz\tunknown\n");
        d.write("train.ids", "a\nb\nc\n");
        Set s = train_only("train.tsv");
        s["ids"] = Strings{"train.ids"};
        REQUIRE(message_of(d, s) == "train.tsv:2: unknown item 'z' (not an id of the id file)");
        d.write("train.ids", "a\nb\na\n");
        REQUIRE(message_of(d, s) == "train.ids:3: id 'a' appears again (first at line 1)");
        d.write("train.ids", "a\nb\n");
        REQUIRE(message_of(d, s) == "train.ids: 2 ids for the 3 feature rows of train.npy");
    }
    SECTION("no pair left") {
        d.write("train.tsv", "\n");
        REQUIRE(message_of(d, train_only("train.tsv")) ==
                "train split: no (item, caption) pair in train.npy and train.tsv");
    }
}

TEST_CASE("features: non-finite features, bad shapes and files are refused with the file named",
          "[stage][data][reader][features]") {
    ClsTempDir d;
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    d.write("train.npy", npy_f32("(3, 1, 2)", {0, 0, 1, nan, 2, inf}));
    d.write("train.tsv", "0\ta\n1\tb\n2\tc\n");
    REQUIRE(message_of(d, train_only("train.tsv")) == "train.npy: item 1: NaN at region 0, component 1");
    std::int64_t skipped = -1;
    auto ctx = run_skipping(d, skipped);
    REQUIRE(skipped == 2);  // items 1 and 2, their captions with them
    REQUIRE(ctx.out<TextSplit>("captions", "train").items == Strings{"a"});
    d.write("train.npy", npy_f32("(3,)", {0, 1, 2}));
    REQUIRE_THAT(message_of(d, train_only("train.tsv")),
                 Catch::EndsWith("train.npy: features of shape (3); expected (N, D) or (N, F, D) with F, D >= 1"));
    d.write("train.npy", npy_f32("(3, 0)", {}));
    REQUIRE_THAT(message_of(d, train_only("train.tsv")), Catch::EndsWith("expected (N, D) or (N, F, D) with F, D >= 1"));
    d.write("train.npy", "not numpy");
    REQUIRE_THAT(message_of(d, train_only("train.tsv")), Catch::EndsWith("train.npy: not a readable .npy file: no "
                                                                         "\\x93NUMPY magic at the start (9 bytes)"));
    Set bin = train_only("train.tsv");
    bin["train"] = std::string("train.bin");
    REQUIRE(message_of(d, bin) == "feature file 'train.bin': unknown extension '.bin'");
}

TEST_CASE("features: restore reads the fitted shape; prediction runs read one item per line",
          "[stage][data][reader][features]") {
    ClsTempDir d;
    const auto s = Features::schema();
    Features stage(params_for(s, train_only("train.tsv")));
    FakePrepare restore(s, 1, PrepareMode::restore);
    restore.base(d.path);
    stage.prepare(restore);  // no state folder: nothing known, nothing read
    REQUIRE_FALSE(restore.has_out("features", "train"));
    REQUIRE(restore.out_info("features").channels == -1);
    InferPrepare no_state(s, {"x.npy"});
    REQUIRE_THAT(message_of_prepare(stage, no_state), Catch::Contains("no saved feature shape"));

    // Fit on grids of 2 regions of D = 3: the state says so.
    d.write("train.npy", npy_f32("(2, 2, 3)", {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
    d.write("train.tsv", "0\ta\n1\tb\n");
    FakePrepare fit(s, 1, PrepareMode::fit);
    fit.base(d.path).dir(d.path / "state");
    Features(params_for(s, train_only("train.tsv"))).prepare(fit);
    REQUIRE(fit.out_info("features").channels == 3);
    FakePrepare restored(s, 1, PrepareMode::restore);
    restored.dir(d.path / "state");
    stage.prepare(restored);
    REQUIRE(restored.out_info("features").channels == 3);

    d.write("new.npy", npy_f32("(2, 2, 3)", {0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6}));
    d.write("one.npy", npy_f32("(2, 3)", {9, 9, 9, 8, 8, 8}));  // one grid without the N axis
    const std::string dir = d.path.string() + "/";
    InferPrepare infer(s, {dir + "new.npy#1", dir + "one.npy", dir + "new.npy#0"});
    infer.dir(d.path / "state");
    stage.prepare(infer);
    const FrameSplit& fr = infer.out<FrameSplit>("features", "infer");
    REQUIRE(fr.items.size() == 3);
    REQUIRE(fr.items[0].values == std::vector<float>{1, 2, 3, 4, 5, 6});
    REQUIRE(fr.items[1].values == std::vector<float>{9, 9, 9, 8, 8, 8});
    REQUIRE(fr.items[2].rows == 2);
    REQUIRE(infer.out<TextSplit>("items", "infer").items[1] == dir + "one.npy");
    REQUIRE(Features::expand_input(dir + "new.npy", d.path / "state", "") ==
            Strings{dir + "new.npy#0", dir + "new.npy#1"});
    REQUIRE(Features::expand_input(dir + "one.npy", d.path / "state", "") == Strings{dir + "one.npy"});

    auto message = [&](const std::string& line) {
        InferPrepare bad(s, {line});
        bad.dir(d.path / "state");
        return message_of_prepare(stage, bad);
    };
    REQUIRE_THAT(message(dir + "new.npy"), Catch::Contains("new.npy: holds 2 items"));
    REQUIRE_THAT(message(dir + "new.npy#2"), Catch::Contains("new.npy#2: the file holds 2 items (0 to 1)"));
    d.write("wide.npy", npy_f32("(1, 2, 4)", {0, 0, 0, 0, 0, 0, 0, 0}));
    REQUIRE_THAT(message(dir + "wide.npy"),
                 Catch::Contains("wide.npy: features of shape (1, 2, 4), the run was trained on grids of 2 x 3"));
    d.write("nan.npy", npy_f32("(2, 3)", {0, 0, 0, 0, std::numeric_limits<float>::quiet_NaN(), 0}));
    REQUIRE_THAT(message(dir + "nan.npy"), Catch::Contains("nan.npy: NaN at region 1, component 1"));
}
