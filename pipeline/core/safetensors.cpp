#include "safetensors.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "error.hpp"

namespace rnnflow {

const Tensor* TensorFile::find(const std::string& name) const {
    for (const auto& [n, t] : tensors)
        if (n == name) return &t;
    return nullptr;
}

std::uint32_t crc32(const void* data, std::size_t n, std::uint32_t crc) {
    static const std::array<std::uint32_t, 256> table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    crc = ~crc;
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static std::string json_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') { out += '\\'; out += c; }
        else if (u < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", u);
            out += buf;
        } else out += c;
    }
    return out;
}

namespace {
std::atomic<MidWriteHook> mid_write_hook{nullptr};
}  // namespace

void set_mid_write_hook(MidWriteHook hook) { mid_write_hook.store(hook); }

void write_file_atomic(const std::filesystem::path& file, const std::string& bytes) {
    const std::filesystem::path tmp = file.string() + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    RNNFLOW_CHECK(fd >= 0, "cannot write ", tmp.string(), ": ", std::strerror(errno));
    auto write_until = [&](std::size_t& done, std::size_t end) {
        while (done < end) {
            const ssize_t w = ::write(fd, bytes.data() + done, end - done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                const int e = errno;
                ::close(fd);
                throw Error("failed writing " + tmp.string() + ": " + std::strerror(e));
            }
            done += static_cast<std::size_t>(w);
        }
    };
    std::size_t done = 0;
    write_until(done, bytes.size() / 2);
    if (const MidWriteHook hook = mid_write_hook.load()) hook(file);  // tests: a kill mid-write
    write_until(done, bytes.size());
    if (::fsync(fd) != 0 || ::close(fd) != 0)
        throw Error("failed writing " + tmp.string() + ": " + std::strerror(errno));
    std::error_code ec;
    std::filesystem::rename(tmp, file, ec);
    if (ec) throw Error("cannot rename " + tmp.string() + " to " + file.string() + ": " + ec.message());
    // Make the rename itself durable.
    const auto dir = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { ::fsync(dfd); ::close(dfd); }
}

void save_safetensors(const std::filesystem::path& file, const TensorFile& tf) {
    std::string data;
    std::ostringstream hdr;
    hdr << "{";
    std::size_t total = 0;
    for (const auto& [name, t] : tf.tensors) total += t.bytes();
    data.reserve(total);
    bool first = true;
    for (const auto& [name, t] : tf.tensors) {
        const std::size_t begin = data.size();
        data.append(static_cast<const char*>(t.raw()), t.bytes());
        if (!first) hdr << ",";
        first = false;
        hdr << "\"" << json_escape(name) << "\":{\"dtype\":\"" << (t.dtype() == DType::f32 ? "F32" : "I32")
            << "\",\"shape\":[";
        for (std::size_t i = 0; i < t.shape().size(); ++i) hdr << (i ? "," : "") << t.shape()[i];
        hdr << "],\"data_offsets\":[" << begin << "," << data.size() << "]}";
    }
    auto meta = tf.metadata;
    meta["rnnflow.crc32"] = std::to_string(crc32(data.data(), data.size()));
    hdr << (first ? "" : ",") << "\"__metadata__\":{";
    bool mfirst = true;
    for (const auto& [k, v] : meta) {
        hdr << (mfirst ? "" : ",") << "\"" << json_escape(k) << "\":\"" << json_escape(v) << "\"";
        mfirst = false;
    }
    hdr << "}}";
    std::string header = hdr.str();
    while (header.size() % 8) header += ' ';  // data starts 8-byte aligned
    std::string out(8, '\0');
    std::uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
    out += header;
    out += data;
    write_file_atomic(file, out);
}

namespace {

// A safetensors header's error: the file is truncated or corrupted.
Error corrupt(const std::string& where, const std::string& what) {
    return Error(where + ": not a valid safetensors file: " + what,
                 "the checkpoint is truncated or corrupted; use another one (e.g. checkpoints/last)");
}

// A small JSON reader for the safetensors header: objects, arrays, strings, integers.
struct Json {
    enum Kind { object, array, string, number } kind = string;
    std::vector<std::string> keys;  // object: keys[i] names arr[i]
    std::vector<Json> arr;           // array items, or object values
    std::string str;
    long long num = 0;
};

class Parser {
public:
    Parser(const std::string& s, std::string where) : s_(s), where_(std::move(where)) {}
    Json parse() {
        Json v = value(0);
        ws();
        if (i_ != s_.size()) fail("trailing characters in header");
        return v;
    }

private:
    [[noreturn]] void fail(const std::string& what) {
        throw corrupt(where_, what + " at header byte " + std::to_string(i_));
    }
    void ws() { while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_; }
    char peek() { ws(); if (i_ >= s_.size()) fail("unexpected end"); return s_[i_]; }
    void expect(char c) { if (peek() != c) fail(std::string("expected '") + c + "'"); ++i_; }
    Json value(int depth) {
        if (depth > 8) fail("nesting too deep");
        const char c = peek();
        Json v;
        if (c == '{') {
            v.kind = Json::object;
            ++i_;
            if (peek() == '}') { ++i_; return v; }
            for (;;) {
                if (peek() != '"') fail("expected a key");
                std::string k = string_lit();
                expect(':');
                v.keys.push_back(std::move(k));
                v.arr.push_back(value(depth + 1));
                if (peek() == ',') { ++i_; continue; }
                expect('}');
                return v;
            }
        }
        if (c == '[') {
            v.kind = Json::array;
            ++i_;
            if (peek() == ']') { ++i_; return v; }
            for (;;) {
                v.arr.push_back(value(depth + 1));
                if (peek() == ',') { ++i_; continue; }
                expect(']');
                return v;
            }
        }
        if (c == '"') { v.kind = Json::string; v.str = string_lit(); return v; }
        if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) {
            v.kind = Json::number;
            std::size_t j = i_;
            const bool neg = s_[j] == '-';
            if (neg) ++j;
            const std::size_t digits = j;
            while (j < s_.size() && std::isdigit(static_cast<unsigned char>(s_[j]))) ++j;
            if (j == digits) fail("a number without digits");
            if (j - digits > 18) fail("number too large");
            long long n = 0;
            for (std::size_t k = digits; k < j; ++k) n = n * 10 + (s_[k] - '0');
            v.num = neg ? -n : n;
            i_ = j;
            return v;
        }
        fail("unexpected character");
    }
    static int hex(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }
    std::string string_lit() {
        expect('"');
        std::string out;
        while (i_ < s_.size() && s_[i_] != '"') {
            char c = s_[i_++];
            if (c != '\\') {
                out += c;
                continue;
            }
            if (i_ >= s_.size()) fail("bad escape");
            const char e = s_[i_++];
            switch (e) {
                case 'n': out += '\n'; break;
                case 't': out += '\t'; break;
                case 'r': out += '\r'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case '"': case '\\': case '/': out += e; break;
                case 'u': {
                    unsigned cp = 0;
                    for (int k = 0; k < 4; ++k) {
                        const int h = i_ < s_.size() ? hex(s_[i_]) : -1;
                        if (h < 0) fail("bad \\u escape");
                        cp = cp * 16 + static_cast<unsigned>(h);
                        ++i_;
                    }
                    // UTF-8 (a lone surrogate is kept as its three bytes; names only compare).
                    if (cp < 0x80) out += static_cast<char>(cp);
                    else if (cp < 0x800) {
                        out += static_cast<char>(0xC0 | (cp >> 6));
                        out += static_cast<char>(0x80 | (cp & 0x3F));
                    } else {
                        out += static_cast<char>(0xE0 | (cp >> 12));
                        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
                        out += static_cast<char>(0x80 | (cp & 0x3F));
                    }
                    break;
                }
                default: fail(std::string("bad escape \\") + e);
            }
        }
        if (i_ >= s_.size()) fail("unterminated string");
        ++i_;
        return out;
    }
    const std::string& s_;
    std::string where_;
    std::size_t i_ = 0;
};

// One tensor of the header: its place [begin, end) in the data section.
struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    std::size_t begin, end;
};

// The header's __metadata__ object: string values, each key once.
void read_metadata(const Json& v, std::map<std::string, std::string>& metadata, const std::string& where) {
    if (v.kind != Json::object) throw corrupt(where, "__metadata__ is not an object");
    for (std::size_t m_i = 0; m_i < v.keys.size(); ++m_i) {
        const std::string& k = v.keys[m_i];
        const Json& mv = v.arr[m_i];
        if (mv.kind != Json::string) throw corrupt(where, "metadata '" + k + "' is not a string");
        if (!metadata.emplace(k, mv.str).second) throw corrupt(where, "metadata '" + k + "' appears twice");
    }
}

// Elements of a shape; sets overflow when there are more than the data section has bytes.
std::uint64_t shape_elements(const Shape& shape, std::size_t data_size, bool& overflow) {
    std::uint64_t elems = 1;
    overflow = false;
    if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
    for (const auto d : shape) {
        const auto u = static_cast<std::uint64_t>(d);
        if (elems > data_size / u) { overflow = true; break; }
        elems *= u;
    }
    return elems;
}

// One tensor entry {dtype, shape, data_offsets}, its sizes checked against the file before anything
// is allocated.
Entry read_entry(const std::string& name, const Json& v, std::size_t data_size, const std::string& where) {
    const Json* dtype = nullptr;
    const Json* shape = nullptr;
    const Json* offs = nullptr;
    if (v.kind != Json::object) throw corrupt(where, "entry '" + name + "' is not an object");
    for (std::size_t f_i = 0; f_i < v.keys.size(); ++f_i) {
        const std::string& k = v.keys[f_i];
        const Json& f = v.arr[f_i];
        if (k == "dtype") dtype = &f;
        else if (k == "shape") shape = &f;
        else if (k == "data_offsets") offs = &f;
    }
    if (!dtype || !shape || !offs || dtype->kind != Json::string || shape->kind != Json::array ||
        offs->kind != Json::array || offs->arr.size() != 2 || offs->arr[0].kind != Json::number ||
        offs->arr[1].kind != Json::number)
        throw corrupt(where, "entry '" + name + "' lacks dtype, shape or data_offsets");
    Entry e{name, DType::f32, {}, 0, 0};
    if (dtype->str == "F32") e.dtype = DType::f32;
    else if (dtype->str == "I32") e.dtype = DType::i32;
    else throw corrupt(where, "entry '" + name + "' has dtype " + dtype->str + " (rnnflow reads F32 and I32)");
    for (const auto& d : shape->arr) {
        if (d.kind != Json::number || d.num < 0) throw corrupt(where, "entry '" + name + "' has a bad shape");
        e.shape.push_back(d.num);
    }
    bool overflow = false;
    const std::uint64_t elems = shape_elements(e.shape, data_size, overflow);
    const long long b = offs->arr[0].num, en = offs->arr[1].num;
    const bool fits = !overflow && b >= 0 && en >= b && static_cast<std::uint64_t>(en) <= data_size &&
                      static_cast<std::uint64_t>(en - b) == elems * dtype_size(e.dtype);
    if (!fits)
        throw corrupt(where, "entry '" + name + "' has data offsets [" + std::to_string(b) + ", " + std::to_string(en) +
                                 "] that do not fit its shape " + shape_str(e.shape) + " or the file's " +
                                 std::to_string(data_size) + " data bytes");
    e.begin = static_cast<std::size_t>(b);
    e.end = static_cast<std::size_t>(en);
    return e;
}

// The tensors tile the data section: no gap, no overlap.
void check_tiling(const std::vector<Entry>& entries, std::size_t data_size, const std::string& where) {
    std::vector<const Entry*> by_offset;
    for (const auto& e : entries) by_offset.push_back(&e);
    std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
        return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    std::size_t at = 0;
    for (const Entry* e : by_offset) {
        if (e->begin != at)
            throw corrupt(where, e->begin < at ? "tensor '" + e->name + "' overlaps another"
                                               : "data bytes [" + std::to_string(at) + ", " +
                                                     std::to_string(e->begin) + ") belong to no tensor");
        at = e->end;
    }
    if (at != data_size)
        throw corrupt(where, "data section has " + std::to_string(data_size) + " bytes, tensors cover " + std::to_string(at));
}

// rnnflow.crc32 in the metadata, when present, over the data section.
void check_checksum(const std::map<std::string, std::string>& metadata, const char* data, std::size_t data_size,
                    const std::string& where) {
    auto it = metadata.find("rnnflow.crc32");
    if (it == metadata.end()) return;
    std::uint32_t want = 0;
    const auto r = std::from_chars(it->second.data(), it->second.data() + it->second.size(), want);
    if (r.ec != std::errc() || r.ptr != it->second.data() + it->second.size())
        throw corrupt(where, "checksum '" + it->second + "' is not a number");
    if (crc32(data, data_size) != want) throw corrupt(where, "checksum mismatch (data corrupted)");
}

}  // namespace

TensorFile load_safetensors(const std::filesystem::path& file) {
    const std::string where = file.string();
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec))
        throw Error(where + ": is a directory, not a checkpoint", "give a .safetensors file");
    std::ifstream is(file, std::ios::binary);
    RNNFLOW_CHECK(is.good(), where, ": cannot open checkpoint");
    const std::string bytes((std::istreambuf_iterator<char>(is)), std::istreambuf_iterator<char>());
    return load_safetensors_bytes(bytes, where);
}

TensorFile load_safetensors_bytes(const std::string& bytes, const std::string& where) {
    if (bytes.size() < 8) throw corrupt(where, "shorter than its 8-byte header length");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
    if (n > bytes.size() - 8 || n > (100u << 20))
        throw corrupt(where, "header length " + std::to_string(n) + " exceeds the file");
    const std::string header = bytes.substr(8, n);
    const std::size_t data_begin = 8 + n;
    const std::size_t data_size = bytes.size() - data_begin;
    Json root = Parser(header, where).parse();
    if (root.kind != Json::object) throw corrupt(where, "header is not a JSON object");
    std::vector<Entry> entries;
    std::map<std::string, std::string> metadata;
    std::set<std::string> names;
    bool have_metadata = false;
    for (std::size_t e_i = 0; e_i < root.keys.size(); ++e_i) {
        const std::string& name = root.keys[e_i];
        if (name == "__metadata__") {
            if (have_metadata) throw corrupt(where, "__metadata__ appears twice");
            have_metadata = true;
            read_metadata(root.arr[e_i], metadata, where);
            continue;
        }
        if (!names.insert(name).second) throw corrupt(where, "tensor '" + name + "' appears twice");
        entries.push_back(read_entry(name, root.arr[e_i], data_size, where));
    }
    check_tiling(entries, data_size, where);
    check_checksum(metadata, bytes.data() + data_begin, data_size, where);
    TensorFile tf;
    tf.metadata = std::move(metadata);
    for (auto& e : entries) {
        Tensor t(e.dtype, e.shape);
        if (t.bytes()) std::memcpy(t.raw(), bytes.data() + data_begin + e.begin, t.bytes());
        tf.tensors.emplace_back(std::move(e.name), std::move(t));
    }
    return tf;
}

}  // namespace rnnflow
