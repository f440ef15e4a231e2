#include "subword.hpp"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <fstream>
#include <iterator>

namespace rnnflow::stages {

namespace fs = std::filesystem;

StageSchema Subword::schema() {
    return StageSchema("subword", "subword pieces from a SentencePiece model (BPE or unigram) trained on train",
                       Role::data)
        .input("in", PortType::text, "text items per split")
        .output("out", PortType::tokens, "subword pieces per item ('▁' marks a word start)")
        .param_choice("model", "unigram", {"unigram", "bpe"}, "SentencePiece model type")
        .param_int("vocab_size", 8000, Range{8, 1e6}, "pieces in the model (at most, on small data)")
        .param_float("character_coverage", 1.0, Range{0.5, 1.0},
                     "share of the training characters the model covers; rarer ones become <unk>")
        .value("size", "pieces in the trained model")
        .details("Trained on the training split in memory, saved as subword.model in the stage's "
                 "state folder and loaded from there in restore and evaluate modes. Pieces go to a "
                 "vocabulary stage for ids.");
}

Subword::Subword(const Params& p)
    : model_type_(p.get_string("model")), vocab_size_(p.get_int("vocab_size")),
      coverage_(p.get_float("character_coverage")) {}

Subword::~Subword() = default;

namespace {

class Items final : public sentencepiece::SentenceIterator {
public:
    explicit Items(const std::vector<std::string>& items) : items_(items) { skip(); }
    bool done() const override { return i_ >= items_.size(); }
    void Next() override {
        ++i_;
        skip();
    }
    const std::string& value() const override { return items_[i_]; }
    sentencepiece::util::Status status() const override { return {}; }

private:
    void skip() {
        while (i_ < items_.size() && items_[i_].find_first_not_of(" \t\r\n") == std::string::npos) ++i_;
    }
    const std::vector<std::string>& items_;
    std::size_t i_ = 0;
};

}  // namespace

void Subword::prepare(PrepareContext& ctx) {
    ctx.set_output_info("out", PortInfo{PortType::tokens, -1, -1, nullptr});
    const fs::path dir = ctx.state_dir();
    sp_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
    if (ctx.mode() == PrepareMode::fit) {
        if (!ctx.has_input("in", "train"))
            throw Error("no training split to train the subword model on", "connect a reader that gives a train split");
        const auto& train = ctx.input<TextSplit>("in", "train");
        Items it(train.items);
        if (it.done())
            throw Error(detail::concat("no text in the training split (", train.origin, ")"), "check the training data");
        const std::unordered_map<std::string, std::string> args{
            {"model_type", model_type_},
            {"vocab_size", std::to_string(vocab_size_)},
            {"character_coverage", std::to_string(coverage_)},
            {"hard_vocab_limit", "false"},
            {"num_threads", std::to_string(std::max(1, ctx.threads()))},
            {"minloglevel", "2"},  // the trainer's progress lines would flood the run's log
        };
        std::string model;
        const auto st = sentencepiece::SentencePieceTrainer::Train(args, &it, &model);
        if (!st.ok())
            throw Error("SentencePiece could not train the " + model_type_ + " model: " + st.ToString(),
                        "lower vocab_size, or give more training text");
        if (!dir.empty()) write_file_atomic(dir / "subword.model", model);
        const auto ls = sp_->LoadFromSerializedProto(model);
        RNNFLOW_CHECK(ls.ok(), "SentencePiece could not load the model it trained: ", ls.ToString());
    } else {
        if (dir.empty()) throw Error("restore mode needs a state folder to load subword.model from", "restore from a run folder");
        const fs::path file = dir / "subword.model";
        if (!fs::exists(file))
            throw Error(detail::concat("no saved subword model at '", file.string(), "'"),
                        "restore from the run folder that trained this graph");
        const auto ls = sp_->Load(file.string());
        if (!ls.ok()) throw Error(file.string() + ": not a SentencePiece model: " + ls.ToString(), "the file is damaged; train again");
    }

    for (const auto& split : ctx.splits()) {
        if (!ctx.has_input("in", split)) continue;
        const auto& text = ctx.input<TextSplit>("in", split);
        TokenSplit out;
        out.origin = text.origin;
        out.spec.mode = "word";
        out.items.reserve(text.items.size());
        for (const auto& item : text.items) {
            std::vector<std::string> pieces;
            const auto st = sp_->Encode(item, &pieces);
            RNNFLOW_CHECK(st.ok(), "SentencePiece could not encode an item of split '", split, "': ", st.ToString());
            out.items.push_back(std::move(pieces));
        }
        ctx.put_output("out", split, std::move(out));
    }
}

std::int64_t Subword::value(const std::string& name) const {
    if (name != "size") return Stage::value(name);
    RNNFLOW_CHECK(sp_ != nullptr, "subword size is known only after prepare");
    return sp_->GetPieceSize();
}

}  // namespace rnnflow::stages
