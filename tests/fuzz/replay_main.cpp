// Replays files through a fuzz target without libFuzzer: the normal and sanitizer builds run
// every committed seed and every input a fuzzing run found (tests/fuzz/corpus/<target>/) through
// the same code as regression tests (ctest fuzz_replay.<target>), with g++ and no clang needed.
//   fuzz_replay_<target> FILE_OR_FOLDER ...
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    std::vector<fs::path> files;
    for (int i = 1; i < argc; ++i) {
        if (fs::is_directory(argv[i])) {
            for (const auto& e : fs::directory_iterator(argv[i]))
                if (e.is_regular_file()) files.push_back(e.path());
        } else {
            files.emplace_back(argv[i]);
        }
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
        std::ifstream is(f, std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(is)), std::istreambuf_iterator<char>());
        std::fprintf(stderr, "%s\n", f.c_str());  // a crash shows its input last
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    }
    std::printf("%zu inputs replayed, no finding\n", files.size());
    return files.empty() ? 1 : 0;
}
