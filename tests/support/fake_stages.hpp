// A registry of schemas shaped like the char-LM stages, for graph loading tests. Only schemas
// matter to the loader and compiler: the factories return nullptr.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pipeline/core/registry.hpp"
#include "pipeline/graph/graph.hpp"

namespace rnnflow::test {

inline Registry fake_registry() {
    // Ranges of "no upper bound" parameters use 1e9.
    Registry r;
    auto none = [](const Params&) -> std::unique_ptr<Stage> { return nullptr; };
    r.add(StageSchema("text_file", "reads text files", Role::data)
              .output("out", PortType::text, "lines or files per split")
              .param_list("train", {}, "training files")
              .param_string("valid", "", "validation file")
              .param_string("test", "", "test file")
              .param_choice("by", "line", {"line", "file"}, "one record per line or per file")
              .param_float("valid_fraction", 0.0, Range{0.0, 0.5}, "share of train held out"),
          none);
    r.add(StageSchema("tokenize", "splits text into tokens", Role::data)
              .input("in", PortType::text, "text")
              .output("out", PortType::tokens, "tokens")
              .param_choice("mode", "char", {"char", "word"}, "characters or words"),
          none);
    r.add(StageSchema("vocabulary", "maps tokens to ids", Role::data)
              .input("in", PortType::tokens, "tokens")
              .output("out", PortType::sequences, "id sequences")
              .output("vocab", PortType::vocab, "the vocabulary")
              .param_int("min_count", 1, Range{1, 1e9}, "the fewest occurrences a token needs")
              .param_list("specials", {}, "tokens added first")
              .value("size", "number of ids"),
          none);
    r.add(StageSchema("lm_batches", "language-model batches", Role::source)
              .input("in", PortType::sequences, "id sequences")
              .output("ids", PortType::ids, "inputs")
              .output("targets", PortType::ids, "next ids")
              .param_int("batch", 32, Range{1, 4096}, "sequences per batch")
              .param_int("bptt", 64, Range{1, 100000}, "time steps per batch"),
          none);
    r.add(StageSchema("embedding", "ids to vectors", Role::model)
              .input("in", PortType::ids, "ids")
              .output("out", PortType::tensor, "vectors")
              .required_int("dim", Range{1, 65536}, "the embedding width")
              .differentiable(),
          none);
    r.add(StageSchema("lstm", "long short-term memory", Role::model)
              .input("in", PortType::tensor, "inputs")
              .output("out", PortType::tensor, "hidden states")
              .param_int("hidden", 256, Range{1, 65536}, "the hidden width")
              .param_int("layers", 1, Range{1, 16}, "the number of stacked LSTM layers")
              .param_float("dropout", 0.0, Range{0.0, 0.99}, "dropout between layers")
              .differentiable(),
          none);
    r.add(StageSchema("linear", "affine projection", Role::model)
              .input("in", PortType::tensor, "inputs")
              .output("out", PortType::tensor, "outputs")
              .required_int("out_dim", Range{1, 1e9}, "the output width")
              .allow_ref()
              .differentiable(),
          none);
    r.add(StageSchema("cross_entropy", "softmax cross-entropy", Role::model)
              .input("logits", PortType::tensor, "scores")
              .input("target", PortType::ids, "gold ids")
              .output("loss", PortType::loss, "summed loss and count")
              .differentiable(),
          none);
    r.add(StageSchema("adam", "Adam optimiser", Role::optimizer)
              .input("minimize", PortType::loss, "the objective")
              .param_float("lr", 1e-3, Range{0.0, 10.0}, "the learning rate")
              .param_float("clip_norm", 0.0, Range{0.0, 1e9}, "gradient norm clip; 0: none"),
          none);
    r.add(StageSchema("perplexity", "exp of the mean loss", Role::metric)
              .input("loss", PortType::loss, "the loss"),
          none);
    return r;
}

// The example graph of the graph-file documentation (stage lines 5..14: corpus on 5, rnn on 10, loss on 12).
inline const char* char_lm_yaml() {
    return R"(experiment: char-lm
seed: 7
vars: {hidden: 256, data: /usr/share/common-licenses}
stages:
  corpus: {type: text_file, train: ["${data}/GPL-3"], valid_fraction: 0.1, by: file}
  tokens: {type: tokenize, in: corpus, mode: char}
  vocab:  {type: vocabulary, in: tokens, specials: [<unk>]}
  batch:  {type: lm_batches, in: vocab, batch: 32, bptt: 64}
  embed:  {type: embedding, in: batch.ids, dim: 64}
  rnn:    {type: lstm, in: embed, hidden: ${hidden}, layers: 2}
  logits: {type: linear, in: rnn, out_dim: vocab.size}
  loss:   {type: cross_entropy, logits: logits, target: batch.targets}
  optim:  {type: adam, minimize: loss, lr: 2.0e-3, clip_norm: 5}
  ppl:    {type: perplexity, loss: loss}
train: {epochs: 10, keep: best(ppl.valid), threads: 2, max_batches: 0, prefetch: 4, log_every: 0, test: true, sample_length: 0}
)";
}

inline const Registry& fake() {
    static const Registry r = fake_registry();
    return r;
}

// Load (and compile) text named "graphs/x.yaml"; every diagnostic as formatted, or none.
inline std::vector<std::string> graph_errors(const std::string& text,
                                             const std::vector<std::string>& overrides = {}) {
    try {
        compile(load_graph_text(text, "graphs/x.yaml", "graphs", overrides, fake()), fake());
    } catch (const LoadError& e) {
        std::vector<std::string> out;
        for (const auto& d : e.diagnostics()) out.push_back(d.format());
        return out;
    }
    return {};
}

// The first line of the first diagnostic, or "" when the graph is fine.
inline std::string first_error(const std::string& text, const std::vector<std::string>& overrides = {}) {
    const auto all = graph_errors(text, overrides);
    if (all.empty()) return {};
    return all.front().substr(0, all.front().find('\n'));
}

// The example graph with the first occurrence of `from` replaced by `to`.
inline std::string char_lm_with(const std::string& from, const std::string& to) {
    std::string s = char_lm_yaml();
    const auto at = s.find(from);
    if (at == std::string::npos) return "(char_lm_with: '" + from + "' not found)";
    return s.replace(at, from.size(), to);
}

}  // namespace rnnflow::test
