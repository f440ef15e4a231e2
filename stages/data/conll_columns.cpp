#include "conll_columns.hpp"

#include <algorithm>

#include "reader_common.hpp"

namespace rnnflow::stages {

namespace {
// The fields of a line split at runs of spaces and tabs.
std::vector<std::string> columns(const std::string& line) {
    std::vector<std::string> f;
    std::size_t pos = line.find_first_not_of(" \t");
    while (pos != std::string::npos) {
        const std::size_t end = line.find_first_of(" \t", pos);
        f.push_back(line.substr(pos, end == std::string::npos ? std::string::npos : end - pos));
        pos = end == std::string::npos ? end : line.find_first_not_of(" \t", end);
    }
    return f;
}

// A column index as written (negative counts from the end) for a line of `n` fields; -1 if absent.
std::int64_t resolve(std::int64_t col, std::size_t n) {
    const auto size = static_cast<std::int64_t>(n);
    const std::int64_t i = col < 0 ? size + col : col;
    return i >= 0 && i < size ? i : -1;
}
}  // namespace

StageSchema ConllColumns::schema() {
    StageSchema s("conll_columns", "reads CoNLL-style column files (CoNLL-2003 NER): a word and a tag per line",
                  Role::data);
    s.output("text", PortType::text, "each sentence's words joined by single spaces")
        .output("tokens", PortType::tokens, "each sentence's words, digits folded to 0 with digits: zero")
        .output("labels", PortType::tokens, "the label column, one tag per word, in `scheme`")
        .output("words", PortType::tokens, "each sentence's words exactly as in the file");
    reader::add_split_params(s, "file (CoNLL columns)");
    s.param_int("word", 0, Range{-64, 63}, "the column giving the words (0 = the first; negative counts from the end)")
        .param_int("label", -1, Range{-64, 63}, "the column giving each word's tag (-1 = the last)")
        .param_choice("scheme", "file", {"file", "iob1", "iob2", "iobes"},
                      "the tag scheme of `labels`: file keeps the file's tags; otherwise converted by chunks")
        .param_choice("digits", "keep", {"keep", "zero"}, "zero: every digit of `tokens` becomes 0 (Lample et al.)")
        .value("skipped", "sentences dropped as malformed (on_error: skip)")
        .details("Columns are separated by spaces or tabs; sentences end at an empty line; -DOCSTART- lines are "
                 "skipped. With a scheme other than file, tags are read as chunks by conlleval's rules and "
                 "written in that scheme (IOB1 files trained as IOBES, say); entity_metrics writes "
                 "predictions back in the file's scheme. Malformed lines (too few columns, a bad tag when "
                 "converting) are reported as file:line, or their sentence is dropped with a count "
                 "(on_error: skip). In prediction runs each input line is a sentence of whitespace-separated "
                 "words.");
    return s;
}

ConllColumns::ConllColumns(const Params& p)
    : params_(p),
      word_col_(p.get_int("word")),
      label_col_(p.get_int("label")),
      scheme_(tag_scheme_from_name(p.get_string("scheme"))),
      fold_digits_(p.get_string("digits") == "zero") {
    if (word_col_ == label_col_)
        throw Error(detail::concat("word and label are both column ", word_col_),
                    "set label: to the tag column (-1 = the last)");
}

std::vector<std::string> ConllColumns::fold(const std::vector<std::string>& words) const {
    if (!fold_digits_) return words;
    std::vector<std::string> out = words;
    for (auto& w : out)
        for (char& c : w)
            if (c >= '0' && c <= '9') c = '0';
    return out;
}

ConllColumns::Sentences ConllColumns::read_file(const std::vector<std::string>& lines, const std::string& file,
                                                bool skip, const std::string& stage_id) {
    reader::BadLines bad(skip, file);
    Sentences out;
    std::vector<std::string> words, tags;
    std::vector<std::int64_t> tag_lines;  // each tag's line, for a bad tag's file:line
    bool broken = false;                  // the current sentence had a malformed line (skip mode)
    auto finish = [&] {
        if (!broken && !words.empty() && scheme_) {
            if (const auto t = malformed_tag(tags)) {
                const auto at = static_cast<std::size_t>(std::find(tags.begin(), tags.end(), *t) - tags.begin());
                bad.bad(tag_lines[at], "tag '" + *t + "' is not O or B-, I-, E-, S- with a type",
                        "scheme: converts chunk tags; check the label column, or set scheme: file");
                broken = true;
            } else {
                tags = convert_tags(tags, *scheme_);
            }
        }
        if (!broken && !words.empty()) {
            out.text.items.push_back(reader::join_words(words));
            out.tokens.items.push_back(fold(words));
            out.words.items.push_back(std::move(words));
            out.labels.items.push_back(std::move(tags));
        }
        words.clear();
        tags.clear();
        tag_lines.clear();
        broken = false;
    };
    for (std::size_t li = 0; li < lines.size(); ++li) {
        const std::vector<std::string> f = columns(lines[li]);
        const auto lineno = static_cast<std::int64_t>(li + 1);
        if (f.empty()) {
            finish();
            continue;
        }
        if (f[0] == "-DOCSTART-" || broken) continue;
        const std::int64_t w = resolve(word_col_, f.size()), t = resolve(label_col_, f.size());
        if (w < 0 || t < 0 || w == t) {
            bad.bad(lineno,
                    detail::concat(f.size(), " column", f.size() == 1 ? "" : "s", ", too few for word column ",
                                   word_col_, " and label column ", label_col_),
                    "columns are separated by spaces or tabs; a sentence ends at an empty line");
            broken = true;
            continue;
        }
        words.push_back(f[static_cast<std::size_t>(w)]);
        tags.push_back(f[static_cast<std::size_t>(t)]);
        tag_lines.push_back(lineno);
    }
    finish();
    bad.report(stage_id, "sentences");
    skipped_ += bad.count();
    out.text.origin = out.tokens.origin = out.labels.origin = out.words.origin = file;
    return out;
}

void ConllColumns::prepare(PrepareContext& ctx) {
    for (const char* port : {"text", "tokens", "labels", "words"})
        ctx.set_output_info(port, PortInfo{port == std::string("text") ? PortType::text : PortType::tokens, -1, -1,
                                           nullptr});
    skipped_ = 0;
    TokenizerSpec words_spec;
    words_spec.mode = "word";
    if (const auto* lines = ctx.infer_lines()) {
        TokenSplit tokens, words;
        tokens.origin = words.origin = "input lines";
        tokens.spec = words.spec = words_spec;
        for (const auto& l : *lines) {
            words.items.push_back(words_spec.tokenize(l));
            tokens.items.push_back(fold(words.items.back()));
        }
        ctx.put_output("text", "infer", TextSplit{*lines, "input lines"});
        ctx.put_output("tokens", "infer", std::move(tokens));
        ctx.put_output("words", "infer", std::move(words));
        return;
    }
    if (ctx.mode() == PrepareMode::restore) return;
    const reader::SplitFiles files(params_);
    if (files.files.empty() || files.files.front().first != "train")
        throw Error("no training file", "set train: path/to/train.txt");
    for (const auto& [split, file] : files.files) {
        Sentences s = read_file(split_lines(read_text_file(ctx.base_dir(), file, split)), file, files.skip,
                                ctx.stage_id());
        if (s.text.items.empty())
            throw Error(detail::concat(split, " file '", file, "' has no sentences"),
                        "check that it is a CoNLL column file (one word per line, blank lines between sentences)");
        s.tokens.spec = s.labels.spec = s.words.spec = words_spec;
        ctx.put_output("text", split, std::move(s.text));
        ctx.put_output("tokens", split, std::move(s.tokens));
        ctx.put_output("labels", split, std::move(s.labels));
        ctx.put_output("words", split, std::move(s.words));
    }
}

std::int64_t ConllColumns::value(const std::string& name) const {
    if (name == "skipped") return skipped_;
    return Stage::value(name);
}

}  // namespace rnnflow::stages
