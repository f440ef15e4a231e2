// Helpers of the evaluator tests: a metric by name, a written file's text.
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "pipeline/core/stage.hpp"

namespace rnnflow::test {

inline double metric(const std::vector<MetricValue>& v, const std::string& name) {
    for (const auto& m : v)
        if (m.name == name) return m.value;
    FAIL("no metric " << name);
    return 0;
}

inline std::string read_text(const std::filesystem::path& p) {
    std::ifstream is(p, std::ios::binary);
    std::stringstream ss;
    ss << is.rdbuf();
    return ss.str();
}

}  // namespace rnnflow::test
