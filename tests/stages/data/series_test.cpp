// series: CSV columns by name and index (targets first), quoted fields, time labels; every kind of
// malformed input with its file:line:column; spans in time order with normalisation fitted on
// the training rows only, windows, context; the saved normalisation read back in restore and
// evaluate modes; the generated Mackey-Glass series.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "stages/data/series.hpp"
#include "support/error_text.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::Series;
using rnnflow::stages::SeriesCsvOptions;
using rnnflow::stages::SeriesScaling;

namespace {

SeriesCsvOptions options(std::vector<std::string> targets, std::vector<std::string> features = {}) {
    SeriesCsvOptions o;
    o.targets = std::move(targets);
    o.features = std::move(features);
    return o;
}

std::string parse_error(const std::string& text, const SeriesCsvOptions& o) {
    return error_text([&] { stages::parse_series_csv(text, "s.csv", o); });
}

std::filesystem::path write_csv(const std::string& name, const std::string& text) {
    const auto dir = std::filesystem::temp_directory_path() / "rnnflow_series_test";
    std::filesystem::create_directories(dir);
    std::ofstream(dir / name) << text;
    return dir;
}

}  // namespace

TEST_CASE("series: CSV columns by name or index, targets first, time labels, quotes", "[stage][data][series]") {
    const std::string csv = "date,\"temp, C\",load,rain\n"
                            "2020-01,1.5,10,0\n"
                            "2020-02, -2e1 ,+20,1\n"
                            "\"2020-03\",3,30,\"2\"\n\n";
    SeriesCsvOptions o = options({"load"}, {"temp, C", "3", "load"});
    o.time = "date";
    const auto t = stages::parse_series_csv(csv, "s.csv", o);
    REQUIRE(t.names == std::vector<std::string>{"load", "temp, C", "rain"});  // a target named again counts once
    REQUIRE(t.rows == 3);
    REQUIRE(t.values == std::vector<double>{10, 1.5, 0, 20, -20, 1, 30, 3, 2});
    REQUIRE(t.times == std::vector<std::string>{"2020-01", "2020-02", "2020-03"});
    REQUIRE(t.lines == std::vector<std::int64_t>{2, 3, 4});
    SECTION("without a header: indices, rows numbered from 0") {
        SeriesCsvOptions h = options({"1"});
        h.header = false;
        h.delimiter = ';';
        const auto u = stages::parse_series_csv("a;5\nb;6\n", "s.csv", h);
        REQUIRE(u.names == std::vector<std::string>{"1"});
        REQUIRE(u.values == std::vector<double>{5, 6});
        REQUIRE(u.times == std::vector<std::string>{"0", "1"});
    }
}

TEST_CASE("series: malformed CSV is located as file:line:column", "[stage][data][series][bad_input]") {
    const auto o = options({"b"});
    REQUIRE(parse_error("", o) == "s.csv: empty file");
    REQUIRE(parse_error("\n\n", o) == "s.csv: empty file");
    REQUIRE(parse_error("a,b\n", o) == "s.csv: no data rows");
    REQUIRE(parse_error("a,b\n1,2\n3,4,5\n", o) == "s.csv:3:5: 3 fields, the header has 2");
    REQUIRE(parse_error("a,b\n1,2\n3\n", o) == "s.csv:3:2: 1 fields, the header has 2");
    REQUIRE(parse_error("a,b\n1,2\n", options({"c"})) == "s.csv:1:1: no column 'c' in the header");
    REQUIRE(parse_error("a,b\n1,2\n", options({"7"})) == "s.csv:1:1: column index 7 is past the last column (2 columns)");
    REQUIRE(parse_error("a,b\n1,2\n3,x4\n", o) == "s.csv:3:3: column 'b': 'x4' is not a number");
    REQUIRE(parse_error("a,b\n1,2\n3,\n", o) == "s.csv:3:3: column 'b': '' is not a number");
    REQUIRE(parse_error("a,b\n1,2\n3,4 5\n", o) == "s.csv:3:3: column 'b': '4 5' is not a number");
    REQUIRE(parse_error("a,b\n1,nan\n", o) == "s.csv:2:3: column 'b': nan is not finite");
    REQUIRE(parse_error("a,b\n1,2\n1,-inf\n", o) == "s.csv:3:3: column 'b': -inf is not finite");
    REQUIRE(parse_error("a,b\n1,2\n\n3,4\n", o) == "s.csv:3:1: an empty line inside the table");
    REQUIRE(parse_error("a,b\n1,\"2\n", o) == "s.csv:2:3: a quoted field is not closed");
    REQUIRE(parse_error("a,b\n1,\"2\"x\n", o) == "s.csv:2:6: text after a quoted field");
    REQUIRE(parse_error("a,b\n1,1e999\n", o) == "s.csv:2:3: column 'b': '1e999' is out of range");
    // An unparsed column may hold anything.
    REQUIRE(stages::parse_series_csv("a,b\nx,2\n", "s.csv", o).values == std::vector<double>{2});
    SECTION("nonfinite: previous carries the last finite value, not before the first") {
        SeriesCsvOptions f = o;
        f.fill_nonfinite = true;
        const auto t = stages::parse_series_csv("a,b\n1,2\n1,NaN\n1,inf\n1,5\n", "s.csv", f);
        REQUIRE(t.values == std::vector<double>{2, 2, 2, 5});
        REQUIRE(t.filled == 2);
        REQUIRE(parse_error("a,b\n1,nan\n", f) == "s.csv:2:3: column 'b': nan before any finite value");
    }
}

TEST_CASE("series: normalisation fitted on the given rows; lines round-trip", "[stage][data][series]") {
    stages::SeriesTable t;
    t.names = {"a", "b"};
    t.rows = 4;
    t.values = {1, 5, 3, 5, 5, 5, 100, 5};  // b is constant; row 3 is outside the fitted rows
    const SeriesScaling z = stages::fit_scaling(t, 0, 3, "zscore");
    REQUIRE(z.shift[0] == Approx(3.0));
    REQUIRE(z.scale[0] == Approx(std::sqrt(8.0 / 3.0)));  // population standard deviation
    REQUIRE(z.shift[1] == 5.0);
    REQUIRE(z.scale[1] == 1.0);                            // a constant column: scale 1
    const SeriesScaling m = stages::fit_scaling(t, 0, 3, "minmax");
    REQUIRE(m.shift[0] == 1.0);
    REQUIRE(m.scale[0] == 4.0);
    const SeriesScaling n = stages::fit_scaling(t, 0, 3, "none");
    REQUIRE((n.shift[0] == 0.0 && n.scale[0] == 1.0));
    const SeriesScaling back = SeriesScaling::parse(z.lines(), "x");
    REQUIRE(back.names == z.names);
    REQUIRE(back.shift == z.shift);  // exact: shortest round-trip text
    REQUIRE(back.scale == z.scale);
    REQUIRE(error_text([] { SeriesScaling::parse({"a\t1"}, "n.tsv"); }) ==
            "n.tsv:1: expected 'name<TAB>shift<TAB>scale', got 'a\t1'");
}

TEST_CASE("series: spans in time order, train-only fit, windows, context, saved and restored", "[stage][data][series]") {
    // 20 rows: value = row (target), 100 - row (feature). valid 0.2 -> 4 rows, test 3 rows, train 13.
    std::string csv = "t,v,w\n";
    for (int r = 0; r < 20; ++r) csv += "r" + std::to_string(r) + "," + std::to_string(r) + "," + std::to_string(100 - r) + "\n";
    const auto dir = write_csv("s.csv", csv);
    const StageSchema s = Series::schema();
    const std::map<std::string, ParamValue> set{{"file", std::string("s.csv")}, {"targets", std::vector<std::string>{"v"}},
                                                {"features", std::vector<std::string>{"w"}}, {"time", std::string("t")},
                                                {"valid_part", 0.2}, {"test_part", 3.0}, {"window", std::int64_t(5)},
                                                {"stride", std::int64_t(4)}, {"context", std::int64_t(2)}};
    const auto state = dir / "state";
    std::filesystem::remove_all(state);
    Series stage(params_for(s, set));
    FakePrepare ctx(s);
    ctx.base(dir).dir(state);
    stage.prepare(ctx);
    REQUIRE(stage.value("targets") == 1);
    REQUIRE(stage.value("width") == 2);
    REQUIRE(ctx.out_info("frames").channels == 2);
    const double mean = 6.0, sd = std::sqrt(14.0);  // rows 0..12: mean 6, population variance 14
    const FrameSplit& train = ctx.out<FrameSplit>("frames", "train");
    // Windows of 5 every 4 rows over rows 0..12: starts 0, 4, and 8 (ends at row 12 exactly).
    REQUIRE(train.items.size() == 3);
    REQUIRE(train.items[2].rows == 5);
    REQUIRE(train.items[2].values[0] == Approx((8 - mean) / sd));
    REQUIRE(train.items[2].values[1] == Approx((92 - (100 - mean)) / sd));
    const FrameSplit& valid = ctx.out<FrameSplit>("frames", "valid");
    REQUIRE(valid.items.size() == 1);
    REQUIRE(valid.items[0].rows == 6);  // rows 11..16: 2 context rows and the span 13..16
    REQUIRE(valid.items[0].values[0] == Approx((11 - mean) / sd));
    REQUIRE(ctx.out<TextSplit>("times", "valid").items == std::vector<std::string>{"r13", "r14", "r15", "r16"});
    REQUIRE(ctx.out<FrameSplit>("frames", "test").items[0].rows == 5);  // rows 15..19
    REQUIRE(ctx.out<TextSplit>("times", "test").items.size() == 3);
    const SeriesScaling sc = SeriesScaling::parse(ctx.out<TextSplit>("columns", "test").items, "columns");
    REQUIRE(sc.names == std::vector<std::string>{"v", "w"});
    REQUIRE(sc.shift[0] == Approx(mean));
    REQUIRE(std::filesystem::exists(state / "normalization.tsv"));
    SECTION("restore: the saved numbers, no data read") {
        std::filesystem::remove(dir / "s.csv");
        Series again(params_for(s, set));
        FakePrepare r(s, 1, PrepareMode::restore);
        r.dir(state).base(dir);
        r.splits_ = {"infer"};
        again.prepare(r);
        REQUIRE(r.out<TextSplit>("columns", "infer").items == ctx.out<TextSplit>("columns", "train").items);
        REQUIRE(!r.has_out("frames", "train"));
    }
    SECTION("evaluate: new data, the saved numbers (not refitted)") {
        std::string other = "t,v,w\n";
        for (int r = 0; r < 20; ++r) other += "q,1000,1000\n";
        write_csv("s.csv", other);
        Series again(params_for(s, set));
        FakePrepare e(s, 1, PrepareMode::evaluate);
        e.dir(state).base(dir);
        again.prepare(e);
        REQUIRE(e.out<FrameSplit>("frames", "test").items[0].values[0] == Approx((1000 - mean) / sd));
    }
}

TEST_CASE("series: spans and parameters that cannot work are refused", "[stage][data][series][bad_input]") {
    const auto dir = write_csv("short.csv", "v\n1\n2\n3\n4\n5\n");
    const StageSchema s = Series::schema();
    auto prepare = [&](std::map<std::string, ParamValue> set) {
        set.emplace("file", std::string("short.csv"));
        set.emplace("targets", std::vector<std::string>{"v"});
        return error_text([&] {
            Series stage(params_for(s, set));
            FakePrepare ctx(s);
            ctx.base(dir);
            stage.prepare(ctx);
        });
    };
    REQUIRE(prepare({}) == "short.csv: the valid span has 1 row(s)");  // 5 rows: 0.15 -> 1 row
    REQUIRE(prepare({{"valid_part", 2.0}, {"test_part", 2.0}}) ==
            "short.csv: 5 rows leave 1 for training after 2 valid and 2 test rows");
    REQUIRE(prepare({{"valid_part", 2.5}}) == "valid_part 2.5 is neither a fraction below 1 nor a whole row count");
    REQUIRE(prepare({{"valid_part", 0.0}, {"test_part", 0.0}}) == "(no error)");
    REQUIRE(error_text([&] { Series x(params_for(s, {{"file", std::string("a.csv")}})); }) == "targets is empty");
    REQUIRE(error_text([&] { Series x(params_for(s, {})); }) == "no file to read");
    REQUIRE(error_text([&] { Series x(params_for(s, {{"generate", std::string("mackey_glass")}, {"file", std::string("a.csv")}})); }) ==
            "generate: mackey_glass reads no file, but a file is given");
    REQUIRE(error_text([&] { Series x(params_for(s, {{"file", std::string("a.csv")}, {"targets", std::vector<std::string>{"v"}},
                                                     {"delimiter", std::string(";;")}})); }) ==
            "delimiter must be one character other than a quote or line break, got ';;'");
}

TEST_CASE("series: the Mackey-Glass series is deterministic, bounded and not periodic", "[stage][data][series]") {
    const auto a = stages::mackey_glass(600, 17);
    const auto b = stages::mackey_glass(600, 17);
    REQUIRE(a.rows == 600);
    REQUIRE(a.values == b.values);
    double lo = 9, hi = -9;
    for (double v : a.values) lo = std::min(lo, v), hi = std::max(hi, v);
    REQUIRE(lo > 0.2);  // the attractor of τ = 17 lies in about [0.4, 1.35]
    REQUIRE(hi < 1.45);
    REQUIRE(hi - lo > 0.7);
    // Chaotic, not periodic: no shift up to 100 repeats the series to 1e-3.
    for (std::size_t lag = 1; lag <= 100; ++lag) {
        double worst = 0;
        for (std::size_t i = 0; i + lag < a.values.size(); ++i) worst = std::max(worst, std::abs(a.values[i] - a.values[i + lag]));
        REQUIRE(worst > 1e-3);
    }
    REQUIRE(stages::mackey_glass(600, 30).values != a.values);
}
