// npy: NumPy files of every format version, float32 and float64, and each malformed header or
// size refused with the file named. The files are written here, byte by byte, as numpy.save
// lays them out.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "pipeline/core/npy.hpp"
#include "support/npy_file.hpp"

using namespace rnnflow;
namespace fs = std::filesystem;

namespace {

fs::path temp_file(const std::string& name) {
    const fs::path dir = fs::temp_directory_path() / ("rnnflow_npy_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    return dir / name;
}

std::string npy(const std::string& dict, const std::string& data, int major = 1) {
    return test::npy_bytes(dict, data, major);
}
template <class T> std::string raw(std::initializer_list<T> v) { return test::raw_bytes(std::vector<T>(v)); }

std::string message_of(const std::string& bytes) {
    try {
        load_npy_bytes(bytes, "f.npy");
    } catch (const Error& e) {
        return e.message();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("npy: float32 (N, D) read as written, from a file and from bytes", "[core][npy]") {
    const std::string bytes = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                                  raw<float>({0.5f, -1, 2, 3, 4.25f, -0.125f}));
    const fs::path f = temp_file("a.npy");
    std::ofstream(f, std::ios::binary) << bytes;
    for (const Tensor& t : {load_npy(f), load_npy_bytes(bytes, "a.npy")}) {
        REQUIRE(t.shape() == Shape{2, 3});
        REQUIRE(t.dtype() == DType::f32);
        REQUIRE(std::vector<float>(t.data<float>(), t.data<float>() + 6) ==
                std::vector<float>{0.5f, -1, 2, 3, 4.25f, -0.125f});
    }
}

TEST_CASE("npy: float64 converted to f32; versions 2.0 and 3.0; other header spellings", "[core][npy]") {
    SECTION("version 2.0, '<f8', (N, F, D); beyond f32's range becomes inf") {
        const std::string bytes = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2, 2), }",
                                      raw<double>({1.5, -2.25, 1e300, 0.1}), 2);
        const fs::path f = temp_file("b.npy");
        std::ofstream(f, std::ios::binary) << bytes;
        const Tensor t = load_npy(f);
        REQUIRE(t.shape() == Shape{1, 2, 2});
        REQUIRE(t.data<float>()[0] == 1.5f);
        REQUIRE(t.data<float>()[1] == -2.25f);
        REQUIRE(std::isinf(t.data<float>()[2]));
        REQUIRE(t.data<float>()[3] == static_cast<float>(0.1));
    }
    SECTION("version 3.0, double quotes, keys in another order, no trailing comma, a 1-d shape") {
        const Tensor t = load_npy_bytes(
            npy("{\"shape\": (3,), \"fortran_order\": False, \"descr\": \"<f4\"}", raw<float>({1, 2, 3}), 3), "c.npy");
        REQUIRE(t.shape() == Shape{3});
        REQUIRE(t.data<float>()[2] == 3.0f);
    }
    SECTION("an empty array: shape (0, 4), no data") {
        const Tensor t = load_npy_bytes(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }", ""), "e.npy");
        REQUIRE(t.shape() == Shape{0, 4});
        REQUIRE(t.numel() == 0);
    }
}

TEST_CASE("npy: malformed files are refused with the file named and what is wrong", "[core][npy]") {
    const std::string ok_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
    const std::string four = raw<float>({1, 2, 3, 4});
    const std::string prefix = "f.npy: not a readable .npy file: ";
    REQUIRE(message_of("PK\x03\x04 a zip") == prefix + "no \\x93NUMPY magic at the start (10 bytes)");
    REQUIRE(message_of("") == prefix + "no \\x93NUMPY magic at the start (0 bytes)");
    REQUIRE(message_of(std::string("\x93NUMPY\x01\x00\x40", 9)) == prefix + "the file ends inside the header length");
    std::string v4 = npy(ok_dict, four);
    v4[6] = 4;
    REQUIRE(message_of(v4) == prefix + "format version 4.0 (rnnflow reads 1.0, 2.0 and 3.0)");
    std::string long_header = npy(ok_dict, four);
    long_header[8] = '\xff';
    long_header[9] = '\x7f';
    REQUIRE(message_of(long_header) == prefix + "header length 32767 runs past the end of the file (144 bytes)");
    REQUIRE(message_of(npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", four)) ==
            "f.npy: .npy array is in Fortran order (fortran_order: True); rnnflow reads C order");
    REQUIRE(message_of(npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", four)) ==
            "f.npy: .npy dtype '>f4' is not supported (rnnflow reads '<f4' float32 and '<f8' float64)");
    REQUIRE(message_of(npy("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", four)) ==
            "f.npy: .npy dtype '<i4' is not supported (rnnflow reads '<f4' float32 and '<f8' float64)");
    REQUIRE(message_of(npy("{'descr': '<f4', 'shape': (2, 2), }", four)) == prefix + "header: no 'fortran_order' key");
    REQUIRE(message_of(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': 1}", four)) ==
            prefix + "header: unknown key 'x' (header byte 58)");
    REQUIRE(message_of(npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)}", four)) ==
            prefix + "header: key 'descr' appears twice (header byte 17)");
    REQUIRE(message_of(npy("{'descr': '<f4', 'fortran_order': Nope, 'shape': (2, 2)}", four)) ==
            prefix + "header: fortran_order is not True or False (header byte 34)");
    REQUIRE(message_of(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -2)}", four)) ==
            prefix + "header: a shape entry that is not a whole number >= 0 (header byte 54)");
    REQUIRE(message_of(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)} x", four)) ==
            prefix + "header: text after the closing '}' (header byte 58)");
    REQUIRE(message_of(npy("{'descr': '<f4", four)) == prefix + "header: unterminated string (header byte 11)");
    SECTION("data sizes: a byte short, a byte over, a shape far larger than the file") {
        REQUIRE(message_of(npy(ok_dict, four.substr(1))) ==
                "f.npy: .npy shape (2, 2) of '<f4' needs 16 data bytes, the file has 15");
        REQUIRE(message_of(npy(ok_dict, four + "x")) == "f.npy: .npy shape (2, 2) of '<f4' needs 16 data bytes, the file has 17");
        REQUIRE(message_of(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (999999999999999999, 99999999), }", four)) ==
                "f.npy: .npy shape (999999999999999999, 99999999) of '<f8' needs more data bytes, the file has 16");
    }
    SECTION("files: a directory, a missing file") {
        REQUIRE_THROWS_WITH(load_npy(temp_file("x").parent_path()), Catch::Contains("is a directory, not a .npy file"));
        REQUIRE_THROWS_WITH(load_npy(temp_file("missing.npy")), Catch::EndsWith("missing.npy: cannot open"));
    }
}
