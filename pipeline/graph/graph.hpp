// A graph file: YAML → GraphDef (vars, ${...}, --set applied; parameters checked against the
// registry's schemas) → CompiledGraph (Boost.Graph: edges checked, cycles found, topological
// order). Every problem is a Diagnostic with file:line:column (1-based) and a hint; all of a
// file's problems are thrown together as one LoadError.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/registry.hpp"
#include "../core/schema.hpp"

namespace rnnflow {

struct InputRef {
    std::string stage;  // producer stage id
    std::string port;   // producer output port; resolved to a name even when the file omits it
    SourceLoc loc;      // of the value in the file
};

struct ValueRef {
    std::string stage;  // stage whose resolved value is meant ("vocab")
    std::string value;  // its name ("size")
    SourceLoc loc;
};

// `init: {from: FILE, prefix: P}` on a model stage: after the stage is prepared its parameters
// are set from the safetensors FILE, parameter `name` from the tensor "<P><name>". Without
// prefix, "<stage id>.<name>" is tried first (an rnnflow checkpoint), then "<name>".
struct InitDef {
    std::string from;    // resolved against the graph's base_dir
    std::string prefix;
    bool has_prefix = false;
    bool freeze = false;  // the loaded parameters are not trained (the stage still passes gradients back)
    SourceLoc loc;
};

struct StageDef {
    std::string id;
    std::string type;
    SourceLoc loc;                          // of the stage's id key
    std::map<std::string, InputRef> inputs; // input port → producer
    Params params;                          // every schema parameter, given or defaulted
    std::map<std::string, ValueRef> refs;   // integer parameters written as "stage.value"
    std::optional<InitDef> init;
};

// The `train:` section.
struct TrainDef {
    std::int64_t epochs = 1;
    std::string keep_metric;        // "ppl" from keep: best(ppl.valid); empty: keep: last
    std::string keep_split = "valid";
    std::int64_t threads = 0;       // 0: every core
    std::int64_t max_batches = 0;   // per pass of a split; 0: all (quick runs, tests)
    std::int64_t prefetch = 4;      // batches the data source may run ahead
    std::int64_t log_every = 0;     // plain log line every N batches; 0: about 10 per epoch
    bool test = true;               // evaluate the test split (if any) with the kept checkpoint
    std::int64_t sample_length = 0; // tokens written to samples.txt after each epoch; 0: none
    // Mid-epoch checkpoints (checkpoints/last, with the data position; docs/resume.md): every
    // N training batches and/or every S seconds; 0: only at epoch ends.
    std::int64_t checkpoint_every = 0;
    std::int64_t checkpoint_seconds = 0;
    // A non-finite loss or gradient: "stop" the run, or "skip_batch" (no update; the run stops
    // after max_skipped skipped batches in a row).
    std::string nonfinite = "stop";
    std::int64_t max_skipped = 10;
    // train.early_stopping: stop when train.keep's metric has not improved by more than min_delta
    // for `patience` epochs in a row; 0: never (keep_policy.hpp).
    std::int64_t patience = 0;
    double min_delta = 0;
    SourceLoc loc;
};

struct GraphDef {
    std::string file;                // as given (used in messages)
    std::filesystem::path base_dir;  // directory of the file: relative paths resolve from here
    std::string experiment;
    std::int64_t seed = 0;
    std::vector<std::string> plugins;  // resolved against base_dir
    std::vector<StageDef> stages;      // in file order
    TrainDef train;
    std::string resolved_yaml;         // the file after vars and --set; loads as is

    const StageDef* find(const std::string& id) const;
    int index(const std::string& id) const;  // -1 if absent
};

struct Connection {
    int from_stage;  // index into GraphDef::stages
    int from_port;   // output index in the producer's schema
    int to_stage;
    int to_port;     // input index in the consumer's schema
};

struct CompiledGraph {
    GraphDef def;
    std::vector<const StageType*> types;               // per stage
    std::vector<Connection> connections;
    // [stage][input port] → index into connections, or -1 when unconnected (optional input).
    std::vector<std::vector<int>> input_conn;
    // [stage][output port] → indices into connections (its consumers, in file order).
    std::vector<std::vector<std::vector<int>>> output_conns;
    std::vector<int> order;                            // topological, producers first; ties in file order
    std::vector<std::vector<int>> upstream;            // [stage] → stages it depends on (ports and refs)
};

// Load a graph file. overrides: "path=value" (--set). Throws LoadError.
GraphDef load_graph(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                    const Registry& registry);
// Load the plug-ins a graph file lists under `plugins:` (a list, or one scalar) into `registry`,
// before load_graph checks the stages they define: a path (it holds a '/') relative to the
// file's folder, a bare name looked up on the plug-in search path (find_plugin). Every command
// that reads a graph file (run, validate, eval, sweep, ...) loads its plug-ins here. A file that
// cannot be read or parsed loads nothing: load_graph then reports it with its position. Throws
// Error naming a plug-in that cannot be found or loaded.
void load_graph_plugins(const std::filesystem::path& file, Registry& registry);
// The same from text; `name` stands for the file in messages, base_dir for relative paths.
GraphDef load_graph_text(const std::string& text, const std::string& name,
                         const std::filesystem::path& base_dir,
                         const std::vector<std::string>& overrides, const Registry& registry);

// Graph and sweep files are UTF-8 text of at most 16 MiB: the first problem (a NUL byte of a
// binary file, an invalid UTF-8 byte, the size), with its 1-based line and byte column, or
// nothing. load_graph_text and load_sweep_text check it before YAML sees the text.
std::optional<Diagnostic> text_problem(const std::string& text, const std::string& name);

// Check connections and order the stages. Throws LoadError.
CompiledGraph compile(GraphDef def, const Registry& registry);

// Graphviz text: one node per stage (id, type), one edge per connection labelled with the port
// type, dashed edges for value references.
std::string to_dot(const CompiledGraph& g);

}  // namespace rnnflow
