#include "tsv_text.hpp"

#include <algorithm>

#include "reader_common.hpp"

namespace rnnflow::stages {

StageSchema TsvText::schema() {
    StageSchema s("tsv_text", "reads labelled sentences from TSV/CSV files (chosen text and label columns)",
                  Role::data);
    s.output("text", PortType::text, "the text column, one item per record")
        .output("labels", PortType::tokens, "the label column, one token per record");
    reader::add_split_params(s, "file");
    s.param_string("delimiter", "\t", "field separator, one character (\"\\t\" tab, \",\", \" \"); "
                                       "the words tab, comma, space, semicolon also work")
        .param_choice("quoting", "none", {"none", "csv"},
                      "csv: a field in double quotes may hold the delimiter, line breaks and \"\" "
                      "for a quote; none: bytes as they are")
        .param_bool("header", true, "the first line names the columns (and is not a record)")
        .param_string("text", "sentence", "the text column: a 1-based number, or a header name")
        .param_string("label", "label", "the label column: a 1-based number, or a header name")
        .param_int("max_fields", 0, Range{0, 1e6},
                   "split into at most this many fields, the last holding the rest of the line; 0 = no limit")
        .value("skipped", "records dropped as malformed (on_error: skip)")
        .details("Empty lines are skipped. Malformed records (too few fields, empty label, "
                 "unterminated or misplaced quotes) are reported as file:line, or skipped with a "
                 "count (on_error: skip). In prediction runs each input line is a text item, whole.");
    return s;
}

namespace {

char parse_delimiter(const std::string& d) {
    if (d == "tab" || d == "\\t") return '\t';
    if (d == "comma") return ',';
    if (d == "space") return ' ';
    if (d == "semicolon") return ';';
    if (d.size() != 1)
        throw Error("delimiter must be one character, got '" + d + "'",
                    "write \"\\t\" (in double quotes), \",\", \" \" or the word tab / comma / space / semicolon");
    if (d[0] == '"' || d[0] == '\n' || d[0] == '\r')
        throw Error("delimiter cannot be a quote or a line break", "use tab, comma, space or semicolon");
    return d[0];
}

bool is_number(const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

struct Record {
    std::vector<std::string> fields;
    std::int64_t line = 0;  // where it starts
    std::string error;      // malformed: why
};

// Splits the file into records (see the header for the rules).
std::vector<Record> parse_records(const std::string& bytes, char delim, bool quoted, std::int64_t max_fields) {
    std::vector<Record> out;
    std::int64_t line = 1;
    std::size_t i = 0;
    const std::size_t n = bytes.size();
    while (i < n) {
        Record r;
        r.line = line;
        std::string field;
        bool done = false;
        // Skip empty lines (also "\r\n").
        if (bytes[i] == '\n' || (bytes[i] == '\r' && i + 1 < n && bytes[i + 1] == '\n')) {
            i += bytes[i] == '\r' ? 2 : 1;
            ++line;
            continue;
        }
        while (!done) {
            const bool last_field = max_fields > 0 && static_cast<std::int64_t>(r.fields.size()) + 1 == max_fields;
            if (quoted && i < n && bytes[i] == '"' && !last_field) {
                // A quoted field: to the closing quote; "" is a quote.
                ++i;
                bool closed = false;
                while (i < n) {
                    if (bytes[i] == '"') {
                        if (i + 1 < n && bytes[i + 1] == '"') {
                            field += '"';
                            i += 2;
                            continue;
                        }
                        ++i;
                        closed = true;
                        break;
                    }
                    if (bytes[i] == '\n') ++line;
                    field += bytes[i++];
                }
                if (!closed) {
                    r.error = "unterminated quoted field (no closing '\"' before the end of the file)";
                    // Nothing after it can be told apart: the rest of the file is this record.
                    out.push_back(std::move(r));
                    return out;
                }
                // After the closing quote: a delimiter or the end of the record.
                if (i < n && bytes[i] != delim && bytes[i] != '\n' && bytes[i] != '\r') {
                    if (r.error.empty())
                        r.error = detail::concat("text after a closing quote in field ", r.fields.size() + 1,
                                                 " (a quote inside a quoted field is written \"\")");
                    while (i < n && bytes[i] != delim && bytes[i] != '\n') ++i;
                }
            } else {
                while (i < n && bytes[i] != '\n' && (bytes[i] != delim || last_field)) field += bytes[i++];
                if (!field.empty() && field.back() == '\r' && (i >= n || bytes[i] == '\n')) field.pop_back();
            }
            r.fields.push_back(std::move(field));
            field.clear();
            if (i < n && bytes[i] == delim) {
                ++i;
                continue;
            }
            if (i < n && bytes[i] == '\r') ++i;
            if (i < n && bytes[i] == '\n') {
                ++i;
                ++line;
            }
            done = true;
        }
        out.push_back(std::move(r));
    }
    return out;
}

}  // namespace

TsvText::TsvText(const Params& p)
    : params_(p), delim_(parse_delimiter(p.get_string("delimiter"))),
      quoted_(p.get_string("quoting") == "csv"), header_(p.get_bool("header")),
      max_fields_(p.get_int("max_fields")), text_col_(p.get_string("text")),
      label_col_(p.get_string("label")) {
    for (const auto* c : {&text_col_, &label_col_}) {
        if (c->empty()) throw Error("a column must be named: a 1-based number or a header name", "e.g. text: sentence");
        if (is_number(*c) && c->size() > 6) throw Error("column number " + *c + " is too large", "columns count from 1");
        if (is_number(*c) && std::stoll(*c) == 0) throw Error("columns count from 1, got 0", "the first column is 1");
        if (!is_number(*c) && !header_)
            throw Error("column '" + *c + "' is a name but header is false",
                        "give the 1-based column number, or set header: true");
    }
}

void TsvText::prepare(PrepareContext& ctx) {
    ctx.set_output_info("text", PortInfo{PortType::text, -1, -1, nullptr});
    ctx.set_output_info("labels", PortInfo{PortType::tokens, -1, -1, nullptr});
    skipped_ = 0;
    if (const auto* lines = ctx.infer_lines()) {
        ctx.put_output("text", "infer", TextSplit{*lines, "input lines"});
        return;
    }
    if (ctx.mode() == PrepareMode::restore) return;
    const reader::SplitFiles files(params_);
    if (files.files.empty() || files.files.front().first != "train")
        throw Error("no training file", "set train: path/to/train.tsv");

    for (const auto& split_file : files.files) {
        // Named copies, not structured bindings: the lambdas below use them, and clang 14 (the
        // fuzzing build) cannot capture a structured binding.
        const std::string& split = split_file.first;
        const std::string& file = split_file.second;
        const std::string bytes = read_text_file(ctx.base_dir(), file, split);
        std::vector<Record> records = parse_records(bytes, delim_, quoted_, max_fields_);
        std::size_t first = 0;
        std::size_t text_i = 0, label_i = 0;  // 0-based field indices
        auto resolve = [&](const std::string& col, const std::vector<std::string>& names) -> std::size_t {
            if (is_number(col)) return static_cast<std::size_t>(std::stoll(col) - 1);
            auto it = std::find(names.begin(), names.end(), col);
            if (it == names.end()) {
                std::string all;
                for (const auto& nm : names) {
                    all += all.empty() ? "'" : ", '";
                    all += nm;
                    all += '\'';
                }
                throw Error(detail::concat(file, ":1: no column named '", col, "' in the header (columns: ", all, ")"),
                            did_you_mean(col, names).empty() ? "name a column of the header, or give its number"
                                                             : did_you_mean(col, names));
            }
            return static_cast<std::size_t>(it - names.begin());
        };
        if (header_) {
            if (records.empty()) throw Error(detail::concat(split, " file '", file, "' is empty (no header line)"),
                                             "check the file, or set header: false");
            if (!records[0].error.empty())
                throw Error(detail::concat(file, ":", records[0].line, ": header: ", records[0].error), "fix the header line");
            first = 1;
        }
        const std::vector<std::string> names = header_ ? records[0].fields : std::vector<std::string>{};
        text_i = resolve(text_col_, names);
        label_i = resolve(label_col_, names);
        const std::size_t need = std::max(text_i, label_i) + 1;

        reader::BadLines bad(files.skip, file);
        TextSplit text;
        TokenSplit labels;
        text.origin = labels.origin = file;
        labels.spec.mode = "word";
        for (std::size_t r = first; r < records.size(); ++r) {
            const Record& rec = records[r];
            if (!rec.error.empty()) {
                bad.bad(rec.line, rec.error, "");
                continue;
            }
            if (rec.fields.size() < need) {
                bad.bad(rec.line,
                        detail::concat(rec.fields.size(), " field", rec.fields.size() == 1 ? "" : "s",
                                       ", the text and label columns need ", need),
                        detail::concat("check the delimiter (", delim_ == '\t' ? std::string("tab") : std::string(1, delim_),
                                       ") and quoting"));
                continue;
            }
            std::string label = rec.fields[label_i];
            while (!label.empty() && (label.back() == ' ' || label.back() == '\t')) label.pop_back();
            while (!label.empty() && (label.front() == ' ' || label.front() == '\t')) label.erase(0, 1);
            if (label.empty()) {
                bad.bad(rec.line, detail::concat("empty label (column ", label_i + 1, ")"), "");
                continue;
            }
            text.items.push_back(rec.fields[text_i]);
            labels.items.push_back({std::move(label)});
        }
        bad.report(ctx.stage_id(), "records");
        skipped_ += bad.count();
        if (text.items.empty())
            throw Error(detail::concat(split, " file '", file, "' has no records"), "check the file and the columns");
        ctx.put_output("text", split, std::move(text));
        ctx.put_output("labels", split, std::move(labels));
    }
}

std::int64_t TsvText::value(const std::string& name) const {
    if (name == "skipped") return skipped_;
    return Stage::value(name);
}

}  // namespace rnnflow::stages
