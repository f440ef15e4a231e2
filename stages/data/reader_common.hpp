// Shared pieces of the labelled-text readers (tsv_text, conllu, conll_columns, label_lines): the
// malformed-line policy, split parameters and sentence text. Files are read with the SDK's one
// text-file reader (pipeline/core/text.hpp: read_text_file, split_lines).
//
// A reader names each bad line as "file:line: what" (1-based; the file as written in the graph).
// on_error: error stops at the first one (an Error with that text); skip drops the record, counts
// it and the reader prints one warning per file to standard error ("skipped 3 malformed lines of
// train.tsv; first: train.tsv:7: ...").
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "pipeline/core/stage.hpp"
#include "pipeline/core/text.hpp"  // read_text_file, split_lines: the one text-file reader

namespace rnnflow::stages::reader {

// The words joined by single spaces (a sentence's text from its tokens).
std::string join_words(const std::vector<std::string>& words);

// Counts the records dropped under on_error: skip, or throws under on_error: error.
class BadLines {
public:
    BadLines(bool skip, std::string file) : skip_(skip), file_(std::move(file)) {}
    // A malformed record at `line` (1-based). Throws unless skipping.
    void bad(std::int64_t line, const std::string& what, const std::string& hint);
    // A malformed record that is not a line (an item of a binary file): "file: what".
    void bad(const std::string& what, const std::string& hint);
    std::int64_t count() const { return count_; }
    // One warning line to standard error when something was skipped; `unit` names the records.
    void report(const std::string& stage_id, const std::string& unit) const;

private:
    void bad(const std::string& what, const std::string& hint, const char* sep);
    bool skip_;
    std::string file_;
    std::int64_t count_ = 0;
    std::string first_;
};

// The common parameters: train / valid / test files and on_error.
StageSchema& add_split_params(StageSchema& s, const std::string& what);
struct SplitFiles {
    std::vector<std::pair<std::string, std::string>> files;  // (split, file as written), non-empty only
    bool skip = false;
    explicit SplitFiles(const Params& p);
};

}  // namespace rnnflow::stages::reader
