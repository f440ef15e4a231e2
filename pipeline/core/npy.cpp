#include "npy.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>

#include "error.hpp"

namespace rnnflow {

namespace {

constexpr std::size_t kMaxHeader = std::size_t{1} << 20;  // numpy writes a few hundred bytes

Error bad(const std::string& where, const std::string& what) {
    return Error(where + ": not a readable .npy file: " + what,
                 "write it with numpy.save(file, array.astype('float32')) (C order, little-endian)");
}

// What the header says, with the data's place and size checked against the file.
struct NpyLayout {
    std::size_t data_begin = 0;
    bool f64 = false;
    Shape shape;
};

// The fixed part: magic, version, header length. `head` holds the file's first bytes (up to
// 12); returns the offset where the header text starts and its length.
std::pair<std::size_t, std::size_t> read_prefix(const std::string& head, std::uint64_t file_size,
                                                const std::string& where) {
    static const char magic[] = "\x93NUMPY";
    if (head.size() < 8 || head.compare(0, 6, magic, 6) != 0)
        throw bad(where, "no \\x93NUMPY magic at the start (" + std::to_string(file_size) + " bytes)");
    const auto major = static_cast<unsigned char>(head[6]), minor = static_cast<unsigned char>(head[7]);
    if (major < 1 || major > 3 || minor != 0)
        throw bad(where, "format version " + std::to_string(major) + "." + std::to_string(minor) +
                             " (rnnflow reads 1.0, 2.0 and 3.0)");
    const std::size_t len_bytes = major == 1 ? 2 : 4;
    if (head.size() < 8 + len_bytes) throw bad(where, "the file ends inside the header length");
    std::uint64_t n = 0;
    for (std::size_t i = len_bytes; i-- > 0;) n = (n << 8) | static_cast<unsigned char>(head[8 + i]);
    const std::uint64_t begin = 8 + len_bytes;
    if (n > file_size - begin || n > kMaxHeader)
        throw bad(where, "header length " + std::to_string(n) + " runs past the end of the file (" +
                             std::to_string(file_size) + " bytes)");
    return {static_cast<std::size_t>(begin), static_cast<std::size_t>(n)};
}

// The header's Python dict literal: keys 'descr' (a string), 'fortran_order' (True/False) and
// 'shape' (a tuple of integers), each exactly once.
class HeaderParser {
public:
    HeaderParser(const std::string& s, std::string where) : s_(s), where_(std::move(where)) {}

    void parse(std::string& descr, bool& fortran, Shape& shape) {
        bool seen[3] = {false, false, false};
        expect('{');
        while (peek() != '}') {
            const std::size_t key_at = i_;
            const std::string key = string_lit();
            const int k = key == "descr" ? 0 : key == "fortran_order" ? 1 : key == "shape" ? 2 : -1;
            if (k < 0 || seen[k]) {
                i_ = key_at;  // the message points at the key
                fail(k < 0 ? "unknown key '" + key + "'" : "key '" + key + "' appears twice");
            }
            expect(':');
            seen[k] = true;
            if (k == 0) descr = string_lit();
            else if (k == 1) fortran = boolean();
            else shape = tuple();
            if (peek() != ',') break;
            ++i_;
        }
        expect('}');
        ws();
        if (i_ != s_.size()) fail("text after the closing '}'");
        for (int k = 0; k < 3; ++k)
            if (!seen[k])
                throw bad(where_, std::string("header: no '") + (k == 0 ? "descr" : k == 1 ? "fortran_order" : "shape") +
                                      "' key");
    }

private:
    [[noreturn]] void fail(const std::string& what) {
        throw bad(where_, "header: " + what + " (header byte " + std::to_string(i_) + ")");
    }
    void ws() { while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_; }
    char peek() { ws(); if (i_ >= s_.size()) fail("unexpected end"); return s_[i_]; }
    void expect(char c) { if (peek() != c) fail(std::string("expected '") + c + "'"); ++i_; }
    std::string string_lit() {
        const char q = peek();
        if (q != '\'' && q != '"') fail("expected a quoted string");
        const std::size_t end = s_.find(q, ++i_);
        if (end == std::string::npos) fail("unterminated string");
        std::string out = s_.substr(i_, end - i_);
        i_ = end + 1;
        return out;
    }
    bool boolean() {
        peek();
        for (const char* w : {"True", "False"})
            if (s_.compare(i_, std::strlen(w), w) == 0) {
                i_ += std::strlen(w);
                return w[0] == 'T';
            }
        fail("fortran_order is not True or False");
    }
    Shape tuple() {
        Shape out;
        expect('(');
        while (peek() != ')') {
            const std::size_t digits = i_;
            std::int64_t n = 0;
            while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9' && i_ - digits < 18) n = n * 10 + (s_[i_++] - '0');
            if (i_ == digits) fail("a shape entry that is not a whole number >= 0");
            if (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') fail("a shape entry too large");
            if (i_ < s_.size() && s_[i_] == 'L') ++i_;  // Python 2 long
            out.push_back(n);
            if (peek() != ',') break;
            ++i_;
        }
        expect(')');
        if (out.size() > 8) fail("more than 8 dimensions");
        return out;
    }

    const std::string& s_;
    std::string where_;
    std::size_t i_ = 0;
};

// Parses the header text and checks the data size: exactly shape × item size bytes from
// data_begin to the end of the file.
NpyLayout layout_of(const std::string& header, std::size_t data_begin, std::uint64_t file_size,
                    const std::string& where) {
    std::string descr;
    bool fortran = false;
    NpyLayout l;
    l.data_begin = data_begin;
    HeaderParser(header, where).parse(descr, fortran, l.shape);
    if (descr != "<f4" && descr != "<f8")
        throw Error(where + ": .npy dtype '" + descr + "' is not supported (rnnflow reads '<f4' float32 and '<f8' float64)",
                    "convert it: numpy.save(file, array.astype('<f4'))");
    if (fortran)
        throw Error(where + ": .npy array is in Fortran order (fortran_order: True); rnnflow reads C order",
                    "save numpy.ascontiguousarray(array) instead");
    l.f64 = descr == "<f8";
    const std::uint64_t have = file_size - data_begin;
    const std::uint64_t item = l.f64 ? 8 : 4;
    std::uint64_t elems = 1;
    bool overflow = false;  // elems * item would not fit in 64 bits: far more than any file has
    const std::uint64_t limit = (std::uint64_t{1} << 62) / item;
    if (std::find(l.shape.begin(), l.shape.end(), 0) != l.shape.end()) elems = 0;
    else
        for (const auto d : l.shape) {
            const auto u = static_cast<std::uint64_t>(d);
            if (elems > limit / u) { overflow = true; break; }
            elems *= u;
        }
    if (overflow || elems * item != have)
        throw Error(where + ": .npy shape " + shape_str(l.shape) + " of '" + descr + "' needs " +
                        (overflow ? std::string("more") : std::to_string(elems * item)) + " data bytes, the file has " +
                        std::to_string(have),
                    "the file is truncated or was not written by numpy.save");
    return l;
}

// Fills t (already shaped) from `read(dst, n)`, which copies the next n data bytes to dst.
template <class Read> void fill(Tensor& t, bool f64, Read&& read) {
    float* out = t.data<float>();
    const auto n = static_cast<std::size_t>(t.numel());
    if (!f64) {
        read(reinterpret_cast<char*>(out), n * sizeof(float));
        return;
    }
    std::vector<double> chunk(std::min<std::size_t>(n, 1 << 16));
    for (std::size_t at = 0; at < n; at += chunk.size()) {
        const std::size_t k = std::min(chunk.size(), n - at);
        read(reinterpret_cast<char*>(chunk.data()), k * sizeof(double));
        for (std::size_t i = 0; i < k; ++i) out[at + i] = static_cast<float>(chunk[i]);
    }
}

}  // namespace

Tensor load_npy_bytes(const std::string& bytes, const std::string& where) {
    const auto [begin, len] = read_prefix(bytes.substr(0, 12), bytes.size(), where);
    const NpyLayout l = layout_of(bytes.substr(begin, len), begin + len, bytes.size(), where);
    Tensor t(DType::f32, l.shape);
    std::size_t at = l.data_begin;
    fill(t, l.f64, [&](char* dst, std::size_t n) {
        std::memcpy(dst, bytes.data() + at, n);
        at += n;
    });
    return t;
}

Tensor load_npy(const std::filesystem::path& file) {
    const std::string where = file.string();
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec)) throw Error(where + ": is a directory, not a .npy file", "give a .npy file");
    std::ifstream is(file, std::ios::binary);
    if (!is) throw Error(where + ": cannot open", "check the path (relative to the graph file's folder)");
    is.seekg(0, std::ios::end);
    const auto size = static_cast<std::uint64_t>(is.tellg());
    is.seekg(0);
    std::string head(static_cast<std::size_t>(std::min<std::uint64_t>(size, 12)), '\0');
    is.read(head.data(), static_cast<std::streamsize>(head.size()));
    const auto [begin, len] = read_prefix(head, size, where);
    std::string header(len, '\0');
    is.seekg(static_cast<std::streamoff>(begin));
    is.read(header.data(), static_cast<std::streamsize>(len));
    const NpyLayout l = layout_of(header, begin + len, size, where);
    Tensor t(DType::f32, l.shape);
    is.seekg(static_cast<std::streamoff>(l.data_begin));
    fill(t, l.f64, [&](char* dst, std::size_t n) {
        is.read(dst, static_cast<std::streamsize>(n));
        if (!is) throw Error(where + ": read failed (the file changed while it was read?)", "");
    });
    return t;
}

}  // namespace rnnflow
