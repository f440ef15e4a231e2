// Fuzz target: vocab.tsv, the fitted vocabulary a run folder keeps (state/<stage>/vocab.tsv)
// and `rnnflow generate` reads back (Vocabulary::load), then tokenising and detokenising a
// prompt with the tokenizer settings its header gives.
#include <string>

#include "fuzz_util.hpp"
#include "pipeline/core/data.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace rnnflow;
    const fuzz::MemFile file(fuzz::as_string(data, size));
    fuzz::expect_errors_only([&] {
        const Vocabulary v = Vocabulary::load(file.path());
        const auto tokens = v.tokenizer().tokenize("The quick brown fox, 42 jumps!");
        std::vector<std::string> back;
        for (const auto& t : tokens) {
            const std::int32_t id = v.id(t);
            if (id >= 0) back.push_back(v.token(id));
        }
        (void)v.tokenizer().detokenize(back);
    });
    return 0;
}
