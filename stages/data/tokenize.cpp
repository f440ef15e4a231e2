#include "tokenize.hpp"

namespace rnnflow::stages {

StageSchema Tokenize::schema() {
    return StageSchema("tokenize", "splits text into characters or words", Role::data)
        .input("in", PortType::text, "text items per split")
        .output("out", PortType::tokens, "token sequences per split, one per input item")
        .param_choice("mode", "char", {"char", "word"},
                      "char: one token per UTF-8 code point; word: split at whitespace")
        .param_bool("lowercase", false, "lowercase ASCII letters first")
        .param_bool("split_punct", false, "word mode: ASCII punctuation becomes tokens of its own")
        .param_bool("keep_inner_punct", false,
                    "with split_punct: punctuation between two letters or digits stays in the word "
                    "(don't, e-mail, 3.14, 1,000)")
        .param_bool("fold_numbers", false, "every ASCII digit becomes 0 (1984 → 0000, 3.14 → 0.00)")
        .details("The tokenizer settings go with the tokens to the vocabulary, which saves them, "
                 "so prompts are tokenised like the training data.");
}

Tokenize::Tokenize(const Params& p) {
    spec_.mode = p.get_string("mode");
    spec_.lowercase = p.get_bool("lowercase");
    spec_.split_punct = p.get_bool("split_punct");
    spec_.keep_inner_punct = p.get_bool("keep_inner_punct");
    spec_.fold_numbers = p.get_bool("fold_numbers");
    if (spec_.keep_inner_punct && !spec_.split_punct)
        throw Error("keep_inner_punct needs split_punct: true", "set split_punct: true, or drop keep_inner_punct");
}

void Tokenize::prepare(PrepareContext& ctx) {
    ctx.set_output_info("out", PortInfo{PortType::tokens, -1, -1, nullptr});
    for (const auto& split : ctx.splits()) {
        if (!ctx.has_input("in", split)) continue;
        const auto& text = ctx.input<TextSplit>("in", split);
        TokenSplit out;
        out.origin = text.origin;
        out.spec = spec_;
        out.items.reserve(text.items.size());
        for (const auto& item : text.items) out.items.push_back(spec_.tokenize(item));
        ctx.put_output("out", split, std::move(out));
    }
}

}  // namespace rnnflow::stages
