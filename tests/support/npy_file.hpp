// .npy files written byte by byte as numpy.save lays them out, for the tests of the npy reader
// and of the stages that read features (not part of the installed testing library).
#pragma once

#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

namespace rnnflow::test {

// Magic, version, header length, `dict` padded with spaces to a multiple of 64 ending in '\n',
// then `data`.
inline std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1) {
    const std::size_t len_bytes = major == 1 ? 2 : 4;
    std::string header = dict;
    while ((8 + len_bytes + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::string out = "\x93NUMPY";
    out += static_cast<char>(major);
    out += '\0';
    for (std::size_t i = 0; i < len_bytes; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xFF);
    return out + header + data;
}

// The bytes of values (little-endian on the machines we run on).
template <class T> std::string raw_bytes(const std::vector<T>& v) {
    std::string s(v.size() * sizeof(T), '\0');
    if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
    return s;
}

// A float32 C-order array of `shape` ("(2, 3)") holding `values`.
inline std::string npy_f32(const std::string& shape, const std::vector<float>& values) {
    return npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }", raw_bytes(values));
}

}  // namespace rnnflow::test
