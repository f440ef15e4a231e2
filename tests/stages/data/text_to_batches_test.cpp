// The data stages chained as a graph would chain them: text_file → tokenize → vocabulary →
// lm_batches, each output handed on as the next stage's input.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>

#include "stages/data/lm_batches.hpp"
#include "stages/data/text_file.hpp"
#include "stages/data/tokenize.hpp"
#include "stages/data/vocabulary.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using rnnflow::test::FakePrepare;
using rnnflow::test::params_for;
namespace fs = std::filesystem;

TEST_CASE("data chain: text_file → tokenize → vocabulary → lm_batches", "[stage][data]") {
    std::random_device rd;
    const fs::path dir = fs::temp_directory_path() / ("rnnflow_chain_" + std::to_string(rd()));
    fs::create_directories(dir);
    std::ofstream(dir / "train.txt", std::ios::binary) << "abab\nba\n";

    const auto s1 = stages::TextFile::schema();
    stages::TextFile reader(params_for(s1, {{"train", std::vector<std::string>{"train.txt"}}}));
    FakePrepare c1(s1);
    c1.base(dir);
    reader.prepare(c1);

    const auto s2 = stages::Tokenize::schema();
    stages::Tokenize tok(default_params(s2));
    FakePrepare c2(s2);
    c2.info("in", c1.out_info("out")).data("in", "train", c1.out<TextSplit>("out", "train"));
    tok.prepare(c2);

    const auto s3 = stages::Vocabulary::schema();
    stages::Vocabulary vocab(params_for(s3, {{"specials", std::vector<std::string>{"<eos>"}},
                                             {"append_eos", true}}));
    FakePrepare c3(s3);
    c3.info("in", c2.out_info("out")).data("in", "train", c2.out<TokenSplit>("out", "train"));
    vocab.prepare(c3);
    // a:3 b:3 → tie broken by text: <eos> 0, a 1, b 2
    REQUIRE(c3.out_info("vocab").vocab->tokens() == std::vector<std::string>{"<eos>", "a", "b"});

    const auto s4 = stages::LmBatches::schema();
    stages::LmBatches batches(params_for(s4, {{"batch", std::int64_t{1}}, {"bptt", std::int64_t{8}}}));
    FakePrepare c4(s4);
    c4.info("in", c3.out_info("out")).data("in", "train", c3.out<SequenceSplit>("out", "train"));
    batches.prepare(c4);
    REQUIRE(c4.out_info("ids").classes == 3);
    REQUIRE(batches.begin("train", 0) == 1);
    Batch b;
    REQUIRE(batches.next(b));
    // stream: a b a b <eos> b a <eos> → L = 7
    const auto* x = b.outputs[0].data<std::int32_t>();
    const auto* y = b.outputs[1].data<std::int32_t>();
    REQUIRE(std::vector<std::int32_t>(x, x + 7) == std::vector<std::int32_t>{1, 2, 1, 2, 0, 2, 1});
    REQUIRE(std::vector<std::int32_t>(y, y + 7) == std::vector<std::int32_t>{2, 1, 2, 0, 2, 1, 0});
    std::error_code ec;
    fs::remove_all(dir, ec);
}
