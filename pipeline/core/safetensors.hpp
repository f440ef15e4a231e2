// Checkpoints in the safetensors format: an 8-byte little-endian header length, a JSON header
// {"name": {"dtype": "F32"|"I32", "shape": [...], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {"key": "value", ...}}, then the raw little-endian data.
//
// rnnflow adds metadata "rnnflow.crc32" (of the data section) so that a truncated or corrupted
// file is refused instead of loaded as garbage. Files are written atomically (temporary file,
// flush, fsync, rename), so a crash during a write leaves the previous file intact.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "data.hpp"  // write_file_atomic
#include "tensor.hpp"

namespace rnnflow {

struct TensorFile {
    std::vector<std::pair<std::string, Tensor>> tensors;  // written in this order
    std::map<std::string, std::string> metadata;

    const Tensor* find(const std::string& name) const;
};

void save_safetensors(const std::filesystem::path& file, const TensorFile& tf);
// Throws Error naming the file and what is wrong (size, header, offsets, checksum).
TensorFile load_safetensors(const std::filesystem::path& file);
// The same from the file's bytes; `where` names it in messages. Every size in the header is
// checked against the bytes before anything is allocated.
TensorFile load_safetensors_bytes(const std::string& bytes, const std::string& where);

std::uint32_t crc32(const void* data, std::size_t n, std::uint32_t crc = 0);

}  // namespace rnnflow
