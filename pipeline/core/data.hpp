// Dataset payloads (prepare phase) and the vocabulary.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace rnnflow {

// Write bytes to `file` atomically: FILE.tmp, flush, fsync, rename over FILE (a reader sees the
// old file or the new one, never a torn one). Throws Error naming the file.
void write_file_atomic(const std::filesystem::path& file, const std::string& bytes);
// Called by write_file_atomic halfway through writing each file, for the engine's fault
// injection in tests (RNNFLOW_FAULT=kill@checkpoint:N, pipeline/exec/resume.hpp); nullptr (the
// default) for none. The SDK knows nothing of checkpoints: the hook decides what to act on.
using MidWriteHook = void (*)(const std::filesystem::path& file);
void set_mid_write_hook(MidWriteHook hook);

// How text becomes tokens; kept with the vocabulary so that prompts given to a trained run are
// tokenised exactly as its training data was.
struct TokenizerSpec {
    std::string mode = "char";  // "char" (UTF-8 code points) or "word"
    bool lowercase = false;
    bool split_punct = false;   // word mode: punctuation becomes tokens of its own
    bool keep_inner_punct = false;  // with split_punct: punctuation between two letters or digits
                                    // stays in the word (don't, e-mail, 3.14, 1,000)
    bool fold_numbers = false;  // every ASCII digit becomes '0' (1984 → 0000, 3.14 → 0.00)
    std::vector<std::string> tokenize(const std::string& text) const;
    // Inverse for display: char mode concatenates, word mode joins with spaces.
    std::string detokenize(const std::vector<std::string>& tokens) const;
};

struct TextSplit {
    std::vector<std::string> items;  // lines, or whole files
    std::string origin;              // where it came from, for messages ("data/train.txt")
};

struct TokenSplit {
    std::vector<std::vector<std::string>> items;
    std::string origin;
    TokenizerSpec spec;  // how the items were made; the vocabulary keeps it for prompts
};

class Vocabulary;

struct SequenceSplit {
    std::vector<std::vector<std::int32_t>> items;
    std::string origin;
};

// Dense inputs: one f32 matrix (rows, dim) per item — a feature vector (rows = 1), a grid of
// region vectors (rows = F), audio or music frames. Every item of a split has the same dim.
struct FrameSplit {
    struct Item {
        std::int64_t rows = 0;
        std::vector<float> values;  // (rows, dim) row-major: values[r * dim + d]
    };
    std::vector<Item> items;
    std::int64_t dim = 0;  // D, the same for every item
    std::string origin;    // where it came from, for messages ("data/train.npy")
};

// Token ↔ id. Specials come first in the order given; then tokens by descending count, ties by
// token text, so the same training data gives the same ids on every machine.
class Vocabulary {
public:
    Vocabulary() = default;
    Vocabulary(std::vector<std::string> tokens, std::vector<std::int64_t> counts,
               std::vector<std::string> specials, TokenizerSpec spec);

    std::int64_t size() const { return static_cast<std::int64_t>(tokens_.size()); }
    std::int32_t id(const std::string& token) const;  // unk id (or -1 without <unk>) if unknown
    bool contains(const std::string& token) const { return index_.count(token) != 0; }
    const std::string& token(std::int32_t id) const { return tokens_.at(static_cast<std::size_t>(id)); }
    std::int64_t count(std::int32_t id) const { return counts_.at(static_cast<std::size_t>(id)); }
    std::int32_t unk() const { return unk_; }  // -1 if the vocabulary has no <unk>
    std::int32_t special(const std::string& name) const;  // -1 if absent
    const std::vector<std::string>& specials() const { return specials_; }
    const std::vector<std::string>& tokens() const { return tokens_; }
    const TokenizerSpec& tokenizer() const { return spec_; }

    // One line a token: "id\ttoken\tcount", after a header line with the tokenizer settings.
    // Tokens are escaped (\\, \t, \n, \r) so any character round-trips.
    void save(const std::filesystem::path& file) const;
    static Vocabulary load(const std::filesystem::path& file);

private:
    std::vector<std::string> tokens_;
    std::vector<std::int64_t> counts_;
    std::vector<std::string> specials_;
    std::unordered_map<std::string, std::int32_t> index_;
    std::int32_t unk_ = -1;
    TokenizerSpec spec_;
};

}  // namespace rnnflow
