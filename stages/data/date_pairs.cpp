#include "date_pairs.hpp"

#include <cctype>
#include <cstdio>

#include "pipeline/core/text.hpp"

namespace rnnflow::stages {

StageSchema DatePairs::schema() {
    return StageSchema("date_pairs",
                       "generates dates written in many human formats paired with ISO yyyy-mm-dd",
                       Role::data)
        .output("source", PortType::text, "dates as a person writes them, one item per pair")
        .output("target", PortType::text, "the same dates as yyyy-mm-dd, aligned with source")
        .param_int("train", 20000, Range{1.0, 1e7}, "training pairs")
        .param_int("valid", 1000, Range{0.0, 1e6}, "validation pairs (distinct dates); 0 = no split")
        .param_int("test", 1000, Range{0.0, 1e6}, "test pairs (distinct dates); 0 = no split")
        .param_int("seed", 1, Range{0.0, 4294967295.0}, "generator seed: same seed, same pairs")
        .param_int("first_year", 1950, Range{1.0, 9999.0}, "earliest year")
        .param_int("last_year", 2049, Range{1.0, 9999.0},
                   "latest year; at most first_year + 99 (two-digit years must be unambiguous)")
        .details("Formats include '3 May 1979', 'tuesday, may 3, 1979', '05/03/79' (slash: "
                 "month/day/year), '3.5.1979' (dot: day.month.year), 'May 3rd 1979', '1979-05-03', "
                 "'03 MAY 79'; names in lower, Title or UPPER case; weekdays agree with the date. "
                 "Valid and test dates are distinct from each other and from train's. Two-digit "
                 "years are read in first_year .. first_year + 99.");
}

DatePairs::DatePairs(const Params& p)
    : train_(p.get_int("train")), valid_(p.get_int("valid")), test_(p.get_int("test")),
      seed_(p.get_int("seed")), first_year_(p.get_int("first_year")), last_year_(p.get_int("last_year")) {
    if (last_year_ < first_year_)
        throw Error(detail::concat("last_year ", last_year_, " is before first_year ", first_year_),
                    "give last_year >= first_year");
    if (last_year_ - first_year_ > 99)
        throw Error(detail::concat("years ", first_year_, "..", last_year_,
                                   " span more than 100 years: two-digit years would be ambiguous"),
                    "set last_year to at most first_year + 99");
    const std::int64_t days = days_from_civil({static_cast<int>(last_year_), 12, 31}) -
                              days_from_civil({static_cast<int>(first_year_), 1, 1}) + 1;
    if (valid_ + test_ >= days)
        throw Error(detail::concat("valid + test = ", valid_ + test_, " distinct dates, but ",
                                   first_year_, "..", last_year_, " has only ", days, " days"),
                    "lower valid/test or widen the years (leaving days for train)");
}

// Howard Hinnant's civil-calendar algorithms (public domain description), proleptic Gregorian.
std::int64_t DatePairs::days_from_civil(const Date& d) {
    const std::int64_t y = d.year - (d.month <= 2 ? 1 : 0);
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const std::int64_t yoe = y - era * 400;
    const std::int64_t mp = (d.month + 9) % 12;  // March = 0
    const std::int64_t doy = (153 * mp + 2) / 5 + d.day - 1;
    const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

Date DatePairs::civil_from_days(std::int64_t z) {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const std::int64_t doe = z - era * 146097;
    const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const std::int64_t mp = (5 * doy + 2) / 153;
    const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
    const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
    const int year = static_cast<int>(yoe + era * 400 + (month <= 2 ? 1 : 0));
    return {year, month, day};
}

int DatePairs::weekday(const Date& d) {
    const std::int64_t z = days_from_civil(d);  // 1970-01-01 was a Thursday (3)
    return static_cast<int>(((z % 7) + 7 + 3) % 7);
}

namespace {

const char* const kMonths[] = {"january", "february", "march",     "april",   "may",      "june",
                               "july",    "august",   "september", "october", "november", "december"};
const char* const kWeekdays[] = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"};

std::string num(int v, int width) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%0*d", width, v);
    return buf;
}
std::string ordinal(int d) {
    const char* suffix = "th";
    if (d % 100 < 11 || d % 100 > 13) {
        if (d % 10 == 1) suffix = "st";
        else if (d % 10 == 2) suffix = "nd";
        else if (d % 10 == 3) suffix = "rd";
    }
    return std::to_string(d) + suffix;
}
std::string month(const Date& d) { return kMonths[d.month - 1]; }
std::string mon(const Date& d) { return std::string(kMonths[d.month - 1]).substr(0, 3); }
std::string wday(const Date& d) { return kWeekdays[DatePairs::weekday(d)]; }
std::string wd(const Date& d) { return wday(d).substr(0, 3); }

std::string apply_case(std::string s, int c) {
    if (c == 2) {
        for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    } else if (c == 1) {
        bool start = true;
        for (char& ch : s) {
            const bool alpha = std::isalpha(static_cast<unsigned char>(ch)) != 0;
            if (alpha && start) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
            // Title case starts words only after non-alphanumerics: "3rd" stays "3rd".
            start = !alpha && !std::isdigit(static_cast<unsigned char>(ch));
        }
    }
    return s;
}

using Writer = std::string (*)(const Date&);
// The formats. Numeric ones fix their field order by separator (see the header).
const Writer kFormats[] = {
    [](const Date& d) { return std::to_string(d.day) + " " + month(d) + " " + std::to_string(d.year); },           // 3 may 1979
    [](const Date& d) { return num(d.day, 2) + " " + mon(d) + " " + num(d.year % 100, 2); },                      // 03 may 79
    [](const Date& d) { return wday(d) + ", " + month(d) + " " + std::to_string(d.day) + ", " + std::to_string(d.year); },  // tuesday, may 3, 1979
    [](const Date& d) { return wday(d) + ", " + std::to_string(d.day) + " " + month(d) + " " + std::to_string(d.year); },   // tuesday, 3 may 1979
    [](const Date& d) { return num(d.month, 2) + "/" + num(d.day, 2) + "/" + num(d.year % 100, 2); },             // 05/03/79
    [](const Date& d) { return std::to_string(d.month) + "/" + std::to_string(d.day) + "/" + std::to_string(d.year); },  // 5/3/1979
    [](const Date& d) { return std::to_string(d.day) + "." + std::to_string(d.month) + "." + std::to_string(d.year); },  // 3.5.1979
    [](const Date& d) { return num(d.day, 2) + "." + num(d.month, 2) + "." + num(d.year % 100, 2); },             // 03.05.79
    [](const Date& d) { return month(d) + " " + ordinal(d.day) + " " + std::to_string(d.year); },                 // may 3rd 1979
    [](const Date& d) { return month(d) + " " + std::to_string(d.day) + ", " + std::to_string(d.year); },         // may 3, 1979
    [](const Date& d) { return "the " + ordinal(d.day) + " of " + month(d) + " " + std::to_string(d.year); },     // the 3rd of may 1979
    [](const Date& d) { return ordinal(d.day) + " of " + month(d) + ", " + std::to_string(d.year); },             // 3rd of may, 1979
    [](const Date& d) { return wd(d) + " " + std::to_string(d.day) + " " + mon(d) + " " + std::to_string(d.year); },  // tue 3 may 1979
    [](const Date& d) { return wd(d) + ", " + mon(d) + " " + num(d.day, 2) + " " + std::to_string(d.year); },    // tue, may 03 1979
    [](const Date& d) { return num(d.day, 2) + "-" + mon(d) + "-" + std::to_string(d.year); },                    // 03-may-1979
    [](const Date& d) { return num(d.day, 2) + "-" + num(d.month, 2) + "-" + std::to_string(d.year); },           // 03-05-1979
    [](const Date& d) { return std::to_string(d.year) + "-" + num(d.month, 2) + "-" + num(d.day, 2); },           // 1979-05-03
    [](const Date& d) { return std::to_string(d.year) + "/" + num(d.month, 2) + "/" + num(d.day, 2); },           // 1979/05/03
    [](const Date& d) { return std::to_string(d.year) + num(d.month, 2) + num(d.day, 2); },                       // 19790503
    [](const Date& d) { return mon(d) + " " + std::to_string(d.day) + " " + std::to_string(d.year); },            // may 3 1979
    [](const Date& d) { return mon(d) + ". " + std::to_string(d.day) + ", '" + num(d.year % 100, 2); },           // may. 3, '79
    [](const Date& d) { return month(d) + " " + std::to_string(d.year) + ", " + wday(d) + " the " + ordinal(d.day); },  // may 1979, tuesday the 3rd
};

// Uniform in [0, n) from the generator's 64-bit output (bias below 2^-40 for our n).
std::int64_t draw(std::mt19937_64& rng, std::int64_t n) {
    return static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n));
}

}  // namespace

std::string DatePairs::iso(const Date& d) {
    return num(d.year, 4) + "-" + num(d.month, 2) + "-" + num(d.day, 2);
}

int DatePairs::format_count() { return static_cast<int>(std::size(kFormats)); }

std::string DatePairs::write(const Date& d, int f, int c) {
    RNNFLOW_ASSERT(f >= 0 && f < format_count());
    return apply_case(kFormats[f](d), c);
}

std::map<std::string, DatePairs::Pairs> DatePairs::generate() const {
    std::mt19937_64 rng(static_cast<std::uint64_t>(seed_));
    const std::int64_t first = days_from_civil({static_cast<int>(first_year_), 1, 1});
    const std::int64_t days = days_from_civil({static_cast<int>(last_year_), 12, 31}) - first + 1;
    // A random order of all days (Fisher-Yates): test takes the first ones, valid the next,
    // train the rest (cycling when it needs more).
    std::vector<std::int64_t> order(static_cast<std::size_t>(days));
    for (std::int64_t i = 0; i < days; ++i) order[static_cast<std::size_t>(i)] = first + i;
    for (std::int64_t i = days - 1; i > 0; --i)
        std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(draw(rng, i + 1))]);
    std::map<std::string, Pairs> out;
    std::int64_t at = 0;
    auto make = [&](const std::string& split, std::int64_t n, std::int64_t lo, std::int64_t hi) {
        Pairs& p = out[split];
        for (std::int64_t i = 0; i < n; ++i) {
            const std::int64_t k = lo + i % (hi - lo);
            const Date d = civil_from_days(order[static_cast<std::size_t>(k)]);
            const int f = static_cast<int>(draw(rng, format_count()));
            const int c = static_cast<int>(draw(rng, 3));
            p.source.push_back(write(d, f, c));
            p.target.push_back(iso(d));
        }
    };
    if (test_ > 0) make("test", test_, at, at + test_);
    at += test_;
    if (valid_ > 0) make("valid", valid_, at, at + valid_);
    at += valid_;
    make("train", train_, at, days);
    return out;
}

void DatePairs::prepare(PrepareContext& ctx) {
    ctx.set_output_info("source", PortInfo{PortType::text, -1, -1, nullptr});
    ctx.set_output_info("target", PortInfo{PortType::text, -1, -1, nullptr});
    if (ctx.mode() == PrepareMode::restore) {
        if (const auto* lines = ctx.infer_lines()) {
            for (std::size_t i = 0; i < lines->size(); ++i)
                check_utf8((*lines)[i], "input line", static_cast<std::int64_t>(i) + 1);
            ctx.put_output("source", "infer", TextSplit{*lines, "input lines"});
        }
        return;
    }
    auto pairs = generate();
    for (const auto& split : ctx.splits()) {
        auto it = pairs.find(split);
        if (it == pairs.end()) continue;
        const std::string origin = detail::concat("date_pairs (seed ", seed_, ", ", split, ")");
        ctx.put_output("source", split, TextSplit{std::move(it->second.source), origin});
        ctx.put_output("target", split, TextSplit{std::move(it->second.target), origin});
    }
}

}  // namespace rnnflow::stages
