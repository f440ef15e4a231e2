#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "pipeline/core/safetensors.hpp"

using namespace rnnflow;
namespace fs = std::filesystem;

namespace {
fs::path temp_file(const std::string& name) {
    const fs::path dir = fs::temp_directory_path() / ("rnnflow_st_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    return dir / name;
}
std::string read_all(const fs::path& p) {
    std::ifstream is(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(is)), std::istreambuf_iterator<char>());
}
void write_all(const fs::path& p, const std::string& s) {
    std::ofstream os(p, std::ios::binary | std::ios::trunc);
    os << s;
}
}  // namespace

TEST_CASE("safetensors: round trip of names, shapes, values and metadata", "[core][checkpoint]") {
    TensorFile tf;
    Tensor a = Tensor::f32({2, 3});
    for (int i = 0; i < 6; ++i) a.data<float>()[i] = 0.5f * static_cast<float>(i) - 1.0f;
    Tensor b = Tensor::i32({4});
    for (int i = 0; i < 4; ++i) b.data<std::int32_t>()[i] = i * 7 - 3;
    tf.tensors.emplace_back("rnn.layer0.weights_layer", a);
    tf.tensors.emplace_back("optim.step", b);
    tf.metadata["epoch"] = "3";
    const fs::path f = temp_file("round.safetensors");
    save_safetensors(f, tf);
    REQUIRE_FALSE(fs::exists(f.string() + ".tmp"));

    const std::string bytes = read_all(f);
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
    REQUIRE((8 + n) % 8 == 0);  // data section aligned
    REQUIRE(bytes.substr(8, 1) == "{");

    TensorFile back = load_safetensors(f);
    REQUIRE(back.tensors.size() == 2);
    const Tensor* ra = back.find("rnn.layer0.weights_layer");
    REQUIRE(ra != nullptr);
    REQUIRE(ra->shape() == Shape{2, 3});
    for (int i = 0; i < 6; ++i) REQUIRE(ra->data<float>()[i] == a.data<float>()[i]);
    const Tensor* rb = back.find("optim.step");
    REQUIRE(rb->dtype() == DType::i32);
    REQUIRE(rb->data<std::int32_t>()[3] == 18);
    REQUIRE(back.metadata.at("epoch") == "3");
}

TEST_CASE("safetensors: truncated and corrupted files are refused with the file named", "[core][checkpoint]") {
    TensorFile tf;
    Tensor a = Tensor::f32({64});
    for (int i = 0; i < 64; ++i) a.data<float>()[i] = static_cast<float>(i);
    tf.tensors.emplace_back("w", a);
    const fs::path f = temp_file("bad.safetensors");
    save_safetensors(f, tf);
    const std::string good = read_all(f);

    SECTION("truncated data") {
        write_all(f, good.substr(0, good.size() - 10));
        REQUIRE_THROWS_WITH(load_safetensors(f), Catch::Contains(f.string()) && Catch::Contains("do not fit"));
    }
    SECTION("truncated header") {
        write_all(f, good.substr(0, 20));
        REQUIRE_THROWS_WITH(load_safetensors(f), Catch::Contains("exceeds the file"));
    }
    SECTION("flipped data byte") {
        std::string bad = good;
        bad[bad.size() - 5] ^= 0x40;
        write_all(f, bad);
        REQUIRE_THROWS_WITH(load_safetensors(f), Catch::Contains("checksum mismatch"));
    }
    SECTION("empty file") {
        write_all(f, "");
        REQUIRE_THROWS_WITH(load_safetensors(f), Catch::Contains("shorter than its 8-byte header"));
    }
    SECTION("missing file") {
        REQUIRE_THROWS_WITH(load_safetensors(f.string() + ".none"), Catch::Contains("cannot open checkpoint"));
    }
}

TEST_CASE("safetensors: a file from another writer (no checksum) loads; a dtype rnnflow does not read is named",
          "[core][checkpoint]") {
    auto file = [](const std::string& header, const std::string& data) {
        std::string out(8, '\0');
        for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
        return out + header + data;
    };
    const float v[2] = {1.5f, -2.0f};
    const std::string data(reinterpret_cast<const char*>(v), sizeof v);
    const TensorFile tf =
        load_safetensors_bytes(file(R"({"features":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}})", data), "f.st");
    REQUIRE(tf.tensors.size() == 1);
    REQUIRE(tf.find("features")->shape() == Shape{1, 2});
    REQUIRE(tf.find("features")->data<float>()[1] == -2.0f);
    REQUIRE_THROWS_WITH(
        load_safetensors_bytes(file(R"({"features":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})", data), "f.st"),
        "f.st: not a valid safetensors file: entry 'features' has dtype F16 (rnnflow reads F32 and I32)");
}

namespace {
std::vector<std::string> mid_write_files;
void record_mid_write(const fs::path& file) { mid_write_files.push_back(file.filename().string()); }
}  // namespace

TEST_CASE("safetensors: write_file_atomic calls the mid-write hook (the engine's fault injection)", "[core][checkpoint]") {
    mid_write_files.clear();
    set_mid_write_hook(&record_mid_write);
    write_file_atomic(temp_file("hooked.txt"), "some bytes");
    set_mid_write_hook(nullptr);
    write_file_atomic(temp_file("unhooked.txt"), "some bytes");
    REQUIRE(mid_write_files == std::vector<std::string>{"hooked.txt"});
    REQUIRE(read_all(temp_file("hooked.txt")) == "some bytes");
}
