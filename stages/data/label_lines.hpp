// label_lines: sentences from a text file paired line by line with a label file.
//
//   text   (text)    TextSplit per split: the lines of the text file
//   labels (tokens)  TokenSplit per split: one token per item, the label file's line (trimmed)
//   value skipped    pairs dropped as malformed (on_error: skip), all splits together
//
// Parameters name a text file and a label file per split (train and train_labels, ...); line k
// of one goes with line k of the other, and the two must have as many lines (an error naming
// both files and both counts otherwise). Malformed: an empty label line, or a label holding
// whitespace inside (one label per line); reported as labels-file:line (on_error). Empty text
// lines are kept (an empty sentence is a valid input).
// Restore mode reads nothing; in a prediction run (infer_lines) the lines are the text items of
// split "infer", without labels.
// Not supported: several labels per line (multi-label), label files with a header.
#pragma once

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class LabelLines final : public DataStage {
public:
    static StageSchema schema();
    explicit LabelLines(const Params& p);
    void prepare(PrepareContext& ctx) override;
    std::int64_t value(const std::string& name) const override;

private:
    Params params_;
    std::int64_t skipped_ = 0;
};

}  // namespace rnnflow::stages
