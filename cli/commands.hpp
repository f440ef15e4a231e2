// Text the CLI prints about the registry.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "pipeline/core/data.hpp"
#include "pipeline/core/registry.hpp"
#include "pipeline/core/tensor.hpp"

namespace rnnflow {

// Reference manual of stage types (all when `types` is empty): ports, parameters, values.
std::string stages_text(const Registry& r, const std::vector<std::string>& types);
std::string stages_markdown(const Registry& r, const std::vector<std::string>& types);
// `schema`: a JSON Schema (draft-07) of graph files with every registered stage type.
std::string graph_json_schema(const Registry& r);

// `new-stage`: "" when `name` can name a new stage type and plug-in, else why not.
std::string check_stage_name(const std::string& name, const Registry& r);
// The files of a new plug-in project (path relative to its folder, content). `prefix`: the
// rnnflow install prefix named in its README.
std::vector<std::pair<std::string, std::string>> scaffold_files(const std::string& name,
                                                                const std::string& prefix);

// `vectors`: an embedding's rows in the GloVe text format, "token v1 ... vC" per line in id
// order, each value the shortest decimal text that reads back as the same float. Rows of the
// vocabulary's specials (<pad>, <unk>, ...) are left out (the embedding stage's `pretrained:`
// reader never looks them up), and so are tokens the format cannot hold (empty, or with a space,
// tab or line break). With C = 1 the text starts with word2vec's "count 1" header line.
struct VectorsCount {
    std::int64_t rows = 0, specials = 0, unwritable = 0;
};
std::string embedding_vectors_text(const Vocabulary& vocab, const Tensor& weight, VectorsCount* count = nullptr);
// `vectors --neighbours WORD`: the k tokens whose rows are nearest to WORD's by cosine similarity
// (in double), most similar first (ties in id order); WORD (tokenised as the vocabulary's
// tokenizer does, so lower-cased when it lower-cases) must be one token of the vocabulary. WORD
// itself, the specials and zero rows are left out.
std::vector<std::pair<std::string, double>> nearest_neighbours(const Vocabulary& vocab, const Tensor& weight,
                                                              const std::string& word, std::int64_t k);

// `score` (cli/score.cpp): each line's log-probability under a language model run on its ids.
// With <eos> in the vocabulary a line is fed as <eos> w1 ... wn from a zero state (the model saw
// <eos> before every sentence) and w1 ... wn <eos> are scored: n + 1 tokens, as a language model
// with append_eos counts them; without <eos>, w1 is given and w2 ... wn are scored (n - 1).
// Tokens not in the vocabulary are scored as <unk> (LineScore::unknown lists them); an empty
// line, or one with nothing to predict, is an error naming WHERE:LINE.
struct ScoreOptions {
    std::int64_t next = 0;  // > 0: the K most probable next tokens after each line
    bool carry = false;     // carry the recurrent state from line to line (as an evaluation
                            // pass over the lines as one text does), instead of a zero state
};
struct LineScore {
    std::int64_t tokens = 0;   // scored tokens, <eos> included
    double logprob = 0;        // Σ ln p(token | what came before), in nats
    std::vector<std::string> unknown;  // tokens scored as <unk>
    std::vector<std::pair<std::int32_t, double>> next;  // (id, probability), most probable first
};
std::vector<LineScore> score_lines(ModelRunner& model, const Vocabulary& vocab, const std::vector<std::string>& lines,
                                   const ScoreOptions& opt, const std::string& where);
// A TSV table: "line tokens unk logprob bits ppl text" per line (logprob natural log, bits =
// log2 p, ppl = exp(-logprob / tokens)), "next RANK TOKEN PROB" rows after a line with --next,
// then a "total" row over all lines.
std::string score_text(const std::vector<LineScore>& scores, const std::vector<std::string>& lines,
                       const Vocabulary& vocab);

}  // namespace rnnflow

#include <filesystem>
#include <ostream>

#include "pipeline/exec/engine.hpp"

namespace rnnflow {

class Sweep;
struct SweepSpec;

// `rnnflow sweep FILE ...` (cli/sweep.cpp).
int cmd_sweep(const std::vector<std::string>& args);
// `rnnflow report DIR`, `rnnflow compare RUN_A RUN_B ...` (cli/report.cpp).
int cmd_report(const std::vector<std::string>& args);
int cmd_compare(const std::vector<std::string>& args);
int cmd_runs(const std::vector<std::string>& args);
// `rnnflow ensemble RUN_A RUN_B ...` (cli/ensemble.cpp).
int cmd_ensemble(const std::vector<std::string>& args);

// MPI (cli/mpi.cpp). A process is an MPI process when a launcher (mpirun, srun) says so in the
// environment, or when --mpi asks for it; a build without MPI then refuses with
// "MPI is unavailable in this build".
bool mpi_launched();
class MpiSession {
public:
    explicit MpiSession(bool asked);  // initialises MPI when launched or asked
    ~MpiSession();                    // finalises it
    MpiSession(const MpiSession&) = delete;
    MpiSession& operator=(const MpiSession&) = delete;
    bool active() const { return active_; }
    int rank() const { return rank_; }
    int size() const { return size_; }
    // Every process stops with this exit code (an error on one rank must not leave the others
    // waiting in a collective).
    [[noreturn]] void abort(int code) const;

private:
    bool active_ = false;
    int rank_ = 0, size_ = 1;
};

// Data-parallel training over MPI_COMM_WORLD: this rank's share of every training batch, and
// the gradients of the combined batch (weighted by each rank's loss count) on every rank, bit
// for bit the same (reduced on rank 0, then broadcast).
void mpi_data_parallel(RunOptions& opt, const MpiSession& mpi);

// A sweep across ranks: rank 0 owns `sweep` (the state) and schedules; it also runs `parallel`
// trials itself; every other rank runs one trial at a time with `threads` oneDNN threads.
// `sweep` is null on ranks other than 0. Returns when every trial has finished.
void mpi_sweep(Sweep* sweep, const MpiSession& mpi, int parallel, int threads, const Registry& registry,
               std::ostream* log);

}  // namespace rnnflow
