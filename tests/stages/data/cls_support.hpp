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

// A reader S prepared (fit mode unless `mode`) on files in `d` with parameters `set`; its
// "skipped" value into *skipped.
template <class S>
FakePrepare run_reader(const ClsTempDir& d, const std::map<std::string, ParamValue>& set,
                       std::int64_t* skipped = nullptr, PrepareMode mode = PrepareMode::fit) {
    static const StageSchema s = S::schema();
    S stage(params_for(s, set));
    FakePrepare ctx(s, 1, mode);
    ctx.base(d.path);
    stage.prepare(ctx);
    if (skipped) *skipped = stage.value("skipped");
    return ctx;
}

// The message of the Error that run_reader<S> throws, or "(no error)".
template <class S>
std::string reader_message(const ClsTempDir& d, const std::map<std::string, ParamValue>& set) {
    try {
        run_reader<S>(d, set);
    } catch (const Error& e) {
        return e.message();
    }
    return "(no error)";
}

}  // namespace rnnflow::test
