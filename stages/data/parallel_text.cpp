#include "parallel_text.hpp"

#include "pipeline/core/text.hpp"

namespace rnnflow::stages {

StageSchema ParallelText::schema() {
    return StageSchema("parallel_text", "reads sentence pairs: two aligned files or one TSV per split",
                       Role::data)
        .output("source", PortType::text, "source sentences per split, one item per pair")
        .output("target", PortType::text, "target sentences per split, aligned with source")
        .param_list("train", {}, "[SOURCE_FILE, TARGET_FILE] (aligned lines) or [TSV_FILE]; "
                                 "relative to the graph file's folder; required")
        .param_list("valid", {}, "as train; [] = no validation split")
        .param_list("test", {}, "as train; [] = no test split")
        .param_int("source_column", 1, Range{1.0, 1000.0}, "TSV files: 1-based column of the source")
        .param_int("target_column", 2, Range{1.0, 1000.0}, "TSV files: 1-based column of the target")
        .param_choice("empty", "drop", {"drop", "keep", "error"},
                      "pairs with an empty or whitespace-only side: drop them, keep them, or "
                      "stop with an error naming file:line")
        .details("Two files per split are aligned line by line (their line counts must agree); one "
                 "file is tab-separated. CRLF line ends and a byte-order mark are accepted; invalid "
                 "UTF-8 is an error naming file:line:col. In prediction runs (rnnflow translate) the "
                 "input lines become the split 'infer' of `source`; `target` has no such split.");
}

ParallelText::ParallelText(const Params& p)
    : source_column_(p.get_int("source_column")), target_column_(p.get_int("target_column")),
      empty_(p.get_string("empty")) {
    for (const char* split : {"train", "valid", "test"}) {
        const auto& files = p.get_list(split);
        if (files.size() > 2)
            throw Error(detail::concat("'", split, "' lists ", files.size(), " files"),
                        "give [SOURCE_FILE, TARGET_FILE] or [TSV_FILE]");
        if (!files.empty()) files_[split] = files;
    }
    if (source_column_ == target_column_)
        throw Error(detail::concat("source_column and target_column are both ", source_column_),
                    "give the two columns of the TSV file");
}

namespace {

bool blank(const std::string& s) {
    return s.find_first_not_of(" \t\r\n\f\v") == std::string::npos;
}

// Field `col` (1-based) of a tab-separated line, or false when the line has fewer fields.
bool tsv_field(const std::string& line, std::int64_t col, std::string& out) {
    std::size_t start = 0;
    for (std::int64_t c = 1; c < col; ++c) {
        const std::size_t tab = line.find('\t', start);
        if (tab == std::string::npos) return false;
        start = tab + 1;
    }
    const std::size_t end = line.find('\t', start);
    out = line.substr(start, end == std::string::npos ? std::string::npos : end - start);
    return true;
}

std::int64_t fields(const std::string& line) {
    std::int64_t n = 1;
    for (char c : line) n += c == '\t';
    return n;
}

}  // namespace

void ParallelText::prepare(PrepareContext& ctx) {
    ctx.set_output_info("source", PortInfo{PortType::text, -1, -1, nullptr});
    ctx.set_output_info("target", PortInfo{PortType::text, -1, -1, nullptr});
    if (ctx.mode() == PrepareMode::restore) {
        if (const auto* lines = ctx.infer_lines()) {
            TextSplit src;
            src.origin = "input lines";
            for (std::size_t i = 0; i < lines->size(); ++i)
                check_utf8((*lines)[i], "input line", static_cast<std::int64_t>(i) + 1);
            src.items = *lines;
            ctx.put_output("source", "infer", std::move(src));
        }
        return;
    }
    if (!files_.count("train"))
        throw Error("no training files", "set train: [train.src, train.tgt] or train: [train.tsv]");

    for (const auto& split : ctx.splits()) {
        auto it = files_.find(split);
        if (it == files_.end()) continue;
        const auto& files = it->second;
        TextSplit src, tgt;
        // Where pair i came from, for messages: file and 1-based line.
        std::vector<std::string> src_lines, tgt_lines;
        std::string src_file, tgt_file;
        if (files.size() == 2) {
            src_file = files[0];
            tgt_file = files[1];
            src_lines = split_lines(read_text_file(ctx.base_dir(), files[0], split + " source"));
            tgt_lines = split_lines(read_text_file(ctx.base_dir(), files[1], split + " target"));
            if (src_lines.size() != tgt_lines.size())
                throw Error(detail::concat(split, " files are not aligned: '", files[0], "' has ",
                                           src_lines.size(), " lines, '", files[1], "' has ",
                                           tgt_lines.size()),
                            "the files must hold one sentence a line, line k of one translating "
                            "line k of the other");
            src.origin = files[0];
            tgt.origin = files[1];
        } else {
            src_file = tgt_file = files[0];
            const auto lines = split_lines(read_text_file(ctx.base_dir(), files[0], split));
            const std::int64_t need = std::max(source_column_, target_column_);
            for (std::size_t i = 0; i < lines.size(); ++i) {
                std::string s, t;
                if (!tsv_field(lines[i], source_column_, s) || !tsv_field(lines[i], target_column_, t)) {
                    // An empty last-but-blank line is the only short line we let through.
                    if (blank(lines[i]) && empty_ != "error") {
                        src_lines.emplace_back();
                        tgt_lines.emplace_back();
                        continue;
                    }
                    throw Error(detail::concat(files[0], ":", i + 1, ": ", fields(lines[i]),
                                               " tab-separated field(s), need at least ", need,
                                               " (source_column ", source_column_, ", target_column ",
                                               target_column_, ")"),
                                "separate source and target with a tab, or set source_column / "
                                "target_column");
                }
                src_lines.push_back(std::move(s));
                tgt_lines.push_back(std::move(t));
            }
            src.origin = files[0] + " (column " + std::to_string(source_column_) + ")";
            tgt.origin = files[0] + " (column " + std::to_string(target_column_) + ")";
        }
        for (std::size_t i = 0; i < src_lines.size(); ++i) {
            const bool es = blank(src_lines[i]), et = blank(tgt_lines[i]);
            if (es || et) {
                if (empty_ == "drop") continue;
                if (empty_ == "error")
                    throw Error(detail::concat(es ? src_file : tgt_file, ":", i + 1, ": empty ",
                                               es ? "source" : "target", " sentence"),
                                "remove the pair, or set empty: drop (or keep)");
            }
            src.items.push_back(std::move(src_lines[i]));
            tgt.items.push_back(std::move(tgt_lines[i]));
        }
        if (src.items.empty())
            throw Error(detail::concat("split '", split, "' (", src.origin, ") has no sentence pairs"),
                        "check the files");
        ctx.put_output("source", split, std::move(src));
        ctx.put_output("target", split, std::move(tgt));
    }
}

}  // namespace rnnflow::stages
