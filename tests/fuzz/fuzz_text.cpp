// Fuzz target: the text data path a graph's reader starts — text_file (UTF-8 and binary checks,
// lines, BOM, fractions), tokenize (char or word), vocabulary, lm_batches — through the stages
// themselves with the SDK's test harness. Byte 0 of the input picks the settings; the rest is
// the file, given as an in-memory file.
#include <string>

#include "fuzz_util.hpp"
#include "harness.hpp"
#include "stages/data/lm_batches.hpp"
#include "stages/data/text_file.hpp"
#include "stages/data/tokenize.hpp"
#include "stages/data/vocabulary.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace rnnflow;
    if (size == 0) return 0;
    const std::uint8_t knobs = data[0];
    const fuzz::MemFile file(fuzz::as_string(data + 1, size - 1));
    fuzz::expect_errors_only([&] {
        using stages::LmBatches;
        using stages::TextFile;
        using stages::Tokenize;
        namespace t = rnnflow::test;
        TextFile reader(t::params_for(TextFile::schema(), {{"train", std::vector<std::string>{file.path()}},
                                                           {"by", std::string(knobs & 1 ? "file" : "line")},
                                                           {"valid_fraction", (knobs & 2) ? 0.25 : 0.0},
                                                           {"max_line_bytes", std::int64_t{4096}}}));
        t::FakePrepare rc(TextFile::schema());
        reader.prepare(rc);

        Tokenize tok(t::params_for(Tokenize::schema(), {{"mode", std::string(knobs & 4 ? "word" : "char")},
                                                        {"lowercase", bool(knobs & 8)},
                                                        {"split_punct", bool(knobs & 16)}}));
        t::FakePrepare tc(Tokenize::schema());
        tc.info("in", rc.out_info("out"));
        for (const char* split : {"train", "valid"})
            if (rc.has_out("out", split)) tc.data<TextSplit>("in", split, rc.out<TextSplit>("out", split));
        tok.prepare(tc);

        stages::Vocabulary vocab(t::params_for(stages::Vocabulary::schema(), {{"size_cap", std::int64_t{5000}}}));
        t::FakePrepare vc(stages::Vocabulary::schema());
        vc.info("in", tc.out_info("out"));
        for (const char* split : {"train", "valid"})
            if (tc.has_out("out", split)) vc.data<TokenSplit>("in", split, tc.out<TokenSplit>("out", split));
        vocab.prepare(vc);

        LmBatches batches(t::params_for(LmBatches::schema(), {{"batch", std::int64_t{1 + (knobs >> 5)}},
                                                              {"bptt", std::int64_t{3}}}));
        t::FakePrepare bc(LmBatches::schema());
        bc.info("in", vc.out_info("out"));
        for (const char* split : {"train", "valid"})
            if (vc.has_out("out", split)) bc.data<SequenceSplit>("in", split, vc.out<SequenceSplit>("out", split));
        batches.prepare(bc);
        Batch b;
        for (const char* split : {"train", "valid"}) {
            const std::int64_t n = batches.begin(split, 0);
            for (std::int64_t i = 0; i < n && i < 64 && batches.next(b); ++i) {
            }
            batches.begin(split, 1);
            batches.skip(2);
            (void)batches.next(b);
        }
    });
    return 0;
}
