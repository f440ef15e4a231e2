// Shared by the libFuzzer targets (docs/fuzzing.md): what counts as a finding, and in-memory
// files for readers that take a path.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <typeinfo>

#include "pipeline/core/error.hpp"

namespace rnnflow::fuzz {

// Bad input must end in an rnnflow::Error (a message with its place): that is the expected
// outcome. Any other exception — a std::out_of_range from .at(), yaml-cpp's own exceptions,
// std::bad_alloc from an unchecked size — reaches the user as an unexplained failure, so it is a
// finding: abort, and libFuzzer keeps the input. Crashes and sanitizer reports abort anyway.
template <class Fn>
void expect_errors_only(Fn&& fn) {
    try {
        fn();
    } catch (const rnnflow::Error&) {
    } catch (const std::exception& e) {
        std::fprintf(stderr, "finding: %s escaped: %s\n", typeid(e).name(), e.what());
        std::abort();
    } catch (...) {
        std::fprintf(stderr, "finding: a non-std exception escaped\n");
        std::abort();
    }
}

// The bytes as a file without touching the disk: a memfd, named by its /proc path.
class MemFile {
public:
    explicit MemFile(const std::string& bytes) : fd_(::memfd_create("rnnflow-fuzz", MFD_CLOEXEC)) {
        if (fd_ < 0) std::abort();
        for (std::size_t done = 0; done < bytes.size();) {
            const ssize_t w = ::write(fd_, bytes.data() + done, bytes.size() - done);
            if (w <= 0) std::abort();
            done += static_cast<std::size_t>(w);
        }
        path_ = "/proc/self/fd/" + std::to_string(fd_);
    }
    ~MemFile() { ::close(fd_); }
    MemFile(const MemFile&) = delete;
    MemFile& operator=(const MemFile&) = delete;
    const std::string& path() const { return path_; }

private:
    int fd_;
    std::string path_;
};

inline std::string as_string(const std::uint8_t* data, std::size_t size) {
    return std::string(reinterpret_cast<const char*>(data), size);
}

}  // namespace rnnflow::fuzz
