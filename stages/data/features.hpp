// features: dense inputs per item — a feature vector, or a grid of region vectors — with their
// captions, for captioning (Vinyals et al. 2015, "Show and Tell"; Xu et al. 2015, "Show, Attend
// and Tell").
//
//   out features (frames)  FrameSplit per split: the item's f32 (F, D) matrix, one entry per
//                          (item, caption) pair (rows = 1 for an (N, D) file); PortInfo
//                          channels = D (restore mode: from the run's fitted state)
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
// Fit saves D and the rows per training item in RUN_DIR/state/<id>/features.tsv; restore mode
// reads only that. Prediction runs (`rnnflow caption RUN_DIR FILE...`): each input line is an
// item, `PATH#k` (item k of a feature file) or `PATH` (a file of one item: (1, D) / (D) for a
// run trained on vectors, (1, F, D) / (F, D) for grids of F regions); shapes are checked against
// training's and non-finite values refused, naming the line; split "infer" of features and items
// (the line), empty captions. Not supported: feature files of other dtypes, more than one
// feature tensor per item.
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
    // For `rnnflow caption`: the prediction-run items of a file argument, `file#k` for each of
    // its items (as the run was trained: (N, D) or (N, F, D)), or `file` itself when it names
    // one item (`file#k`, or a file holding one). state_dir: the run's RUN_DIR/state/<stage>.
    static std::vector<std::string> expand_input(const std::string& file, const std::filesystem::path& state_dir,
                                                 const std::string& tensor);

private:
    struct SplitFiles {
        std::string features, captions, ids;  // ids: "" = rows are the items
    };
    std::vector<std::pair<std::string, SplitFiles>> files_;  // (split, files), in split order
    std::string tensor_;
    bool skip_ = false;
    std::int64_t skipped_ = 0, uncaptioned_ = 0;

    void restore(PrepareContext& ctx);
    FrameSplit infer_items(const std::vector<std::string>& lines, std::int64_t dim, std::int64_t rows) const;
    static std::pair<Tensor, std::int64_t> load_item_file(const std::string& path, const std::string& tensor,
                                                          std::int64_t dim, std::int64_t rows);
};

}  // namespace rnnflow::stages
