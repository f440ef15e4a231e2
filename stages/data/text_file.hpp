// text_file: reads UTF-8 text files into per-split lists of items (lines, or whole files).
//
//   out (text)   TextSplit per split that has data: "train", and "valid" / "test" when a file or
//                a fraction gives them; origin = the file path(s) as written in the graph.
//
// Lines: split at '\n'; a '\r' right before it is dropped (CRLF files); empty lines are kept as
// empty items; a final '\n' does not start an extra empty item. A UTF-8 byte-order mark at the
// start of a file is dropped. Several train files: their items in the order given.
// Fractions, taken only when the matching file is not given, cut the tail of the training text
// in the order  train | valid | test  (test = the very end). Sizes are round(fraction × n) where
// n counts lines (by: line) or characters = code points (by: file; cuts at a code-point
// boundary, so a file may end in one split and go on in the next).
// Errors name file:line:col (1-based; col counts bytes) for bad UTF-8 (strict: no overlong
// forms, surrogates or code points above U+10FFFF) and NUL bytes (binary files).
// Sizes are capped before they are read: max_file_bytes per file, max_line_bytes per line.
// In restore mode nothing is read and nothing is output.
// Not supported: encodings other than UTF-8, compressed files, globs, streaming corpora larger
// than memory, shuffling.
#pragma once

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class TextFile final : public DataStage {
public:
    static StageSchema schema();
    explicit TextFile(const Params& p);
    void prepare(PrepareContext& ctx) override;

private:
    std::vector<std::string> train_;
    std::string valid_, test_, by_;
    double valid_fraction_, test_fraction_;
    std::int64_t max_line_bytes_, max_file_bytes_;
};

}  // namespace rnnflow::stages
