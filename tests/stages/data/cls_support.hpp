// Helpers shared by the classification data tests: a temp folder and a prepare context that
// carries prediction-run lines.
#pragma once

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "support/harness.hpp"

namespace rnnflow::test {

// A fresh folder under the system temp dir, removed at the end of the test.
struct ClsTempDir {
    std::filesystem::path path;
    ClsTempDir() {
        std::random_device rd;
        path = std::filesystem::temp_directory_path() / ("rnnflow_cls_" + std::to_string(rd()));
        std::filesystem::create_directories(path);
    }
    ~ClsTempDir() { std::error_code ec; std::filesystem::remove_all(path, ec); }
    ClsTempDir(const ClsTempDir&) = delete;
    ClsTempDir& operator=(const ClsTempDir&) = delete;
    void write(const std::string& name, const std::string& bytes) const {
        std::ofstream(path / name, std::ios::binary) << bytes;
    }
};

// FakePrepare in restore mode with lines to label (a prediction run): the splits are "infer".
class InferPrepare : public FakePrepare {
public:
    InferPrepare(const StageSchema& s, std::vector<std::string> lines)
        : FakePrepare(s, 1, PrepareMode::restore), lines_(std::move(lines)) {
        splits_ = {"infer"};
    }
    const std::vector<std::string>* infer_lines() const override { return &lines_; }

private:
    std::vector<std::string> lines_;
};

}  // namespace rnnflow::test
