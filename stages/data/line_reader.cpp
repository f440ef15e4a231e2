#include "line_reader.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "pipeline/core/error.hpp"

namespace rnnflow::stages {

namespace fs = std::filesystem;

std::vector<std::string> read_utf8_lines(const fs::path& base, const std::string& written,
                                         const std::string& role) {
    const fs::path full = fs::path(written).is_absolute() ? fs::path(written) : base / written;
    std::error_code ec;
    const auto st = fs::status(full, ec);
    if (!fs::exists(st))
        throw Error(detail::concat(role, " file '", written, "' not found"),
                    detail::concat("looked for '", full.string(),
                                   "'; relative paths start at the graph file's folder"));
    if (fs::is_directory(st))
        throw Error(detail::concat(role, " file '", written, "' is a directory"), "name a text file");
    std::ifstream is(full, std::ios::binary);
    if (!is.is_open())
        throw Error(detail::concat("cannot read ", role, " file '", written, "'"),
                    "check that the file is readable (permissions)");
    std::string bytes((std::istreambuf_iterator<char>(is)), std::istreambuf_iterator<char>());
    if (is.bad())
        throw Error(detail::concat("error while reading ", role, " file '", written, "'"),
                    "check the file and the disk");
    if (bytes.rfind("\xEF\xBB\xBF", 0) == 0) bytes.erase(0, 3);
    check_utf8(bytes, written);
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < bytes.size()) {
        std::size_t end = bytes.find('\n', start);
        if (end == std::string::npos) end = bytes.size();
        std::size_t stop = end;
        if (stop > start && bytes[stop - 1] == '\r') --stop;
        out.emplace_back(bytes, start, stop - start);
        start = end + 1;
    }
    return out;
}

}  // namespace rnnflow::stages
