// Every load-time error kind: the exact first line (file:line:col and message) and its hint.
// Lines of the example graph: corpus 5, tokens 6, vocab 7, batch 8, embed 9, rnn 10, logits 11,
// loss 12, optim 13, ppl 14, train 15.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "pipeline/graph/graph.hpp"
#include "support/fake_stages.hpp"

using namespace rnnflow;
using rnnflow::test::char_lm_with;
using rnnflow::test::char_lm_yaml;
using rnnflow::test::fake;
using rnnflow::test::first_error;
using rnnflow::test::graph_errors;

namespace {
// The whole first diagnostic (message line and hint).
std::string first_diag(const std::string& text, const std::vector<std::string>& overrides = {}) {
    const auto all = graph_errors(text, overrides);
    return all.empty() ? std::string() : all.front();
}
}  // namespace

TEST_CASE("bad graph: YAML syntax error at the parser's mark", "[graph][bad]") {
    CHECK(first_error(char_lm_with("layers: 2}", "layers: 2")) ==
          "graphs/x.yaml:11:9: error: end of map flow not found");
    CHECK(graph_errors(char_lm_with("layers: 2}", "layers: 2")).size() == 1);
}

TEST_CASE("bad graph: duplicate key, with the first one's line", "[graph][bad]") {
    CHECK(first_diag(char_lm_with("layers: 2}", "layers: 2, layers: 3}")) ==
          "graphs/x.yaml:10:65: error: duplicate key 'layers'\n"
          "  hint: 'layers' is first given at line 10; remove one of them");
    CHECK(first_error(char_lm_with("  ppl: ", "  rnn: {type: lstm}\n  ppl: ")) ==
          "graphs/x.yaml:14:3: error: duplicate key 'rnn'");
}

TEST_CASE("bad graph: unknown top-level key", "[graph][bad]") {
    CHECK(first_diag(char_lm_with("seed: 7", "sed: 7")) ==
          "graphs/x.yaml:2:1: error: unknown top-level key 'sed'\n  hint: did you mean 'seed'?");
}

TEST_CASE("bad graph: unknown stage type", "[graph][bad]") {
    CHECK(first_diag(char_lm_with("type: lstm", "type: lstn")) ==
          "graphs/x.yaml:10:18: error: stage 'rnn': unknown stage type 'lstn'\n"
          "  hint: did you mean 'lstm'?");
}

TEST_CASE("bad graph: unknown key in a stage", "[graph][bad]") {
    CHECK(first_diag(char_lm_with("layers: 2", "layrs: 2")) ==
          "graphs/x.yaml:10:54: error: stage 'rnn' (lstm): unknown key 'layrs'\n"
          "  hint: did you mean 'layers'?");
}

TEST_CASE("bad graph: stage without type", "[graph][bad]") {
    CHECK(first_error(char_lm_with("{type: lstm, in: embed,", "{in: embed,")) ==
          "graphs/x.yaml:10:3: error: stage 'rnn' has no 'type'");
}

TEST_CASE("bad graph: missing required parameter", "[graph][bad]") {
    CHECK(first_diag(char_lm_with(", dim: 64", "")) ==
          "graphs/x.yaml:9:3: error: stage 'embed' (embedding): missing parameter 'dim'\n"
          "  hint: 'dim' (int) is the embedding width");
}

TEST_CASE("bad graph: parameter of the wrong type", "[graph][bad]") {
    CHECK(first_error(char_lm_with("layers: 2", "layers: 1.5")) ==
          "graphs/x.yaml:10:62: error: stage 'rnn' (lstm): 'layers' must be an integer, got 1.5");
    CHECK(first_error(char_lm_with("layers: 2", "layers: abc")) ==
          "graphs/x.yaml:10:62: error: stage 'rnn' (lstm): 'layers' must be an integer, got abc");
    CHECK(first_error(char_lm_with("lr: 2.0e-3", "lr: fast")) ==
          "graphs/x.yaml:13:44: error: stage 'optim' (adam): 'lr' must be a number, got fast");
    CHECK(first_error(char_lm_with("specials: [<unk>]", "specials: {a: b}")) ==
          "graphs/x.yaml:7:52: error: stage 'vocab' (vocabulary): 'specials' must be a list of strings, got a mapping");
    CHECK(first_error(char_lm_with("train: {", "train: {test: maybe, ")) ==
          "graphs/x.yaml:15:15: error: train: 'test' must be true or false, got 'maybe'");
}

TEST_CASE("bad graph: parameter out of range, with its doc as hint", "[graph][bad]") {
    CHECK(first_diag(char_lm_with("layers: 2", "layers: 0")) ==
          "graphs/x.yaml:10:62: error: stage 'rnn' (lstm): 'layers' must be in [1, 16], got 0\n"
          "  hint: 'layers' is the number of stacked LSTM layers");
}

TEST_CASE("bad graph: value not among the choices", "[graph][bad]") {
    CHECK(first_error(char_lm_with("mode: char", "mode: chr")) ==
          "graphs/x.yaml:6:46: error: stage 'tokens' (tokenize): 'mode' must be one of char, word, got 'chr'");
}

TEST_CASE("bad graph: input names an unknown stage", "[graph][bad]") {
    CHECK(first_diag(char_lm_with("in: batch.ids", "in: bach.ids")) ==
          "graphs/x.yaml:9:33: error: stage 'embed' (embedding): input 'in' names unknown stage 'bach'\n"
          "  hint: did you mean 'batch'?");
}

TEST_CASE("bad graph: input names an unknown port", "[graph][bad]") {
    CHECK(first_diag(char_lm_with("in: batch.ids", "in: batch.idz")) ==
          "graphs/x.yaml:9:33: error: stage 'embed' (embedding): input 'in': stage 'batch' (lm_batches) "
          "has no output 'idz'\n  hint: did you mean 'ids'?");
}

TEST_CASE("bad graph: producer with several outputs and none named out", "[graph][bad]") {
    CHECK(first_diag(char_lm_with("in: batch.ids", "in: batch")) ==
          "graphs/x.yaml:9:33: error: stage 'embed' (embedding): input 'in': stage 'batch' (lm_batches) "
          "has several outputs (ids, targets)\n  hint: name one: 'batch.ids' or 'batch.targets'");
}

TEST_CASE("bad graph: unknown variable", "[graph][bad]") {
    CHECK(first_diag(char_lm_with("${hidden}", "${hiden}")) ==
          "graphs/x.yaml:10:43: error: unknown variable 'hiden'\n  hint: did you mean 'hidden'?");
    CHECK(graph_errors(char_lm_with("${hidden}", "${hiden}")).size() == 1);  // no follow-up error
    CHECK(first_error(char_lm_with("${data}/GPL-3", "${dat}/GPL-3")) ==
          "graphs/x.yaml:5:37: error: unknown variable 'dat'");
}

TEST_CASE("bad graph: bad value reference", "[graph][bad]") {
    CHECK(first_diag(char_lm_with("vocab.size", "vocab.sise")) ==
          "graphs/x.yaml:11:44: error: stage 'logits' (linear): 'out_dim': stage 'vocab' (vocabulary) "
          "has no value 'sise'\n  hint: did you mean 'size'?");
    CHECK(first_diag(char_lm_with("vocab.size", "vocb.size")) ==
          "graphs/x.yaml:11:44: error: stage 'logits' (linear): 'out_dim' refers to unknown stage 'vocb'\n"
          "  hint: did you mean 'vocab'?");
    CHECK(graph_errors(char_lm_with("vocab.size", "vocb.size")).size() == 1);
}

TEST_CASE("bad graph: bad --set", "[graph][bad]") {
    CHECK(first_diag(char_lm_yaml(), {"rnn.hidden"}) ==
          "--set rnn.hidden: error: malformed override: expected path=value\n"
          "  hint: write e.g. --set rnn.hidden=512, --set train.epochs=2 or --set seed=3");
    CHECK(first_diag(char_lm_yaml(), {"rnm.hidden=3"}) ==
          "--set rnm.hidden=3: error: no stage 'rnm'\n  hint: did you mean 'rnn'?");
    CHECK(first_error(char_lm_yaml(), {"rnn.layers=0"}) ==
          "--set rnn.layers=0: error: stage 'rnn' (lstm): 'layers' must be in [1, 16], got 0");
    CHECK(first_error(char_lm_yaml(), {"rnn.layers=[1"}) ==
          "--set rnn.layers=[1: error: the value is not valid YAML: end of sequence flow not found");
    CHECK(first_error(char_lm_yaml(), {"rnn=3"}) ==
          "--set rnn=3: error: an override of a stage must name one key: stage.key=value");
    CHECK(first_error(char_lm_yaml(), {"seed.x=3"}) ==
          "--set seed.x=3: error: cannot set 'x': 'seed' is not a mapping");
    CHECK(first_error(char_lm_yaml(), {"rnn.hiden=3"}) ==
          "--set rnn.hiden=3: error: stage 'rnn' (lstm): unknown key 'hiden'");
    CHECK(first_error(char_lm_yaml(), {"vars.hidden=0"}) ==   // the value came from --set
          "--set vars.hidden=0: error: stage 'rnn' (lstm): 'hidden' must be in [1, 65536], got 0");
}

TEST_CASE("bad graph: bad train section", "[graph][bad]") {
    CHECK(first_diag(char_lm_with("best(ppl.valid)", "best(ppl)")) ==
          "graphs/x.yaml:15:27: error: train: 'keep' must be 'last' or 'best(<stage>.<split>)', got 'best(ppl)'\n"
          "  hint: write keep: last or keep: best(<stage>.<split>), e.g. best(ppl.valid)");
    CHECK(first_diag(char_lm_with("best(ppl.valid)", "best(ppx.valid)")) ==
          "graphs/x.yaml:15:27: error: train: 'keep' names unknown stage 'ppx'\n  hint: did you mean 'ppl'?");
    CHECK(first_error(char_lm_with("best(ppl.valid)", "best(ppl.vaild)")) ==
          "graphs/x.yaml:15:27: error: train: 'keep' names split 'vaild'; splits are train, valid, test");
    CHECK(first_diag(char_lm_with("epochs: 10", "epoch: 10")) ==
          "graphs/x.yaml:15:9: error: unknown key 'epoch' in train\n  hint: did you mean 'epochs'?");
    CHECK(first_error(char_lm_with("epochs: 10", "epochs: 0")) ==
          "graphs/x.yaml:15:17: error: train: 'epochs' must be >= 1, got 0");
    CHECK(first_error(char_lm_with("prefetch: 4", "prefetch: 0")) ==
          "graphs/x.yaml:15:82: error: train: 'prefetch' must be >= 1, got 0");
}

TEST_CASE("bad graph: no stages", "[graph][bad]") {
    CHECK(first_error("seed: 1\n") == "graphs/x.yaml:1:1: error: the graph has no 'stages:'");
    CHECK(first_error("stages: {}\n") ==
          "graphs/x.yaml:1:1: error: 'stages' must be a mapping of stage id to stage, got a mapping");
    CHECK(first_error("") == "graphs/x.yaml:1:1: error: a graph file must be a mapping with 'stages:', got nothing");
}

TEST_CASE("bad graph: every problem of a file is reported, in file order", "[graph][bad]") {
    std::string text = char_lm_with("layers: 2", "layers: 0");
    text.replace(text.find("mode: char"), 10, "mode: chr");
    text.replace(text.find("seed: 7"), 7, "sede: 7");
    text.replace(text.find("type: adam"), 10, "type: adamw");
    text.replace(text.find("epochs: 10"), 10, "epochs: -1");
    const auto all = graph_errors(text, {"rnm.hidden=3"});
    REQUIRE(all.size() == 6);
    CHECK(all[0].rfind("--set rnm.hidden=3: error: no stage 'rnm'", 0) == 0);
    CHECK(all[1].rfind("graphs/x.yaml:2:1: error: unknown top-level key 'sede'", 0) == 0);
    CHECK(all[2].rfind("graphs/x.yaml:6:46: error: stage 'tokens' (tokenize): 'mode' must be one of", 0) == 0);
    CHECK(all[3].rfind("graphs/x.yaml:10:62: error: stage 'rnn' (lstm): 'layers' must be in [1, 16], got 0", 0) == 0);
    CHECK(all[4].rfind("graphs/x.yaml:13:18: error: stage 'optim': unknown stage type 'adamw'", 0) == 0);
    CHECK(all[5].rfind("graphs/x.yaml:15:17: error: train: 'epochs' must be >= 1, got -1", 0) == 0);
    try {
        load_graph_text(text, "graphs/x.yaml", "graphs", {}, fake());
        FAIL("expected a LoadError");
    } catch (const LoadError& e) {
        CHECK(e.diagnostics().size() == 5);
        CHECK(e.format().find("\n  hint: 'layers' is the number of stacked LSTM layers\n") != std::string::npos);
    }
}

// tests/bad_inputs/graph_*.yaml: line 1 is "# expect: <first line, the file written as FILE>";
// optional "# set: path=value" lines give --set overrides.
TEST_CASE("bad graph files: each gives its expected first line", "[graph][bad]") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::path(RNNFLOW_SOURCE_DIR) / "tests" / "bad_inputs";
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        if (name.rfind("graph_", 0) == 0 && e.path().extension() == ".yaml") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    REQUIRE(files.size() >= 20);
    for (const auto& file : files) {
        INFO(file.string());
        std::ifstream in(file);
        std::string line, expect;
        std::vector<std::string> overrides;
        while (std::getline(in, line) && line.rfind("# ", 0) == 0) {
            if (line.rfind("# expect: ", 0) == 0) expect = line.substr(10);
            if (line.rfind("# set: ", 0) == 0) overrides.push_back(line.substr(7));
        }
        REQUIRE(!expect.empty());
        for (auto at = expect.find("FILE"); at != std::string::npos; at = expect.find("FILE", at))
            expect.replace(at, 4, file.string());
        std::string got;
        try {
            compile(load_graph(file, overrides, fake()), fake());
        } catch (const LoadError& e) {
            got = e.format().substr(0, e.format().find('\n'));
        }
        CHECK(got == expect);
    }
}
