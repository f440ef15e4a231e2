// parallel_text: reads sentence pairs (source, target) per split, from two aligned files or one
// tab-separated file.
//
//   source (text)  TextSplit per split: the source sentences, one item per pair
//   target (text)  TextSplit per split: the target sentences, same count and order
//
// A split is given as a list: [SRC_FILE, TGT_FILE] (line k of one is the translation of line k
// of the other) or [TSV_FILE] (source and target in the 1-based columns source_column and
// target_column of each tab-separated line). Lines are split at '\n', a '\r' before it is
// dropped (CRLF), a final '\n' does not start an empty line, a UTF-8 byte-order mark is dropped.
// Pairs with an empty (or whitespace-only) side are dropped (empty: drop, the default), kept
// (keep) or an error naming file:line (error); either way items stay aligned.
// Errors: files of different line counts (names both files and both counts), invalid UTF-8 or
// NUL bytes (file:line:col), a TSV line with too few columns (file:line).
// Restore mode: reads no file; in a prediction run (PrepareContext::infer_lines) it puts the
// lines out as the split "infer" on `source` only (no target), one item per line, empty lines
// included (later stages decide about them).
// Not supported: encodings other than UTF-8, compressed files, quoting in TSV files.
#pragma once

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class ParallelText final : public DataStage {
public:
    static StageSchema schema();
    explicit ParallelText(const Params& p);
    void prepare(PrepareContext& ctx) override;

private:
    std::map<std::string, std::vector<std::string>> files_;  // split → 1 or 2 files
    std::int64_t source_column_, target_column_;
    std::string empty_;
};

}  // namespace rnnflow::stages
