// features: dense inputs per item — a feature vector, or a grid of region vectors — with their
// captions, for captioning (Vinyals et al. 2015, "Show and Tell"; Xu et al. 2015, "Show, Attend
// and Tell").
//
//   out features (frames)  FrameSplit per split: the item's f32 (F, D) matrix, one entry per
//                          (item, caption) pair (rows = 1 for an (N, D) file); PortInfo
//                          channels = D (-1 in restore mode, which reads nothing)
//   out captions (text)    TextSplit per split: the caption of each pair
//   out items    (text)    TextSplit per split: the item id of each pair (its id from `ids`, or
//                          its 0-based row), so that evaluation can group references per item
//   value skipped          captions and items dropped under on_error: skip, all splits together
//   value uncaptioned      items left out because no caption names them, all splits together
//
// A split is a feature file (train / valid / test), its captions file (the list `captions`, one
// per split given, in the order train, valid, test) and, optionally, its id file (the list
// `ids`, likewise). Feature files: .npy ('<f4' or '<f8', C order; pipeline/core/npy.hpp) or
// .safetensors (F32; the tensor named by `tensor`, or the only one), shape (N, D) or (N, F, D);
// D is the same in every split. Captions: UTF-8 lines `item<TAB>caption`; `item` is the 0-based
// row, or with `ids` a line of the id file (one id per line, line k naming row k). Several
// captions per item are usual (5 per image in Flickr8k/30k and COCO); pairs keep the captions
// file's order. Empty lines are skipped.
// Malformed (on_error: error stops, skip drops and counts): a captions line without a tab, an
// unknown item, an empty caption (file:line); an item with NaN or Inf (file: item k: ..., with
// its captions). Always errors: a wrong rank or extension, a D that differs between splits, an
// id file whose line count is not N or with an empty or repeated id, a split left with no pair.
// Restore mode reads nothing. Not supported: prediction runs (`rnnflow translate`/`predict`
// give text lines, not features; they stop with an error), feature files of other dtypes, more
// than one feature tensor per item.
#pragma once

#include <map>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class Features final : public DataStage {
public:
    static StageSchema schema();
    explicit Features(const Params& p);
    void prepare(PrepareContext& ctx) override;
    std::int64_t value(const std::string& name) const override;

private:
    struct SplitFiles {
        std::string features, captions, ids;  // ids: "" = rows are the items
    };
    std::vector<std::pair<std::string, SplitFiles>> files_;  // (split, files), in split order
    std::string tensor_;
    bool skip_ = false;
    std::int64_t skipped_ = 0, uncaptioned_ = 0;
};

}  // namespace rnnflow::stages
