#include "conllu.hpp"

#include <algorithm>

#include "reader_common.hpp"

namespace rnnflow::stages {

namespace {
const std::vector<std::string> kColumns{"ID", "FORM", "LEMMA", "UPOS", "XPOS", "FEATS", "HEAD", "DEPREL", "DEPS", "MISC"};

bool all_digits(const std::string& s, std::size_t from, std::size_t to) {
    if (from >= to) return false;
    for (std::size_t i = from; i < to; ++i)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}
}  // namespace

StageSchema Conllu::schema() {
    StageSchema s("conllu", "reads CoNLL-U treebanks: words and one label column per word", Role::data);
    s.output("text", PortType::text, "each sentence's words joined by single spaces")
        .output("tokens", PortType::tokens, "each sentence's words, as the treebank tokenised them")
        .output("labels", PortType::tokens, "the label column, one token per word");
    reader::add_split_params(s, "file (.conllu)");
    s.param_choice("word", "FORM", kColumns, "the column giving the words")
        .param_choice("label", "UPOS", kColumns, "the column giving each word's label")
        .value("skipped", "sentences dropped as malformed (on_error: skip)")
        .details("Comments (#), multi-word token lines (1-2) and empty nodes (5.1) are skipped; "
                 "sentences end at an empty line. Malformed word lines are reported as file:line, "
                 "or their sentence is dropped with a count (on_error: skip). In prediction runs "
                 "each input line is a sentence of whitespace-separated words.");
    return s;
}

Conllu::Conllu(const Params& p) : params_(p) {
    auto index = [](const std::string& name) {
        return static_cast<int>(std::find(kColumns.begin(), kColumns.end(), name) - kColumns.begin());
    };
    word_col_ = index(p.get_string("word"));
    label_col_ = index(p.get_string("label"));
}

void Conllu::prepare(PrepareContext& ctx) {
    ctx.set_output_info("text", PortInfo{PortType::text, -1, -1, nullptr});
    ctx.set_output_info("tokens", PortInfo{PortType::tokens, -1, -1, nullptr});
    ctx.set_output_info("labels", PortInfo{PortType::tokens, -1, -1, nullptr});
    skipped_ = 0;
    TokenizerSpec words_spec;
    words_spec.mode = "word";
    if (const auto* lines = ctx.infer_lines()) {
        TokenSplit tokens;
        tokens.origin = "input lines";
        tokens.spec = words_spec;
        for (const auto& l : *lines) tokens.items.push_back(words_spec.tokenize(l));
        ctx.put_output("text", "infer", TextSplit{*lines, "input lines"});
        ctx.put_output("tokens", "infer", std::move(tokens));
        return;
    }
    if (ctx.mode() == PrepareMode::restore) return;
    const reader::SplitFiles files(params_);
    if (files.files.empty() || files.files.front().first != "train")
        throw Error("no training file", "set train: path/to/train.conllu");

    for (const auto& [split, file] : files.files) {
        const std::vector<std::string> lines = split_lines(read_text_file(ctx.base_dir(), file, split));
        reader::BadLines bad(files.skip, file);
        TextSplit text;
        TokenSplit tokens, labels;
        text.origin = tokens.origin = labels.origin = file;
        tokens.spec = labels.spec = words_spec;

        std::vector<std::string> words, tags;
        bool broken = false;       // the current sentence had a malformed line (skip mode)
        auto finish = [&] {
            if (!broken && !words.empty()) {
                text.items.push_back(reader::join_words(words));
                tokens.items.push_back(std::move(words));
                labels.items.push_back(std::move(tags));
            }
            words.clear();
            tags.clear();
            broken = false;
        };
        for (std::size_t li = 0; li < lines.size(); ++li) {
            const std::string& line = lines[li];
            const auto lineno = static_cast<std::int64_t>(li + 1);
            if (line.empty() || line.find_first_not_of(" \t") == std::string::npos) {
                finish();
                continue;
            }
            if (line[0] == '#') continue;
            if (broken) continue;  // the rest of a dropped sentence
            std::vector<std::string> f;
            std::size_t pos = 0;
            while (true) {
                const std::size_t tab = line.find('\t', pos);
                f.push_back(line.substr(pos, tab == std::string::npos ? std::string::npos : tab - pos));
                if (tab == std::string::npos) break;
                pos = tab + 1;
            }
            auto fail = [&](const std::string& what, const std::string& hint) {
                bad.bad(lineno, what, hint);  // throws unless skipping
                broken = true;
            };
            if (f.size() != 10) {
                fail(detail::concat(f.size(), " tab-separated field", f.size() == 1 ? "" : "s", ", a CoNLL-U word line has 10"),
                     "fields are separated by single tabs; a sentence ends at an empty line");
                continue;
            }
            const std::string& id = f[0];
            const std::size_t dash = id.find('-'), dot = id.find('.');
            if (dash != std::string::npos) {
                if (!all_digits(id, 0, dash) || !all_digits(id, dash + 1, id.size()))
                    fail("bad multi-word token ID '" + id + "' (expected a range like 3-4)", "");
                continue;  // the words follow on their own lines
            }
            if (dot != std::string::npos) {
                if (!all_digits(id, 0, dot) || !all_digits(id, dot + 1, id.size()))
                    fail("bad empty node ID '" + id + "' (expected a decimal like 5.1)", "");
                continue;  // empty nodes are not words
            }
            if (!all_digits(id, 0, id.size()) || id.size() > 9) {
                fail("bad word ID '" + id + "' (expected 1, 2, ...)", "");
                continue;
            }
            if (std::stoll(id) != static_cast<long long>(words.size()) + 1) {
                fail(detail::concat("word ID ", id, " where ", words.size() + 1, " was expected"),
                     "IDs count from 1 within a sentence; is an empty line missing between sentences?");
                continue;
            }
            const std::string& w = f[static_cast<std::size_t>(word_col_)];
            const std::string& t = f[static_cast<std::size_t>(label_col_)];
            if (w.empty() || t.empty()) {
                fail(detail::concat("empty ", w.empty() ? kColumns[static_cast<std::size_t>(word_col_)]
                                                       : kColumns[static_cast<std::size_t>(label_col_)],
                                    " field"),
                     "");
                continue;
            }
            words.push_back(w);
            tags.push_back(t);
        }
        finish();
        bad.report(ctx.stage_id(), "sentences");
        skipped_ += bad.count();
        if (text.items.empty())
            throw Error(detail::concat(split, " file '", file, "' has no sentences"), "check that it is a CoNLL-U file");
        ctx.put_output("text", split, std::move(text));
        ctx.put_output("tokens", split, std::move(tokens));
        ctx.put_output("labels", split, std::move(labels));
    }
}

std::int64_t Conllu::value(const std::string& name) const {
    if (name == "skipped") return skipped_;
    return Stage::value(name);
}

}  // namespace rnnflow::stages
