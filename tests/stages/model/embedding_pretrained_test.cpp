// embedding with pretrained: GloVe and word2vec text files written here, coverage, freezing and
// the errors for malformed files.
#include <catch2/catch.hpp>

#include "../data/cls_support.hpp"
#include "stages/model/embedding.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::Embedding;
using Set = std::map<std::string, ParamValue>;

namespace {

// <pad> <unk> the Cat dog zebra: counts 0 0 5 3 2 1.
std::shared_ptr<const rnnflow::Vocabulary> vocab() {
    return std::make_shared<const rnnflow::Vocabulary>(
        std::vector<std::string>{"<pad>", "<unk>", "the", "Cat", "dog", "zebra"},
        std::vector<std::int64_t>{0, 0, 5, 3, 2, 1}, std::vector<std::string>{"<pad>", "<unk>"}, TokenizerSpec{});
}

struct Run {
    StageSchema schema = Embedding::schema();
    Embedding stage;
    Run(const ClsTempDir& d, Set set, PrepareMode mode = PrepareMode::fit) : stage(params_for(schema, set)) {
        FakePrepare ctx(schema, 3, mode);
        ctx.base(d.path);
        ctx.info("in", PortInfo{PortType::ids, -1, 6, vocab()});
        stage.prepare(ctx);
    }
    std::vector<float> row(std::int64_t v) const {
        const Param& w = const_cast<Embedding&>(stage).params()[0];
        const float* p = w.value.data<float>() + v * w.value.dim(1);
        return {p, p + w.value.dim(1)};
    }
};

std::string message_of(const ClsTempDir& d, const Set& set) {
    try {
        Run r(d, set);
    } catch (const Error& e) {
        return e.message();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("embedding: pretrained GloVe rows, lowercase fallback, unknown rows initialised", "[stage][embedding][pretrained]") {
    ClsTempDir d;
    d.write("glove.txt",
            "the 0.5 -1 2\n"
            "cat 1e-1 0.25 3\n"     // "Cat" by lowercase
            "Cat 7 7 7\n"           // an exact row wins over the lowercase one, wherever it is
            "ignored 9 9 9\n"
            "\n");
    Run r(d, {{"dim", std::int64_t{3}}, {"pretrained", std::string("glove.txt")}, {"init_scale", 0.01}});
    REQUIRE(r.row(2) == std::vector<float>{0.5f, -1.f, 2.f});
    REQUIRE(r.row(3) == std::vector<float>{7.f, 7.f, 7.f});
    for (std::int64_t v : {0, 1, 4, 5})  // specials and tokens without vectors: uniform in ±init_scale
        for (float x : r.row(v)) REQUIRE(std::abs(x) <= 0.01f);
    REQUIRE(const_cast<Embedding&>(r.stage).params()[0].trainable);

    d.write("lower.txt", "cat 1e-1 0.25 3\nDOG 1 2 3\n");
    Run l(d, {{"dim", std::int64_t{3}}, {"pretrained", std::string("lower.txt")}});
    REQUIRE(l.row(3) == std::vector<float>{0.1f, 0.25f, 3.f});
    for (float x : l.row(4)) REQUIRE(std::abs(x) <= 0.1f);  // "DOG" does not lowercase to a file row for "dog"
}

TEST_CASE("embedding: word2vec header, freeze, restore skips the file", "[stage][embedding][pretrained]") {
    ClsTempDir d;
    d.write("w2v.txt", "2 2\nzebra 1 2\ndog 3 4\n");
    Run r(d, {{"dim", std::int64_t{2}}, {"pretrained", std::string("w2v.txt")}, {"freeze", true}});
    REQUIRE(r.row(5) == std::vector<float>{1.f, 2.f});
    REQUIRE(r.row(4) == std::vector<float>{3.f, 4.f});
    REQUIRE_FALSE(const_cast<Embedding&>(r.stage).params()[0].trainable);
    // A restored run takes its weights from the checkpoint: a missing file is no error there.
    Run restored(d, {{"dim", std::int64_t{2}}, {"pretrained", std::string("gone.txt")}, {"freeze", true}},
                 PrepareMode::restore);
    REQUIRE_FALSE(const_cast<Embedding&>(restored.stage).params()[0].trainable);
}

TEST_CASE("embedding: malformed vector files name file:line", "[stage][embedding][pretrained]") {
    ClsTempDir d;
    d.write("dim.txt", "the 1 2 3\n");
    REQUIRE(message_of(d, {{"dim", std::int64_t{2}}, {"pretrained", std::string("dim.txt")}}) ==
            "dim.txt:1: the vectors have 3 dimensions but dim is 2");
    d.write("short.txt", "the 1 2\ndog 1\n");
    REQUIRE(message_of(d, {{"dim", std::int64_t{2}}, {"pretrained", std::string("short.txt")}}) ==
            "short.txt:2: 1 numbers after the token, expected 2");
    d.write("nan.txt", "the 1 2\ndog 1 x2\n");
    REQUIRE(message_of(d, {{"dim", std::int64_t{2}}, {"pretrained", std::string("nan.txt")}}) ==
            "nan.txt:2: field 3 'x2' is not a finite number");
    d.write("w2v.txt", "2 3\nthe 1 2\n");
    REQUIRE(message_of(d, {{"dim", std::int64_t{3}}, {"pretrained", std::string("w2v.txt")}}) ==
            "w2v.txt:2: 2 numbers after the token, expected 3");
    d.write("empty.txt", "");
    REQUIRE(message_of(d, {{"dim", std::int64_t{2}}, {"pretrained", std::string("empty.txt")}}) ==
            "pretrained vectors 'empty.txt' hold no vectors");
    REQUIRE(message_of(d, {{"dim", std::int64_t{2}}, {"pretrained", std::string("missing.txt")}}) ==
            "pretrained vectors 'missing.txt' not found or unreadable");
}
