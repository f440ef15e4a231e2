// A fresh folder under the system's temporary folder, removed with everything in it when the
// object goes: for tests that write files.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>

namespace rnnflow::test {

struct TempDir {
    std::filesystem::path path;
    // `prefix` names the folder (with the process id and a random number), to tell tests apart.
    explicit TempDir(const std::string& prefix = "rnnflow_test") {
        std::random_device rd;
        path = std::filesystem::temp_directory_path() /
               (prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

}  // namespace rnnflow::test
