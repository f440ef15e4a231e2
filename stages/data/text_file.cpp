#include "text_file.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "pipeline/core/text.hpp"

namespace rnnflow::stages {

namespace fs = std::filesystem;

StageSchema TextFile::schema() {
    return StageSchema("text_file", "reads UTF-8 text files: lines or whole files per split", Role::data)
        .output("out", PortType::text, "items per split: lines (by: line) or whole files (by: file)")
        .param_list("train", {}, "training files, relative to the graph file's folder (at least one)")
        .param_string("valid", "", "validation file; \"\" = none (or valid_fraction)")
        .param_string("test", "", "test file; \"\" = none (or test_fraction)")
        .param_choice("by", "line", {"line", "file"},
                      "line: each line is an item (empty lines kept); file: each file is one item")
        .param_float("valid_fraction", 0.0, Range{0.0, 0.5},
                     "when valid is \"\": this tail fraction of the training text (before test's) "
                     "becomes valid, in lines (by: line) or characters (by: file)")
        .param_float("test_fraction", 0.0, Range{0.0, 0.5},
                     "when test is \"\": this last fraction of the training text becomes test")
        .param_int("max_line_bytes", std::int64_t{1} << 20, Range{1.0, 1073741824.0},
                   "by: line only: a longer line is an error (guards against files without newlines)")
        .param_int("max_file_bytes", std::int64_t{4} << 30, Range{1.0, 1099511627776.0},
                   "a larger file is an error, found before it is read into memory (a wrong path to a "
                   "disk image or a device is refused instead of exhausting memory)")
        .details("Items are lines without their '\\n' (and a '\\r' before it), or whole files. "
                 "Fractions cut the tail of the training text as train | valid | test. "
                 "Errors name file:line:col for invalid UTF-8 and NUL bytes.");
}

TextFile::TextFile(const Params& p)
    : train_(p.get_list("train")), valid_(p.get_string("valid")), test_(p.get_string("test")),
      by_(p.get_string("by")), valid_fraction_(p.get_float("valid_fraction")),
      test_fraction_(p.get_float("test_fraction")), max_line_bytes_(p.get_int("max_line_bytes")),
      max_file_bytes_(p.get_int("max_file_bytes")) {}

namespace {

// Throws at the first line longer than max_line bytes (read_text_file has checked the UTF-8).
void check_line_bytes(const std::string& s, const std::string& written, std::int64_t max_line) {
    if (max_line <= 0) return;
    std::int64_t line = 1;
    for (std::size_t start = 0; start < s.size(); ++line) {
        std::size_t end = s.find('\n', start);
        if (end == std::string::npos) end = s.size();
        std::size_t bytes = end - start;
        if (bytes > 0 && end < s.size() && s[end - 1] == '\r') --bytes;  // the '\r' of CRLF is not content
        if (static_cast<std::int64_t>(bytes) > max_line)
            throw Error(detail::concat(written, ":", line, ": line longer than max_line_bytes = ", max_line, " bytes"),
                        "raise max_line_bytes, or read whole files with by: file");
        start = end + 1;
    }
}

bool is_cont(char ch) { return (static_cast<unsigned char>(ch) & 0xC0) == 0x80; }

std::int64_t code_points(const std::string& s) {
    std::int64_t n = 0;
    for (char ch : s) n += is_cont(ch) ? 0 : 1;
    return n;
}

// Moves the last `count` units (items for by: line, code points for by: file) of `from` into
// the returned items, keeping their order.
std::vector<std::string> take_tail(std::vector<std::string>& from, std::int64_t count, bool by_chars) {
    std::vector<std::string> tail;
    while (count > 0 && !from.empty()) {
        std::string& last = from.back();
        const std::int64_t size = by_chars ? code_points(last) : 1;
        if (size <= count) {
            tail.push_back(std::move(last));
            from.pop_back();
            count -= size;
            continue;
        }
        // by_chars only: cut `last` so that its final `count` code points move.
        std::int64_t keep = size - count, seen = 0;
        std::size_t cut = 0;
        for (; cut < last.size(); ++cut) {
            if (!is_cont(last[cut])) {
                if (seen == keep) break;
                ++seen;
            }
        }
        tail.push_back(last.substr(cut));
        last.erase(cut);
        count = 0;
    }
    return {std::make_move_iterator(tail.rbegin()), std::make_move_iterator(tail.rend())};
}

std::string fraction_str(double f) {
    std::ostringstream os;
    os << f;
    return os.str();
}

}  // namespace

void TextFile::prepare(PrepareContext& ctx) {
    ctx.set_output_info("out", PortInfo{PortType::text, -1, -1, nullptr});
    if (ctx.mode() == PrepareMode::restore) return;

    if (train_.empty())
        throw Error("no training file", "set train: [path/to/train.txt]");
    if (!valid_.empty() && valid_fraction_ > 0)
        throw Error("both valid and valid_fraction are set", "give one of them");
    if (!test_.empty() && test_fraction_ > 0)
        throw Error("both test and test_fraction are set", "give one of them");

    const bool by_line = by_ == "line";
    const std::int64_t cap = by_line ? max_line_bytes_ : 0;
    auto read_items = [&](const std::string& written, const std::string& role,
                          std::vector<std::string>& items) {
        std::string bytes = read_text_file(ctx.base_dir(), written, role,
                                           {max_file_bytes_, "max_file_bytes",
                                            "raise max_file_bytes if the file is really text to train on"});
        check_line_bytes(bytes, written, cap);
        if (by_line) {
            for (auto& l : split_lines(bytes)) items.push_back(std::move(l));
        } else {
            items.push_back(std::move(bytes));
        }
    };

    TextSplit train, valid, test;
    for (const auto& f : train_) {
        read_items(f, "train", train.items);
        train.origin += (train.origin.empty() ? "" : ", ") + f;
    }
    std::size_t chars = 0;
    for (const auto& it : train.items) chars += it.size();
    if (chars == 0)
        throw Error(detail::concat("empty corpus: the training text (", train.origin,
                                   ") has no characters"),
                    "check the train files");

    if (!valid_.empty()) {
        read_items(valid_, "valid", valid.items);
        valid.origin = valid_;
    }
    if (!test_.empty()) {
        read_items(test_, "test", test.items);
        test.origin = test_;
    }

    // Fractions of the whole training text, cut from its end: train | valid | test.
    std::int64_t total = 0;
    for (const auto& it : train.items) total += by_line ? 1 : code_points(it);
    const char* unit = by_line ? "lines" : "characters";
    auto amount = [&](double f, const std::string& name) -> std::int64_t {
        if (f <= 0) return 0;
        const auto n = static_cast<std::int64_t>(std::llround(f * static_cast<double>(total)));
        if (n == 0)
            throw Error(detail::concat(name, " ", fraction_str(f), " of ", total, " training ",
                                       unit, " is less than one"),
                        detail::concat("raise ", name, " or give a file"));
        return n;
    };
    const std::int64_t n_test = amount(test_fraction_, "test_fraction");
    const std::int64_t n_valid = amount(valid_fraction_, "valid_fraction");
    if (n_test + n_valid >= total)
        throw Error(detail::concat("valid_fraction and test_fraction leave no training text (",
                                   total, " ", unit, ")"),
                    "lower the fractions");
    if (n_test > 0) {
        test.items = take_tail(train.items, n_test, !by_line);
        test.origin = detail::concat(train.origin, " (test_fraction ", fraction_str(test_fraction_), ")");
    }
    if (n_valid > 0) {
        valid.items = take_tail(train.items, n_valid, !by_line);
        valid.origin = detail::concat(train.origin, " (valid_fraction ", fraction_str(valid_fraction_), ")");
    }

    ctx.put_output("out", "train", std::move(train));
    if (!valid.items.empty()) ctx.put_output("out", "valid", std::move(valid));
    if (!test.items.empty()) ctx.put_output("out", "test", std::move(test));
}

}  // namespace rnnflow::stages
