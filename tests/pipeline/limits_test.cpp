// Sizes that would exhaust memory are refused before anything is allocated (docs/fuzzing.md).
// The file-level cases (checkpoints, data files, sweeps) are in tests/bad_inputs/manifest.tsv.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#include "support/error_text.hpp"
#include "pipeline/core/tensor.hpp"
#include "pipeline/core/safetensors.hpp"
#include "pipeline/graph/graph.hpp"

using namespace rnnflow;
using rnnflow::test::error_text;

namespace {

// A safetensors file from a header text and data bytes.
std::string file_of(const std::string& header, const std::string& data) {
    std::string h = header;
    while (h.size() % 8) h += ' ';
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((h.size() >> (8 * i)) & 0xFF);
    return out + h + data;
}
}  // namespace

TEST_CASE("limits: a tensor larger than the machine's memory is a message, not bad_alloc", "[limits]") {
    CHECK_THAT(error_text([] { Tensor::f32({1 << 20, 1 << 20, 1 << 10}); }),
               Catch::StartsWith("a tensor of shape (1048576, 1048576, 1024) needs 4194304.0 GiB, more than this machine's "));
    CHECK(error_text([] { Tensor::f32({std::int64_t{1} << 40, std::int64_t{1} << 40}); }) ==
          "tensor shape (1099511627776, 1099511627776) has too many elements to address");
    CHECK(error_text([] { Tensor::f32({3, -1}); }) == "tensor dimension must be >= 0, got -1 in (3, -1)");
    CHECK(Tensor::f32({std::int64_t{1} << 40, 0, std::int64_t{1} << 40}).numel() == 0);  // empty is fine
    Tensor t = Tensor::f32({4});
    CHECK_THAT(error_text([&] { t.resize({std::int64_t{1} << 45}); }), Catch::Contains("more than this machine's"));
    CHECK(t.numel() == 4);  // unchanged after the refusal
}

TEST_CASE("limits: checkpoint header sizes are checked against the bytes before allocating", "[limits]") {
    // 16 data bytes claiming 2^40 x 2^40 floats.
    const std::string huge = file_of(R"({"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,16]}})",
                                     std::string(16, '\0'));
    CHECK_THAT(error_text([&] { load_safetensors_bytes(huge, "h.safetensors"); }),
               Catch::Contains("entry 'w' has data offsets [0, 16] that do not fit its shape (1099511627776, 1099511627776)"));
    const std::string minus = file_of(R"({"w":{"dtype":"F32","shape":[-],"data_offsets":[0,0]}})", "");
    CHECK(error_text([&] { load_safetensors_bytes(minus, "m"); }) ==
          "m: not a valid safetensors file: a number without digits at header byte 29");
    const std::string escape = file_of(R"({"w\u00zz":{}})", "");
    CHECK_THAT(error_text([&] { load_safetensors_bytes(escape, "e"); }), Catch::Contains("bad \\u escape"));
    // A good one still loads, names with \u escapes decoded as UTF-8.
    std::string data(8, '\0');
    const float v[2] = {1.5f, -2.0f};
    std::memcpy(data.data(), v, 8);
    const TensorFile tf = load_safetensors_bytes(
        file_of(R"({"caf\u00e9":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}})", data), "g");
    REQUIRE(tf.tensors.size() == 1);
    CHECK(tf.tensors[0].first == "caf\xC3\xA9");
    CHECK(tf.tensors[0].second.data<float>()[1] == -2.0f);
    CHECK(tf.metadata.at("k") == "v");
}

TEST_CASE("limits: graph and sweep text must be UTF-8, not binary, at most 16 MiB", "[limits]") {
    CHECK(!text_problem("stages: {a: {type: x}}  # caf\xC3\xA9\n", "g.yaml"));
    CHECK(!text_problem("\xEF\xBB\xBFstages: {}\n", "g.yaml"));  // a UTF-8 byte-order mark
    CHECK(text_problem("a: 1\nb: caf\xE9\n", "g.yaml")->format() ==
          "g.yaml:2:7: error: invalid UTF-8 byte 0xe9\n  hint: graph and sweep files are UTF-8; convert it, e.g. iconv -f latin1 -t utf-8");
    CHECK(text_problem(std::string("\x1f\x8b\x08\x00", 4), "g.yaml")->message == "NUL byte: this is a binary file, not YAML text");
    CHECK(text_problem("\xFF\xFEs\0", "g.yaml")->message == "the file is UTF-16 text (it starts with a UTF-16 byte-order mark)");
    CHECK_THAT(text_problem(std::string((16u << 20) + 1, 'a'), "g.yaml")->message,
               Catch::StartsWith("the file is 16777217 bytes; graph and sweep files are at most 16777216"));
}
