// Errors with a place: a user's file (1-based line:column), or a stage id and type.
//
// Stages throw rnnflow::Error through RNNFLOW_CHECK; the engine adds the stage id and YAML mark
// where it catches. Load-time problems are collected as Diagnostics and thrown together as a
// LoadError, so a user sees every problem of a file in one pass.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace rnnflow {

// A position in a user's file. line and col are 1-based; 0 means unknown.
struct SourceLoc {
    std::string file;
    int line = 0;
    int col = 0;
    bool known() const { return !file.empty(); }
    std::string str() const;  // "file:line:col" (or "file" when line is unknown)
};

namespace detail {
template <class... Args>
std::string concat(Args&&... args) {
    std::ostringstream os;
    (os << ... << std::forward<Args>(args));
    return os.str();
}
}  // namespace detail

// Error message pieces: `what` is the fact, `hint` how to fix it (may be empty).
class Error : public std::runtime_error {
public:
    explicit Error(std::string message, std::string hint = {}, SourceLoc loc = {})
        : std::runtime_error(message), message_(std::move(message)), hint_(std::move(hint)),
          loc_(std::move(loc)) {}

    const std::string& message() const { return message_; }
    // The message with whatever context the engine added (std::runtime_error's copy would not).
    const char* what() const noexcept override { return message_.c_str(); }
    const std::string& hint() const { return hint_; }
    const SourceLoc& loc() const { return loc_; }
    const std::string& stage() const { return stage_; }

    Error& with_hint(std::string h) { hint_ = std::move(h); return *this; }
    Error& at(SourceLoc loc) { if (!loc_.known()) loc_ = std::move(loc); return *this; }
    // Prefix "stage 'id' (type, file:line:col) context: " once, at the innermost catch.
    Error& in_stage(const std::string& id, const std::string& type, const SourceLoc& where,
                    const std::string& context = {});

    // "file:line:col: error: message\n  hint: ..." (what the CLI prints).
    virtual std::string format() const;

private:
    std::string message_;
    std::string hint_;
    SourceLoc loc_;
    std::string stage_;
};

struct Diagnostic {
    SourceLoc loc;
    std::string message;
    std::string hint;
    std::string format() const;
};

// Every problem found while loading or compiling one graph file.
class LoadError : public Error {
public:
    explicit LoadError(std::vector<Diagnostic> diags);
    const std::vector<Diagnostic>& diagnostics() const { return diags_; }
    std::string format() const override;  // every diagnostic, one after another

private:
    std::vector<Diagnostic> diags_;
};

// The closest candidate by edit distance, or "" when nothing is close enough to suggest.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);
// " did you mean 'x'?" or "" — ready to append to a hint.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace rnnflow

// Check user-facing conditions inside stages: RNNFLOW_CHECK(n > 0, "batch must be > 0, got ", n);
#define RNNFLOW_CHECK(cond, ...)                                                   \
    do {                                                                           \
        if (!(cond)) throw ::rnnflow::Error(::rnnflow::detail::concat(__VA_ARGS__)); \
    } while (0)

// Guard our own invariants (never user input): a failure is a bug in rnnflow.
#define RNNFLOW_ASSERT(cond)                                                                \
    do {                                                                                    \
        if (!(cond))                                                                        \
            throw ::rnnflow::Error(::rnnflow::detail::concat("internal error: ", #cond,     \
                                                            " failed at ", __FILE__, ":",   \
                                                            __LINE__),                      \
                                   "please report this as a bug in rnnflow");               \
    } while (0)
