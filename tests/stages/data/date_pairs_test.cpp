#include <catch2/catch.hpp>

#include <set>

#include "stages/data/date_pairs.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using rnnflow::stages::Date;
using rnnflow::stages::DatePairs;
using rnnflow::test::FakePrepare;
using rnnflow::test::params_for;

namespace {
using Set = std::map<std::string, ParamValue>;
using List = std::vector<std::string>;

std::string message_of(const Set& set) {
    try {
        DatePairs d(params_for(DatePairs::schema(), set));
    } catch (const Error& e) {
        return e.message();
    }
    return "(no error)";
}
}  // namespace

TEST_CASE("date_pairs: calendar helpers", "[stage][data]") {
    CHECK(DatePairs::days_from_civil({1970, 1, 1}) == 0);
    CHECK(DatePairs::days_from_civil({2000, 3, 1}) == 11017);
    // Round trip over every day of two centuries, leap days included.
    for (std::int64_t z = DatePairs::days_from_civil({1900, 1, 1}); z <= DatePairs::days_from_civil({2100, 12, 31}); ++z) {
        const Date d = DatePairs::civil_from_days(z);
        REQUIRE(DatePairs::days_from_civil(d) == z);
    }
    CHECK(DatePairs::civil_from_days(DatePairs::days_from_civil({2000, 2, 28}) + 1).day == 29);  // 2000 is a leap year
    CHECK(DatePairs::civil_from_days(DatePairs::days_from_civil({1900, 2, 28}) + 1).month == 3);  // 1900 is not
    CHECK(DatePairs::weekday({1979, 5, 3}) == 3);   // a Thursday
    CHECK(DatePairs::weekday({2024, 2, 29}) == 3);  // a Thursday
    CHECK(DatePairs::weekday({1970, 1, 1}) == 3);
    CHECK(DatePairs::weekday({2000, 1, 1}) == 5);   // a Saturday
}

TEST_CASE("date_pairs: formats write the date they claim", "[stage][data]") {
    const Date d{1979, 5, 3};
    std::set<std::string> all;
    for (int f = 0; f < DatePairs::format_count(); ++f) all.insert(DatePairs::write(d, f, 0));
    // A few written out by hand (lower case).
    for (const char* s : {"3 may 1979", "03 may 79", "thursday, may 3, 1979", "05/03/79", "5/3/1979", "3.5.1979",
                          "03.05.79", "may 3rd 1979", "1979-05-03", "19790503", "the 3rd of may 1979", "03-may-1979"})
        CHECK(all.count(s) == 1);
    CHECK(DatePairs::write(d, 1, 2) == "03 MAY 79");
    CHECK(DatePairs::write(d, 2, 1) == "Thursday, May 3, 1979");
    CHECK(DatePairs::write({2001, 11, 22}, 8, 1) == "November 22nd 2001");
    CHECK(DatePairs::write({2011, 12, 11}, 8, 0) == "december 11th 2011");
    CHECK(DatePairs::write({2013, 1, 13}, 8, 0) == "january 13th 2013");
    CHECK(DatePairs::write({2021, 1, 21}, 8, 0) == "january 21st 2021");
    CHECK(DatePairs::iso({1950, 1, 9}) == "1950-01-09");
}

TEST_CASE("date_pairs: splits are deterministic, disjoint in dates, weekdays consistent", "[stage][data]") {
    const StageSchema s = DatePairs::schema();
    const Set set{{"train", std::int64_t{3000}}, {"valid", std::int64_t{200}}, {"test", std::int64_t{300}}, {"seed", std::int64_t{7}}};
    DatePairs a(params_for(s, set)), b(params_for(s, set));
    const auto pa = a.generate(), pb = b.generate();
    REQUIRE(pa.at("train").source == pb.at("train").source);
    REQUIRE(pa.at("test").target == pb.at("test").target);
    CHECK(pa.at("train").source.size() == 3000);
    CHECK(pa.at("valid").source.size() == 200);
    CHECK(pa.at("test").source.size() == 300);
    Set other = set;
    other["seed"] = std::int64_t{8};
    CHECK(DatePairs(params_for(s, other)).generate().at("train").source != pa.at("train").source);

    std::set<std::string> train(pa.at("train").target.begin(), pa.at("train").target.end());
    std::set<std::string> valid(pa.at("valid").target.begin(), pa.at("valid").target.end());
    std::set<std::string> test(pa.at("test").target.begin(), pa.at("test").target.end());
    CHECK(valid.size() == 200);  // distinct dates
    CHECK(test.size() == 300);
    for (const auto& t : test) CHECK((train.count(t) == 0 && valid.count(t) == 0));
    for (const auto& v : valid) CHECK(train.count(v) == 0);

    // Every pair: the ISO target is in range and a weekday name, when present, is the date's.
    const char* days[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    int with_weekday = 0;
    std::set<std::size_t> lengths;
    for (const auto& [split, p] : pa)
        for (std::size_t i = 0; i < p.source.size(); ++i) {
            const std::string& t = p.target[i];
            REQUIRE(t.size() == 10);
            const Date d{std::stoi(t.substr(0, 4)), std::stoi(t.substr(5, 2)), std::stoi(t.substr(8, 2))};
            REQUIRE((d.year >= 1950 && d.year <= 2049));
            std::string low = p.source[i];
            for (char& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            for (int w = 0; w < 7; ++w)
                if (low.find(days[w]) != std::string::npos) {
                    ++with_weekday;
                    REQUIRE(w == DatePairs::weekday(d));
                }
            lengths.insert(p.source[i].size());
        }
    CHECK(with_weekday > 300);
    CHECK(lengths.size() > 10);  // many formats
}

TEST_CASE("date_pairs: prepare outputs the splits; restore puts out the input lines", "[stage][data]") {
    const StageSchema s = DatePairs::schema();
    DatePairs stage(params_for(s, {{"train", std::int64_t{50}}, {"valid", std::int64_t{0}}, {"test", std::int64_t{5}}}));
    FakePrepare ctx(s);
    stage.prepare(ctx);
    CHECK(ctx.out<TextSplit>("source", "train").items.size() == 50);
    CHECK(ctx.out<TextSplit>("target", "test").items.size() == 5);
    CHECK_FALSE(ctx.has_out("source", "valid"));

    struct Infer : FakePrepare {
        using FakePrepare::FakePrepare;
        std::vector<std::string> lines{"3 may 1979", "tuesday"};
        const std::vector<std::string>* infer_lines() const override { return &lines; }
    } inf(s, 1, PrepareMode::restore);
    inf.splits_ = {"infer"};
    stage.prepare(inf);
    CHECK(inf.out<TextSplit>("source", "infer").items == List{"3 may 1979", "tuesday"});
    CHECK_FALSE(inf.has_out("target", "infer"));
}

TEST_CASE("date_pairs: parameter errors", "[stage][data]") {
    CHECK(message_of({{"first_year", std::int64_t{2000}}, {"last_year", std::int64_t{1999}}}) ==
          "last_year 1999 is before first_year 2000");
    CHECK(message_of({{"first_year", std::int64_t{1900}}, {"last_year", std::int64_t{2000}}}) ==
          "years 1900..2000 span more than 100 years: two-digit years would be ambiguous");
    CHECK(message_of({{"first_year", std::int64_t{2000}}, {"last_year", std::int64_t{2000}}, {"valid", std::int64_t{200}},
                      {"test", std::int64_t{200}}}) ==
          "valid + test = 400 distinct dates, but 2000..2000 has only 366 days");
}
