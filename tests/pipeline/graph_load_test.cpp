#include <catch2/catch.hpp>

#include "pipeline/graph/graph.hpp"
#include "support/fake_stages.hpp"

using namespace rnnflow;
using rnnflow::test::char_lm_with;
using rnnflow::test::char_lm_yaml;
using rnnflow::test::fake;

namespace {
GraphDef load(const std::string& text, const std::vector<std::string>& overrides = {}) {
    return load_graph_text(text, "graphs/x.yaml", "graphs", overrides, fake());
}
}  // namespace

TEST_CASE("graph load: the example graph loads with typed parameters and defaults", "[graph]") {
    const GraphDef g = load(char_lm_yaml());
    CHECK(g.file == "graphs/x.yaml");
    CHECK(g.experiment == "char-lm");
    CHECK(g.seed == 7);
    REQUIRE(g.stages.size() == 10);
    CHECK(g.index("corpus") == 0);
    CHECK(g.index("ppl") == 9);
    CHECK(g.index("nope") == -1);
    CHECK(g.find("nope") == nullptr);

    const StageDef& rnn = *g.find("rnn");
    CHECK(rnn.type == "lstm");
    CHECK(rnn.loc.str() == "graphs/x.yaml:10:3");
    CHECK(rnn.params.get_int("hidden") == 256);               // from ${hidden}, an int
    CHECK(rnn.params.get_int("layers") == 2);
    CHECK(rnn.params.loc("layers").str() == "graphs/x.yaml:10:62");
    CHECK(rnn.params.get_float("dropout") == 0.0);            // default
    CHECK_FALSE(rnn.params.loc("dropout").known());
    REQUIRE(rnn.inputs.count("in") == 1);
    CHECK(rnn.inputs.at("in").stage == "embed");
    CHECK(rnn.inputs.at("in").port == "out");                 // the only output

    const StageDef& corpus = *g.find("corpus");
    CHECK(corpus.params.get_list("train") ==
          std::vector<std::string>{"/usr/share/common-licenses/GPL-3"});  // interpolated
    CHECK(corpus.params.get_float("valid_fraction") == Approx(0.1));
    CHECK(corpus.params.get_string("by") == "file");
    CHECK(corpus.params.get_string("valid") == "");

    CHECK(g.find("tokens")->inputs.at("in").port == "out");
    CHECK(g.find("batch")->inputs.at("in").port == "out");   // several outputs: "out"
    CHECK(g.find("embed")->inputs.at("in").port == "ids");
    CHECK(g.find("loss")->inputs.at("target").port == "targets");
    CHECK(g.find("vocab")->params.get_list("specials") == std::vector<std::string>{"<unk>"});
    CHECK(g.find("optim")->params.get_float("clip_norm") == 5.0);  // an int for a float param
    CHECK(std::holds_alternative<double>(g.find("optim")->params.get("clip_norm")));

    const StageDef& logits = *g.find("logits");
    REQUIRE(logits.refs.count("out_dim") == 1);
    CHECK(logits.refs.at("out_dim").stage == "vocab");
    CHECK(logits.refs.at("out_dim").value == "size");
    CHECK(logits.refs.at("out_dim").loc.str() == "graphs/x.yaml:11:44");

    CHECK(g.train.epochs == 10);
    CHECK(g.train.keep_metric == "ppl");
    CHECK(g.train.keep_split == "valid");
    CHECK(g.train.threads == 2);
    CHECK(g.train.prefetch == 4);
    CHECK(g.train.test);
}

TEST_CASE("graph load: experiment defaults to the file stem; plugins resolve from its folder", "[graph]") {
    const GraphDef g = load_graph_text("plugins: [../p/libhighway.so, /abs/x.so]\n"
                                       "stages: {c: {type: text_file}}\n",
                                       "graphs/my_exp.yaml", "/repo/graphs", {}, fake());
    CHECK(g.experiment == "my_exp");
    CHECK(g.plugins == std::vector<std::string>{"/repo/p/libhighway.so", "/abs/x.so"});
    CHECK(g.train.epochs == 1);
    CHECK(g.train.keep_metric.empty());
}

TEST_CASE("graph load: a plug-in name stays a name; paths become absolute in resolved.yaml", "[graph][plugin]") {
    const GraphDef g = load_graph_text("plugins: [highway, ../p/libx.so]\n"
                                       "stages: {c: {type: text_file}}\n",
                                       "graphs/my_exp.yaml", "/repo/graphs", {}, fake());
    CHECK(g.plugins == std::vector<std::string>{"highway", "/repo/p/libx.so"});
    CHECK_THAT(g.resolved_yaml, Catch::Contains("plugins: [highway, /repo/p/libx.so]"));
}

TEST_CASE("graph load: train.keep forms", "[graph]") {
    CHECK(load(char_lm_with("best(ppl.valid)", "last")).train.keep_metric.empty());
    const GraphDef g = load(char_lm_with("best(ppl.valid)", "best(ppl.bits.test)"));
    CHECK(g.train.keep_metric == "ppl.bits");
    CHECK(g.train.keep_split == "test");
}

TEST_CASE("graph load: vars keep their type, interpolate in text, may use earlier vars", "[graph]") {
    const GraphDef g = load(R"(vars: {n: 3, dir: data, files: [a.txt, b.txt], path: "${dir}/c.txt"}
stages:
  a: {type: text_file, train: ${files}, valid: "${dir}/v.txt", test: ${path}}
  b: {type: tokenize, in: a}
  c: {type: vocabulary, in: b, min_count: ${n}}
)");
    CHECK(g.find("a")->params.get_list("train") == std::vector<std::string>{"a.txt", "b.txt"});
    CHECK(g.find("a")->params.get_string("valid") == "data/v.txt");
    CHECK(g.find("a")->params.get_string("test") == "data/c.txt");
    CHECK(g.find("c")->params.get_int("min_count") == 3);
    CHECK(g.find("c")->params.loc("min_count").str() == "graphs/x.yaml:5:43");  // where it is used
}

TEST_CASE("graph load: --set on a stage, vars, train, seed and experiment", "[graph]") {
    const GraphDef g = load(char_lm_yaml(), {"rnn.layers=3", "vars.hidden=512", "train.epochs=2",
                                             "seed=3", "experiment=x2", "corpus.train=[a, b]",
                                             "stages.tokens.mode=word", "rnn.dropout=0.5"});
    CHECK(g.find("rnn")->params.get_int("layers") == 3);
    CHECK(g.find("rnn")->params.loc("layers").str() == "--set rnn.layers=3");
    CHECK(g.find("rnn")->params.get_int("hidden") == 512);  // applied before substitution
    CHECK(g.find("rnn")->params.get_float("dropout") == Approx(0.5));
    CHECK(g.find("corpus")->params.get_list("train") == std::vector<std::string>{"a", "b"});
    CHECK(g.find("tokens")->params.get_string("mode") == "word");
    CHECK(g.train.epochs == 2);
    CHECK(g.seed == 3);
    CHECK(g.experiment == "x2");
}

TEST_CASE("graph load: --set may rewire and adds a missing train section", "[graph]") {
    const GraphDef g = load("stages:\n  a: {type: text_file}\n  b: {type: tokenize, in: a}\n"
                            "  c: {type: text_file}\n",
                            {"b.in=c", "train.epochs=4", "train.keep=last"});
    CHECK(g.find("b")->inputs.at("in").stage == "c");
    CHECK(g.train.epochs == 4);
}

TEST_CASE("graph load: the resolved YAML loads to the same graph", "[graph]") {
    const GraphDef g = load(char_lm_yaml(), {"vars.hidden=128", "rnn.layers=4"});
    INFO(g.resolved_yaml);
    CHECK(g.resolved_yaml.find("${") == std::string::npos);
    const GraphDef r = load(g.resolved_yaml);
    CHECK(r.experiment == g.experiment);
    CHECK(r.seed == g.seed);
    REQUIRE(r.stages.size() == g.stages.size());
    for (std::size_t i = 0; i < g.stages.size(); ++i) {
        CHECK(r.stages[i].id == g.stages[i].id);
        CHECK(r.stages[i].type == g.stages[i].type);
        CHECK(r.stages[i].params.all() == g.stages[i].params.all());
        CHECK(r.stages[i].inputs.size() == g.stages[i].inputs.size());
        CHECK(r.stages[i].refs.size() == g.stages[i].refs.size());
    }
    CHECK(r.find("rnn")->params.get_int("hidden") == 128);
    CHECK(r.find("rnn")->params.get_int("layers") == 4);
    CHECK(r.train.keep_metric == "ppl");
    CHECK(r.train.epochs == 10);
    CHECK(r.resolved_yaml == g.resolved_yaml);
}

TEST_CASE("graph load: a quoted string stays a string in the resolved YAML", "[graph]") {
    const GraphDef g = load("stages: {a: {type: text_file, valid: \"true\", train: \"x: y\"}}\n");
    CHECK(g.find("a")->params.get_string("valid") == "true");
    const GraphDef r = load(g.resolved_yaml);
    CHECK(r.find("a")->params.get_string("valid") == "true");
    CHECK(r.find("a")->params.get_list("train") == std::vector<std::string>{"x: y"});
}

TEST_CASE("graph load: load_graph reads a file and names it as given", "[graph]") {
    const std::string path = std::string(RNNFLOW_SOURCE_DIR) + "/tests/bad_inputs/graph_unknown_type.yaml";
    try {
        load_graph(path, {}, fake());
        FAIL("expected a LoadError");
    } catch (const LoadError& e) {
        CHECK(e.diagnostics().front().loc.file == path);
    }
    try {
        load_graph("/nonexistent/g.yaml", {}, fake());
        FAIL("expected a LoadError");
    } catch (const LoadError& e) {
        CHECK(e.format() == "/nonexistent/g.yaml: error: cannot read the graph file\n  hint: check the path");
    }
}
