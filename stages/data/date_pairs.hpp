// date_pairs: generates the date-normalisation dataset: a date written by a human in one of many
// formats (source) and the same date in ISO 8601 (target), e.g.
//   "tuesday, may 3, 1979" -> "1979-05-03"     "05/03/79" -> "1979-05-03"
//   "3.5.1979"             -> "1979-05-03"     "MAY 3RD 1979" -> "1979-05-03"
//
//   source (text)  TextSplit per split: the written dates
//   target (text)  TextSplit per split: yyyy-mm-dd, aligned with source
//
// Dates are uniform over the days of [first_year, last_year] (proleptic Gregorian calendar);
// weekday names always agree with the date. Each pair takes a format uniformly from the list in
// date_pairs.cpp (formats_), and formats with names take a casing (lower, Title, UPPER)
// uniformly. Two-digit years are read in the window first_year .. first_year + 99 (so the range
// may span at most 100 years). Numeric formats are unambiguous by construction: a slash means
// month/day/year (US: "05/03/79" is 3 May), a dot or a dash between numbers means
// day.month.year (European: "3.5.1979" is 3 May), ISO-like year-first forms keep
// year-month-day, so the mapping is a function the model can learn.
// Splits: valid and test get distinct dates (no date of one appears in another split); train
// takes the remaining dates, and cycles through them again (other formats) only when it asks
// for more pairs than there are days left.
// Deterministic: the same seed and sizes give the same pairs on every machine (mt19937_64 with
// our own integer mapping, no implementation-defined distributions).
// Restore mode generates nothing; in a prediction run it puts the input lines out as split
// "infer" of `source` only, as parallel_text does. Evaluate mode generates as in fit.
// Not supported: times, relative dates ("next tuesday"), languages other than English.
#pragma once

#include <cstdint>
#include <random>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

struct Date {
    int year, month, day;  // month 1..12, day 1..31
};

class DatePairs final : public DataStage {
public:
    static StageSchema schema();
    explicit DatePairs(const Params& p);
    void prepare(PrepareContext& ctx) override;

    // Helpers, public for tests.
    static std::int64_t days_from_civil(const Date& d);  // days since 1970-01-01
    static Date civil_from_days(std::int64_t z);
    static int weekday(const Date& d);  // 0 = Monday .. 6 = Sunday
    static std::string iso(const Date& d);
    static int format_count();
    // Date d written in format f (0 <= f < format_count()) with casing c (0 lower, 1 Title, 2 UPPER).
    static std::string write(const Date& d, int f, int c);
    // Generates one split: n pairs, as prepare does.
    struct Pairs {
        std::vector<std::string> source, target;
    };
    std::map<std::string, Pairs> generate() const;

private:
    std::int64_t train_, valid_, test_, seed_, first_year_, last_year_;
};

}  // namespace rnnflow::stages
