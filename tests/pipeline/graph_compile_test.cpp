#include <catch2/catch.hpp>

#include "pipeline/graph/graph.hpp"
#include "support/fake_stages.hpp"

using namespace rnnflow;
using rnnflow::test::char_lm_yaml;
using rnnflow::test::fake;

namespace {
CompiledGraph build(const std::string& text) {
    return compile(load_graph_text(text, "graphs/x.yaml", "graphs", {}, fake()), fake());
}
}  // namespace

TEST_CASE("graph compile: the example graph's connections, order and upstream", "[graph]") {
    const CompiledGraph g = build(char_lm_yaml());
    const GraphDef& d = g.def;
    REQUIRE(g.types.size() == 10);
    CHECK(g.types[static_cast<std::size_t>(d.index("rnn"))]->schema.type() == "lstm");
    CHECK(g.order == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(g.connections.size() == 10);  // every input of every stage

    const int loss = d.index("loss"), batch = d.index("batch"), logits = d.index("logits");
    const int target = g.types[static_cast<std::size_t>(loss)]->schema.input_index("target");
    const int c = g.input_conn[static_cast<std::size_t>(loss)][static_cast<std::size_t>(target)];
    REQUIRE(c >= 0);
    const Connection& conn = g.connections[static_cast<std::size_t>(c)];
    CHECK(conn.from_stage == batch);
    CHECK(conn.from_port == 1);  // targets
    CHECK(conn.to_stage == loss);
    CHECK(conn.to_port == target);

    // batch.ids feeds embed; batch.targets feeds loss
    CHECK(g.output_conns[static_cast<std::size_t>(batch)][0].size() == 1);
    CHECK(g.output_conns[static_cast<std::size_t>(batch)][1] == std::vector<int>{c});
    // the loss feeds the optimiser and the metric, in file order
    const auto& loss_out = g.output_conns[static_cast<std::size_t>(loss)][0];
    REQUIRE(loss_out.size() == 2);
    CHECK(g.connections[static_cast<std::size_t>(loss_out[0])].to_stage == d.index("optim"));
    CHECK(g.connections[static_cast<std::size_t>(loss_out[1])].to_stage == d.index("ppl"));

    // logits depends on rnn by port and on vocab by value reference
    CHECK(g.upstream[static_cast<std::size_t>(logits)] == std::vector<int>{d.index("vocab"), d.index("rnn")});
    CHECK(g.upstream[static_cast<std::size_t>(loss)] == std::vector<int>{batch, logits});
    CHECK(g.upstream[0].empty());
}

TEST_CASE("graph compile: order puts producers first and keeps file order otherwise", "[graph]") {
    const CompiledGraph g = build("stages:\n"
                                  "  b: {type: tokenize, in: a}\n"
                                  "  c: {type: text_file}\n"
                                  "  a: {type: text_file}\n"
                                  "  d: {type: tokenize, in: c}\n");
    CHECK(g.order == std::vector<int>{1, 2, 0, 3});
}

TEST_CASE("graph compile: an optional input may stay unconnected", "[graph]") {
    Registry r;
    r.add(StageSchema("src", "", Role::data).output("out", PortType::text, ""), nullptr);
    r.add(StageSchema("sink", "", Role::data)
              .input("in", PortType::text, "")
              .optional_input("extra", PortType::text, ""),
          nullptr);
    const CompiledGraph g = compile(
        load_graph_text("stages: {s: {type: src}, t: {type: sink, in: s}}", "g.yaml", ".", {}, r), r);
    CHECK(g.input_conn[1] == std::vector<int>{0, -1});
}

TEST_CASE("graph compile: to_dot draws every stage, connection and value reference", "[graph]") {
    const std::string dot = to_dot(build(char_lm_yaml()));
    INFO(dot);
    CHECK(dot.rfind("digraph \"char-lm\" {", 0) == 0);
    CHECK(dot.find("\"rnn\" [label=\"rnn\\nlstm\"];") != std::string::npos);
    CHECK(dot.find("\"batch\" -> \"loss\" [label=\"targets -> target\\nids\"];") != std::string::npos);
    CHECK(dot.find("\"embed\" -> \"rnn\" [label=\"out -> in\\ntensor\"];") != std::string::npos);
    CHECK(dot.find("\"vocab\" -> \"logits\" [style=dashed, label=\"size -> out_dim\"];") != std::string::npos);
    CHECK(dot.substr(dot.size() - 2) == "}\n");
    std::size_t arrows = 0;
    for (auto p = dot.find(" -> \""); p != std::string::npos; p = dot.find(" -> \"", p + 1)) ++arrows;
    CHECK(arrows == 11);  // 10 connections + 1 reference
}

TEST_CASE("graph compile: names that need quoting are quoted in DOT", "[graph]") {
    const std::string dot = to_dot(build("experiment: 'my \"exp\"'\nstages: {a: {type: text_file}}\n"));
    CHECK(dot.rfind("digraph \"my \\\"exp\\\"\" {", 0) == 0);
}

TEST_CASE("bad graph: type mismatch suggests an output of the right type", "[graph][bad]") {
    CHECK(rnnflow::test::graph_errors(rnnflow::test::char_lm_with("target: batch.targets", "target: embed")).front() ==
          "graphs/x.yaml:12:57: error: stage 'loss' (cross_entropy): input 'target' expects ids, 'embed' gives tensor\n"
          "  hint: did you mean 'batch.targets'?");
    CHECK(rnnflow::test::first_error(rnnflow::test::char_lm_with("in: rnn,", "in: vocab.vocab,")) ==
          "graphs/x.yaml:11:30: error: stage 'logits' (linear): input 'in' expects tensor, 'vocab.vocab' gives vocab");
}

TEST_CASE("bad graph: required input not connected", "[graph][bad]") {
    CHECK(rnnflow::test::graph_errors(rnnflow::test::char_lm_with(", target: batch.targets", "")).front() ==
          "graphs/x.yaml:12:3: error: stage 'loss' (cross_entropy): input 'target' (ids) is not connected\n"
          "  hint: add target: batch.targets");
}

TEST_CASE("bad graph: a cycle is named with its path", "[graph][bad]") {
    const auto all = rnnflow::test::graph_errors("stages:\n"
                                                 "  src: {type: text_file}\n"
                                                 "  a: {type: lstm, in: c}\n"
                                                 "  b: {type: lstm, in: a}\n"
                                                 "  c: {type: lstm, in: b}\n"
                                                 "  self: {type: lstm, in: self}\n");
    REQUIRE(all.size() == 2);
    CHECK(all[0] == "graphs/x.yaml:3:23: error: stages form a cycle: a -> b -> c -> a\n"
                    "  hint: a stage cannot depend on its own output; remove one of these connections");
    CHECK(all[1].rfind("graphs/x.yaml:6:26: error: stages form a cycle: self -> self\n", 0) == 0);
}
