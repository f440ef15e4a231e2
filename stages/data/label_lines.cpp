#include "label_lines.hpp"

#include "reader_common.hpp"

namespace rnnflow::stages {

StageSchema LabelLines::schema() {
    StageSchema s("label_lines", "reads a text file and a label file, one label per line", Role::data);
    s.output("text", PortType::text, "the text file's lines")
        .output("labels", PortType::tokens, "the label file's lines, one token per item");
    reader::add_split_params(s, "text file");
    s.param_string("train_labels", "", "labels of the training text, one per line")
        .param_string("valid_labels", "", "labels of the validation text (needed when valid is set)")
        .param_string("test_labels", "", "labels of the test text (needed when test is set)")
        .value("skipped", "pairs dropped as malformed (on_error: skip)")
        .details("Line k of the text file goes with line k of its label file; the files must have "
                 "as many lines. An empty label or one with whitespace inside is malformed "
                 "(labels-file:line). In prediction runs each input line is a text item.");
    return s;
}

LabelLines::LabelLines(const Params& p) : params_(p) {
    for (const std::string split : {"train", "valid", "test"}) {
        const bool text = !p.get_string(split).empty(), labels = !p.get_string(split + "_labels").empty();
        if (text != labels)
            throw Error(text ? split + " is set but " + split + "_labels is not"
                             : split + "_labels is set but " + split + " is not",
                        "give each text file its label file");
    }
}

void LabelLines::prepare(PrepareContext& ctx) {
    ctx.set_output_info("text", PortInfo{PortType::text, -1, -1, nullptr});
    ctx.set_output_info("labels", PortInfo{PortType::tokens, -1, -1, nullptr});
    skipped_ = 0;
    if (const auto* lines = ctx.infer_lines()) {
        ctx.put_output("text", "infer", TextSplit{*lines, "input lines"});
        return;
    }
    if (ctx.mode() == PrepareMode::restore) return;
    const reader::SplitFiles files(params_);
    if (files.files.empty() || files.files.front().first != "train")
        throw Error("no training file", "set train: path/to/train.txt and train_labels: path/to/train.labels");

    for (const auto& [split, file] : files.files) {
        const std::string& label_file = params_.get_string(split + "_labels");
        const auto lines = split_lines(read_text_file(ctx.base_dir(), file, split));
        const auto label_lines = split_lines(read_text_file(ctx.base_dir(), label_file, split + " labels"));
        if (lines.size() != label_lines.size())
            throw Error(detail::concat("'", file, "' has ", lines.size(), " lines but '", label_file, "' has ",
                                       label_lines.size()),
                        "each text line needs one label line");
        reader::BadLines bad(files.skip, label_file);
        TextSplit text;
        TokenSplit labels;
        text.origin = file;
        labels.origin = label_file;
        labels.spec.mode = "word";
        for (std::size_t i = 0; i < lines.size(); ++i) {
            std::string label = label_lines[i];
            const auto b = label.find_first_not_of(" \t"), e = label.find_last_not_of(" \t");
            label = b == std::string::npos ? std::string() : label.substr(b, e - b + 1);
            const auto lineno = static_cast<std::int64_t>(i + 1);
            if (label.empty()) {
                bad.bad(lineno, "empty label", "");
                continue;
            }
            if (label.find_first_of(" \t") != std::string::npos) {
                bad.bad(lineno, "label '" + label + "' holds whitespace (one label per line)", "");
                continue;
            }
            text.items.push_back(lines[i]);
            labels.items.push_back({std::move(label)});
        }
        bad.report(ctx.stage_id(), "lines");
        skipped_ += bad.count();
        if (text.items.empty())
            throw Error(detail::concat(split, " file '", file, "' has no lines"), "check the file");
        ctx.put_output("text", split, std::move(text));
        ctx.put_output("labels", split, std::move(labels));
    }
}

std::int64_t LabelLines::value(const std::string& name) const {
    if (name == "skipped") return skipped_;
    return Stage::value(name);
}

}  // namespace rnnflow::stages
