// tsv_text: labelled sentences from delimited text files (TSV, CSV, "label sentence" lines).
//
//   text   (text)    TextSplit per split read: the text column of each record
//   labels (tokens)  TokenSplit per split read: one token per record, the label column
//   value skipped    records dropped under on_error: skip, all splits together
//
// Records are lines; with quoting: csv a field that starts with '"' runs to the matching
// closing quote ("" inside is one quote) and may hold the delimiter and line breaks, so one
// record can span lines (errors name the line it starts on). quoting: none takes every byte as
// it is. max_fields > 0 splits a line into at most that many fields, the last holding the rest
// of the line (delimiter ' ', max_fields 2 reads "1 a fine film" as label 1, text "a fine film").
// Columns are chosen by 1-based number or, with header: true, by the name in the first line.
// Empty lines are skipped. Malformed: too few fields for a chosen column, an empty label, an
// unterminated quote, text after a closing quote; reported as file:line (on_error).
// Restore mode reads nothing; in a prediction run (infer_lines) each input line is one text
// item of split "infer", whole (no columns), and there are no labels.
// Not supported: other quote characters, escapes by backslash, multi-byte delimiters, several
// label columns (multi-label).
#pragma once

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class TsvText final : public DataStage {
public:
    static StageSchema schema();
    explicit TsvText(const Params& p);
    void prepare(PrepareContext& ctx) override;
    std::int64_t value(const std::string& name) const override;

private:
    Params params_;
    char delim_;
    bool quoted_, header_;
    std::int64_t max_fields_;
    std::string text_col_, label_col_;
    std::int64_t skipped_ = 0;
};

}  // namespace rnnflow::stages
