// Fuzz target: the readers of labelled and paired data — tsv_text (TSV/CSV with quoting and
// headers), conllu, conll_columns (CoNLL-2003 NER columns, tag-scheme conversion), parallel_text
// (two aligned files or one TSV) and label_lines — through the stages themselves with the SDK's
// test harness — and the predictions files `rnnflow ensemble` reads (two members, ensembled when
// both parse). Byte 0 picks the reader and its settings; the
// rest is the file (for two-file readers, split at the first 0x01 byte), as in-memory files.
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "harness.hpp"
#include "stages/data/conll_columns.hpp"
#include "stages/data/conllu.hpp"
#include "stages/data/label_lines.hpp"
#include "stages/data/parallel_text.hpp"
#include "stages/data/tsv_text.hpp"
#include "stages/eval/ensemble.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace rnnflow;
    namespace t = rnnflow::test;
    if (size == 0) return 0;
    const std::uint8_t knobs = data[0];
    const std::string body = fuzz::as_string(data + 1, size - 1);
    const auto cut = body.find('\x01');
    const fuzz::MemFile first(body.substr(0, cut));
    const fuzz::MemFile second(cut == std::string::npos ? std::string() : body.substr(cut + 1));
    const std::string on_error = knobs & 8 ? "skip" : "error";
    fuzz::expect_errors_only([&] {
        switch (knobs & 3) {
            case 0: {
                using stages::TsvText;
                static const char* delims[] = {"tab", "comma", "space", "semicolon"};
                TsvText r(t::params_for(TsvText::schema(), {{"train", first.path()},
                                                             {"delimiter", std::string(delims[(knobs >> 4) & 3])},
                                                             {"quoting", std::string(knobs & 4 ? "csv" : "none")},
                                                             {"header", bool(knobs & 64)},
                                                             {"text", std::string(knobs & 64 ? "sentence" : "2")},
                                                             {"label", std::string(knobs & 64 ? "label" : "1")},
                                                             {"max_fields", std::int64_t{knobs & 128 ? 2 : 0}},
                                                             {"on_error", on_error}}));
                t::FakePrepare ctx(TsvText::schema());
                r.prepare(ctx);
                break;
            }
            case 1: {
                if (knobs & 16) {  // conll_columns: word and label columns, scheme, digit folding
                    using stages::ConllColumns;
                    static const char* schemes[] = {"file", "iob1", "iob2", "iobes"};
                    ConllColumns r(t::params_for(ConllColumns::schema(),
                                                 {{"train", first.path()},
                                                  {"word", std::int64_t{knobs & 4 ? -2 : 0}},
                                                  {"label", std::int64_t{knobs & 128 ? 1 : -1}},
                                                  {"scheme", std::string(schemes[(knobs >> 5) & 3])},
                                                  {"digits", std::string(knobs & 4 ? "zero" : "keep")},
                                                  {"on_error", on_error}}));
                    t::FakePrepare ctx(ConllColumns::schema());
                    r.prepare(ctx);
                    break;
                }
                using stages::Conllu;
                Conllu r(t::params_for(Conllu::schema(), {{"train", first.path()},
                                                          {"label", std::string(knobs & 4 ? "DEPREL" : "UPOS")},
                                                          {"on_error", on_error}}));
                t::FakePrepare ctx(Conllu::schema());
                r.prepare(ctx);
                break;
            }
            case 2: {
                using stages::ParallelText;
                std::vector<std::string> files{first.path()};
                if (knobs & 4) files.push_back(second.path());
                static const char* empty[] = {"drop", "keep", "error", "drop"};
                ParallelText r(t::params_for(ParallelText::schema(), {{"train", files},
                                                                      {"source_column", std::int64_t{1 + ((knobs >> 4) & 1)}},
                                                                      {"target_column", std::int64_t{2 + ((knobs >> 5) & 1)}},
                                                                      {"empty", std::string(empty[(knobs >> 6) & 3])}}));
                t::FakePrepare ctx(ParallelText::schema());
                r.prepare(ctx);
                break;
            }
            default: {
                if (knobs & 16) {  // classification_metrics' predictions files, as `rnnflow ensemble` reads them
                    const auto a = stages::read_prediction_table(first.path());
                    const auto b = stages::read_prediction_table(second.path());
                    stages::ensemble_tables({a, b}, knobs & 32);
                    break;
                }
                using stages::LabelLines;
                LabelLines r(t::params_for(LabelLines::schema(), {{"train", first.path()},
                                                                  {"train_labels", second.path()},
                                                                  {"on_error", on_error}}));
                t::FakePrepare ctx(LabelLines::schema());
                r.prepare(ctx);
                break;
            }
        }
    });
    return 0;
}
