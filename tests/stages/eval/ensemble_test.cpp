#include <catch2/catch.hpp>

#include <fstream>
#include <functional>
#include <sstream>

#include "../data/cls_support.hpp"
#include "metric_support.hpp"
#include "support/error_text.hpp"
#include "stages/eval/ensemble.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using namespace rnnflow::stages;

namespace {

std::string error_of(const std::function<void()>& f) { return error_text(f, ErrorPart::with_hint); }

}  // namespace

TEST_CASE("ensemble: mean class probabilities, columns matched by label", "[eval][ensemble]") {
    ClsTempDir d;
    // Member a lists pos before neg, member b neg before pos; items in another order in b.
    d.write("a.tsv",
            "item\tgold\tpredicted\tp.pos\tp.neg\n"
            "0\tpos\tpos\t0.9\t0.1\n"
            "1\tneg\tpos\t0.6\t0.4\n"
            "2\tneg\tneg\t0.45\t0.55\n"
            "3\tpos\tneg\t0.2\t0.8\n");
    d.write("b.tsv",
            "item\tgold\tpredicted\tp.neg\tp.pos\r\n"
            "3\tpos\tpos\t0.4\t0.6\r\n"
            "2\tneg\tpos\t0.3\t0.7\r\n"
            "\r\n"
            "1\tneg\tneg\t0.8\t0.2\r\n"
            "0\tpos\tpos\t0.25\t0.75\r\n");
    const PredictionTable a = read_prediction_table(d.path / "a.tsv");
    const PredictionTable b = read_prediction_table(d.path / "b.tsv");
    REQUIRE(a.labels == std::vector<std::string>{"pos", "neg"});
    REQUIRE(b.labels == std::vector<std::string>{"neg", "pos"});
    REQUIRE(b.items.size() == 4);
    const EnsembleResult r = ensemble_tables({a, b});
    // Mean p(pos): item 0 (0.9 + 0.75) / 2 = 0.825, item 1 (0.6 + 0.2) / 2 = 0.4,
    // item 2 (0.45 + 0.7) / 2 = 0.575, item 3 (0.2 + 0.6) / 2 = 0.4.
    REQUIRE(r.labels == a.labels);
    REQUIRE(r.items.at(0).probs[0] == Approx(0.825f));
    REQUIRE(r.items.at(1).probs[1] == Approx(0.6f));
    REQUIRE(r.items.at(2).probs[0] == Approx(0.575f));
    REQUIRE(r.items.at(3).probs[0] == Approx(0.4f));
    // Predicted pos, neg, pos, neg against gold pos, neg, neg, pos: 2 of 4.
    REQUIRE(r.items.at(0).predicted == "pos");
    REQUIRE(r.items.at(1).predicted == "neg");
    REQUIRE(r.items.at(2).predicted == "pos");
    REQUIRE(r.items.at(3).predicted == "neg");
    REQUIRE(r.confusion == std::vector<std::vector<std::int64_t>>{{1, 1}, {1, 1}});
    REQUIRE(r.metrics.at(0).value == Approx(0.5));
    REQUIRE(metric(r.metrics, "precision.pos") == Approx(0.5));
    // Each member's own accuracy, from its predicted column: a 2 of 4, b 3 of 4.
    REQUIRE(r.member_accuracy == std::vector<double>{0.5, 0.75});

    // The files: the same formats as classification_metrics, probabilities included, so the
    // ensemble reads back as a member.
    write_classification_files(d.path, "test", r.labels, r.confusion, r.items);
    REQUIRE(read_text(d.path / "test.confusion.tsv") == "gold\\predicted\tpos\tneg\npos\t1\t1\nneg\t1\t1\n");
    const PredictionTable back = read_prediction_table(d.path / "test.predictions.tsv");
    REQUIRE(back.labels == r.labels);
    REQUIRE(back.items.at(2).probs == r.items.at(2).probs);
    REQUIRE(back.items.at(2).predicted == "pos");
}

TEST_CASE("ensemble: a tie goes to the first member's first column", "[eval][ensemble]") {
    ClsTempDir d;
    d.write("a.tsv", "item\tgold\tpredicted\tp.x\tp.y\n0\ty\tx\t1\t0\n");
    d.write("b.tsv", "item\tgold\tpredicted\tp.x\tp.y\n0\ty\ty\t0\t1\n");
    const EnsembleResult r = ensemble_tables({read_prediction_table(d.path / "a.tsv"), read_prediction_table(d.path / "b.tsv")});
    REQUIRE(r.items.at(0).predicted == "x");
    REQUIRE(r.metrics.at(0).value == 0.0);
}

TEST_CASE("ensemble: malformed files and mismatched members are named", "[eval][ensemble][bad_input]") {
    ClsTempDir d;
    const auto f = [&](const std::string& name, const std::string& text) {
        d.write(name, text);
        return error_of([&] { read_prediction_table(d.path / name); });
    };
    CHECK_THAT(error_of([&] { read_prediction_table(d.path / "missing.tsv"); }),
               Catch::Contains("cannot read") && Catch::Contains("rnnflow eval"));
    CHECK_THAT(f("empty.tsv", ""), Catch::Contains("empty.tsv: empty file"));
    CHECK_THAT(f("old.tsv", "item\tgold\tpredicted\n0\ta\ta\n"),
               Catch::Contains("has no class probabilities") && Catch::Contains("rnnflow eval RUN_DIR --split SPLIT"));
    CHECK_THAT(f("head.tsv", "id\tlabel\n"), Catch::Contains("head.tsv:1: not a predictions file"));
    CHECK_THAT(f("col.tsv", "item\tgold\tpredicted\tp.a\tscore\n"), Catch::Contains("col.tsv:1: column 5 'score'"));
    CHECK_THAT(f("dup.tsv", "item\tgold\tpredicted\tp.a\tp.a\n"), Catch::Contains("p.a appears twice"));
    CHECK_THAT(f("cols.tsv", "item\tgold\tpredicted\tp.a\tp.b\n0\ta\ta\t1\t0\n1\ta\ta\t1\n"),
               Catch::Contains("cols.tsv:3: 4 columns, the header has 5"));
    CHECK_THAT(f("item.tsv", "item\tgold\tpredicted\tp.a\tp.b\nx\ta\ta\t1\t0\n"),
               Catch::Contains("item.tsv:2: item 'x' is not a non-negative integer"));
    CHECK_THAT(f("prob.tsv", "item\tgold\tpredicted\tp.a\tp.b\n0\ta\ta\tnan\t0\n"),
               Catch::Contains("prob.tsv:2: column p.a: 'nan' is not a probability"));
    CHECK_THAT(f("sum.tsv", "item\tgold\tpredicted\tp.a\tp.b\n0\ta\ta\t0.5\t0.2\n"),
               Catch::Contains("sum.tsv:2: the probabilities of item 0 sum to 0.7"));
    CHECK_THAT(f("twice.tsv", "item\tgold\tpredicted\tp.a\tp.b\n0\ta\ta\t1\t0\n0\ta\ta\t1\t0\n"),
               Catch::Contains("twice.tsv:3: item 0 appears twice"));
    CHECK_THAT(f("tags.tsv", "item\tgold\tpredicted\tp.a\tp.b\n0\ta b\ta a\t1\t0\n"),
               Catch::Contains("tags.tsv:2: item 0 has several labels"));
    CHECK_THAT(f("nogold.tsv", "item\tgold\tpredicted\tp.a\tp.b\n0\t\ta\t1\t0\n"),
               Catch::Contains("nogold.tsv:2: item 0 has no gold label"));
    CHECK_THAT(f("none.tsv", "item\tgold\tpredicted\tp.a\tp.b\n"), Catch::Contains("none.tsv: no items"));

    d.write("a.tsv", "item\tgold\tpredicted\tp.a\tp.b\n0\ta\ta\t1\t0\n1\tb\ta\t0.5\t0.5\n");
    const PredictionTable a = read_prediction_table(d.path / "a.tsv");
    const auto mismatch = [&](const std::string& text) {
        d.write("m.tsv", text);
        const PredictionTable m = read_prediction_table(d.path / "m.tsv");
        return error_of([&] { ensemble_tables({a, m}); });
    };
    CHECK_THAT(error_of([&] { ensemble_tables({a}); }), Catch::Contains("two or more members, got 1"));
    CHECK_THAT(mismatch("item\tgold\tpredicted\tp.a\tp.c\n0\ta\ta\t1\t0\n1\tb\ta\t0.5\t0.5\n"),
               Catch::Contains("m.tsv: class 'c' is not a class of"));
    CHECK_THAT(mismatch("item\tgold\tpredicted\tp.a\tp.b\tp.c\n0\ta\ta\t1\t0\t0\n1\tb\ta\t0.5\t0.5\t0\n"),
               Catch::Contains("m.tsv has 3 classes"));
    CHECK_THAT(mismatch("item\tgold\tpredicted\tp.a\tp.b\n0\ta\ta\t1\t0\n"), Catch::Contains("m.tsv has 1 items"));
    CHECK_THAT(mismatch("item\tgold\tpredicted\tp.a\tp.b\n0\ta\ta\t1\t0\n2\tb\ta\t0.5\t0.5\n"),
               Catch::Contains("m.tsv has no item 1"));
    CHECK_THAT(mismatch("item\tgold\tpredicted\tp.a\tp.b\n0\ta\ta\t1\t0\n1\ta\ta\t0.5\t0.5\n"),
               Catch::Contains("item 1 has gold label 'a'") && Catch::Contains("same split of the same data"));
    d.write("g.tsv", "item\tgold\tpredicted\tp.a\tp.b\n0\tz\ta\t1\t0\n");
    CHECK_THAT(error_of([&] { ensemble_tables({read_prediction_table(d.path / "g.tsv"), read_prediction_table(d.path / "g.tsv")}); }),
               Catch::Contains("gold label 'z' of item 0 has no p.z column"));
}
