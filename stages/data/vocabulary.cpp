#include "vocabulary.hpp"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

namespace rnnflow::stages {

namespace fs = std::filesystem;

StageSchema Vocabulary::schema() {
    return StageSchema("vocabulary", "fits token ids on the training split and encodes all splits",
                       Role::data)
        .input("in", PortType::tokens, "token sequences per split")
        .output("out", PortType::sequences, "id sequences per split")
        .output("vocab", PortType::vocab, "the fitted vocabulary")
        .param_int("min_count", 1, Range{1.0, 1e9}, "keep tokens seen at least this often in train")
        .param_int("max_size", 0, Range{0.0, 1e8},
                   "at most this many ids, specials included; 0 = no limit")
        .param_int("size_cap", 1000000, Range{1.0, 1e9},
                   "with max_size 0: a vocabulary of more ids is an error, caught before the model "
                   "allocates V-sized weights (a word vocabulary of a big corpus can fill memory)")
        .param_list("specials", {"<unk>"}, {"<pad>", "<unk>", "<sos>", "<eos>"},
                    "special tokens, given the first ids in this order")
        .param_bool("append_eos", false, "append <eos> to every item (needs <eos> in specials)")
        .param_string("extend_from", "",
                      "a word-vectors file (GloVe/word2vec text, as embedding's pretrained: reads): its "
                      "tokens that training did not put in the vocabulary get ids too, after the "
                      "training ones in file order, so that pretrained vectors reach words rare in or "
                      "absent from the training text; \"\" = none")
        .value("size", "number of ids, specials included")
        .details("Order: specials, then tokens by descending training count, ties by token text. "
                 "Unknown tokens map to <unk>, or are an error without it. Saved as vocab.tsv in "
                 "the stage's state folder and loaded from there in restore mode. extend_from: a "
                 "token keeps its training count (0 if unseen); max_size and size_cap count the "
                 "added ids; the count added is logged.");
}

Vocabulary::Vocabulary(const Params& p)
    : min_count_(p.get_int("min_count")), max_size_(p.get_int("max_size")),
      size_cap_(p.get_int("size_cap")), specials_(p.get_list("specials")), append_eos_(p.get_bool("append_eos")),
      extend_from_(p.get_string("extend_from")) {
    for (std::size_t i = 0; i < specials_.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (specials_[i] == specials_[j])
                throw Error("specials lists '" + specials_[i] + "' twice", "list each special once");
    if (append_eos_ && std::find(specials_.begin(), specials_.end(), "<eos>") == specials_.end())
        throw Error("append_eos needs <eos> in specials", "add <eos> to specials");
    if (max_size_ > 0 && max_size_ <= static_cast<std::int64_t>(specials_.size()))
        throw Error(detail::concat("max_size ", max_size_, " leaves no room for tokens after ",
                                   specials_.size(), " specials"),
                    "raise max_size, or set 0 for no limit");
}

namespace {

// The tokens of a GloVe/word2vec text file, in file order, read as embedding's pretrained: reader
// reads them: fields split at runs of spaces and tabs; an optional word2vec "count dim" first line;
// otherwise the first row's field count gives dim; a row's token is what precedes its last dim
// fields (joined by single spaces).
std::vector<std::string> vector_file_tokens(const fs::path& file, const std::string& written) {
    std::ifstream is(file, std::ios::binary);
    if (!is.is_open())
        throw Error("extend_from file '" + written + "' not found or unreadable",
                    "looked for '" + file.string() + "'; relative paths start at the graph file's folder");
    std::vector<std::string> tokens;
    std::string line;
    std::int64_t lineno = 0, dim = -1;
    auto is_count = [](const std::string& f) {
        return !f.empty() && std::all_of(f.begin(), f.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    while (std::getline(is, line)) {
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        std::vector<std::string> f;
        for (std::size_t i = 0; i < line.size();) {
            while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
            const std::size_t b = i;
            while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
            if (i > b) f.push_back(line.substr(b, i - b));
        }
        if (f.empty()) continue;
        if (lineno == 1 && f.size() == 2 && is_count(f[0]) && is_count(f[1])) {  // word2vec header
            dim = std::stoll(f[1]);
            continue;
        }
        if (dim < 0) dim = static_cast<std::int64_t>(f.size()) - 1;
        if (dim < 1 || static_cast<std::int64_t>(f.size()) < dim + 1)
            throw Error(detail::concat(written, ":", lineno, ": ", f.size(), " fields, a token and ", std::max<std::int64_t>(dim, 1),
                                       " numbers expected"),
                        "give a GloVe/word2vec text file: token v1 v2 ... per line");
        std::string token = f[0];
        for (std::size_t k = 1; k + static_cast<std::size_t>(dim) < f.size(); ++k) token += " " + f[k];
        tokens.push_back(std::move(token));
    }
    if (is.bad()) throw Error("error while reading extend_from file '" + written + "'", "check the file and the disk");
    return tokens;
}

}  // namespace

rnnflow::Vocabulary Vocabulary::fit(const TokenSplit& train, const fs::path& base_dir, Extended* extended) const {
    std::map<std::string, std::int64_t> counts;  // ordered: the sort below is then stable input
    std::int64_t n_tokens = 0;
    for (const auto& item : train.items)
        for (const auto& t : item) {
            ++counts[t];
            ++n_tokens;
        }
    if (n_tokens == 0)
        throw Error(detail::concat("no tokens in the training split (", train.origin, ")"),
                    "check the training text and the tokenizer settings");

    std::vector<std::string> tokens = specials_;
    std::vector<std::int64_t> token_counts;
    for (const auto& s : specials_) {
        auto it = counts.find(s);
        token_counts.push_back(it == counts.end() ? 0 : it->second);
    }
    std::vector<std::pair<std::string, std::int64_t>> regular;
    for (const auto& [tok, n] : counts) {
        if (n < min_count_) continue;
        if (std::find(specials_.begin(), specials_.end(), tok) != specials_.end()) continue;
        regular.emplace_back(tok, n);
    }
    std::sort(regular.begin(), regular.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    std::size_t trained = regular.size();  // the training tokens; extend_from's come after them
    if (!extend_from_.empty()) {
        const fs::path file = fs::path(extend_from_).is_absolute() ? fs::path(extend_from_) : base_dir / extend_from_;
        std::set<std::string> have(specials_.begin(), specials_.end());
        for (const auto& r : regular) have.insert(r.first);
        for (auto& tok : vector_file_tokens(file, extend_from_)) {
            if (!have.insert(tok).second) continue;
            const auto it = counts.find(tok);
            regular.emplace_back(std::move(tok), it == counts.end() ? 0 : it->second);
        }
    }
    if (max_size_ > 0) {
        const auto room = static_cast<std::size_t>(max_size_) - specials_.size();
        if (regular.size() > room) regular.resize(room);
    } else if (static_cast<std::int64_t>(regular.size() + specials_.size()) > size_cap_) {
        throw Error(detail::concat("the vocabulary would have ", regular.size() + specials_.size(),
                                   " ids, more than size_cap = ", size_cap_, " (", train.origin, ")"),
                    "keep the most frequent tokens with max_size (or min_count), or raise size_cap");
    }
    trained = std::min(trained, regular.size());
    if (extended) {
        *extended = {static_cast<std::int64_t>(regular.size() - trained), 0};
        for (std::size_t i = trained; i < regular.size(); ++i) extended->seen += regular[i].second > 0;
    }
    if (trained == 0)
        throw Error(detail::concat("no training token is seen min_count = ", min_count_,
                                   " times or more"),
                    "lower min_count");
    for (auto& [tok, n] : regular) {
        tokens.push_back(std::move(tok));
        token_counts.push_back(n);
    }
    return rnnflow::Vocabulary(std::move(tokens), std::move(token_counts), specials_, train.spec);
}

void Vocabulary::prepare(PrepareContext& ctx) {
    const bool restore = ctx.mode() != PrepareMode::fit;  // restore and evaluate load the fitted vocabulary
    const fs::path dir = ctx.state_dir();
    if (restore) {
        if (dir.empty())
            throw Error("restore mode needs a state folder to load vocab.tsv from",
                        "restore from a run folder");
        const fs::path file = dir / "vocab.tsv";
        if (!fs::exists(file))
            throw Error(detail::concat("no saved vocabulary at '", file.string(), "'"),
                        "restore from the run folder that trained this graph");
        vocab_ = std::make_shared<const rnnflow::Vocabulary>(rnnflow::Vocabulary::load(file));
    } else {
        if (!ctx.has_input("in", "train"))
            throw Error("no training split to fit the vocabulary on",
                        "connect a reader that gives a train split");
        Extended ext;
        vocab_ = std::make_shared<const rnnflow::Vocabulary>(fit(ctx.input<TokenSplit>("in", "train"), ctx.base_dir(), &ext));
        if (!extend_from_.empty())
            std::cerr << "stage '" << ctx.stage_id() << "': " << ext.added << " tokens added from " << extend_from_
                      << " (" << ext.seen << " of them seen in training, below min_count) for "
                      << vocab_->size() << " ids\n";
        if (!dir.empty()) vocab_->save(dir / "vocab.tsv");
    }
    const rnnflow::Vocabulary& v = *vocab_;
    ctx.set_output_info("out", PortInfo{PortType::sequences, -1, v.size(), vocab_});
    ctx.set_output_info("vocab", PortInfo{PortType::vocab, -1, v.size(), vocab_});

    const std::int32_t eos = append_eos_ ? v.special("<eos>") : -1;
    for (const auto& split : ctx.splits()) {
        if (!ctx.has_input("in", split)) continue;
        const auto& tokens = ctx.input<TokenSplit>("in", split);
        SequenceSplit seq;
        seq.origin = tokens.origin;
        seq.items.reserve(tokens.items.size());
        for (std::size_t i = 0; i < tokens.items.size(); ++i) {
            std::vector<std::int32_t> ids;
            ids.reserve(tokens.items[i].size() + (eos >= 0 ? 1 : 0));
            for (const auto& t : tokens.items[i]) {
                const std::int32_t id = v.id(t);
                if (id < 0)
                    throw Error(detail::concat("token '", t, "' in split '", split, "' (item ", i + 1,
                                               " of ", tokens.origin, ") is not in the vocabulary"),
                                "add <unk> to specials");
                ids.push_back(id);
            }
            if (eos >= 0) ids.push_back(eos);
            seq.items.push_back(std::move(ids));
        }
        ctx.put_output("out", split, std::move(seq));
    }
}

std::int64_t Vocabulary::value(const std::string& name) const {
    if (name != "size") return Stage::value(name);
    RNNFLOW_CHECK(vocab_ != nullptr, "vocabulary size is known only after prepare");
    return vocab_->size();
}

}  // namespace rnnflow::stages
