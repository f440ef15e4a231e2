// Fuzz target: sweep files (load_sweep_text: parsing, checks, expansion into trials). Relative
// graph paths resolve in a folder holding g.yaml, a real graph, so inputs that name it reach the
// expansion.
#include <filesystem>
#include <fstream>
#include <string>

#include "fuzz_util.hpp"
#include "pipeline/sweep/spec.hpp"

namespace {
std::filesystem::path base;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    base = std::filesystem::temp_directory_path() / ("rnnflow-fuzz-sweep-" + std::to_string(::getpid()));
    std::filesystem::create_directories(base);
    std::ofstream(base / "g.yaml") << "stages:\n  corpus: {type: text_file, train: [a.txt]}\n";
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text = rnnflow::fuzz::as_string(data, size);
    rnnflow::fuzz::expect_errors_only([&] { (void)rnnflow::load_sweep_text(text, "fuzz.yaml", base); });
    return 0;
}
