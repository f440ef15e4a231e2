// The stage interface: one base class and one subclass per role. Each role base class carries
// its role as `stage_role`; Registry::add<T>() checks it against T::schema().role(), and a
// role's required ports are in role.hpp.
//
// Life of a stage instance (the engine enforces the order):
//   construct(Params)            parameters already validated against the schema
//   prepare(PrepareContext&)     in topological order: read input port infos and datasets, fit
//                                (vocabulary), set output port infos, allocate weights, build
//                                oneDNN primitives
//   per step: forward / backward (ModelStage), accumulate (MetricStage), step (OptimizerStage)
#pragma once

#include <any>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "data.hpp"
#include "error.hpp"
#include "schema.hpp"
#include "tensor.hpp"

namespace rnnflow {

// Static facts about a port, known after the producing stage's prepare.
struct PortInfo {
    PortType type = PortType::tensor;
    std::int64_t channels = -1;  // tensor: C
    std::int64_t classes = -1;   // ids / sequences: number of distinct ids (vocabulary size)
    std::shared_ptr<const Vocabulary> vocab;  // ids / sequences / vocab: the vocabulary, if any
    std::int64_t directions = -1;  // state: D, the directions per layer (1, or 2 when the state's
                                   // L*D rows hold l2r and r2l per layer); -1 unknown
};

enum class Phase { train, evaluate, infer };

// Where we are in the run, given to every per-step call.
struct StepInfo {
    Phase phase = Phase::train;
    std::string split = "train";
    std::int64_t epoch = 0;   // 0-based
    std::int64_t batch = 0;   // 0-based index within this split's pass
    bool reset_state = true;  // the batch does not continue the previous one (carried state off)
    // Per batch column: the index of its example (sentence, pair) in the split, as the source
    // numbered them; empty when columns are not examples (language-model streams). Sources that
    // bucket or shuffle set it so that outputs can be written back in input order.
    std::span<const std::int64_t> item_ids;
    bool training() const { return phase == Phase::train; }
};

// ---------------------------------------------------------------------------------------------
// Prepare phase

enum class PrepareMode {
    fit,       // a new run: data stages read and fit on the training split
    restore,   // a trained run folder: data stages load their fitted state, read no data (except
               // PrepareContext::infer_lines in prediction runs)
    evaluate,  // `rnnflow eval`: data stages read the data files as in fit, but load their fitted
               // state (vocabulary, subword model) as in restore instead of fitting it
};

class PrepareContext {
public:
    virtual ~PrepareContext() = default;
    virtual PrepareMode mode() const = 0;
    virtual const std::string& stage_id() const = 0;
    // The splits this run uses ("train", "valid", "test"), in order.
    virtual const std::vector<std::string>& splits() const = 0;

    // Input port facts; throws if the port is an unconnected optional input (check connected()).
    virtual bool connected(const std::string& input) const = 0;
    virtual const PortInfo& input_info(const std::string& input) const = 0;
    virtual void set_output_info(const std::string& output, PortInfo info) = 0;

    // Dataset values per (port, split). has_input: false when the producer gave nothing for the
    // split (e.g. no test file) or in restore mode.
    virtual bool has_input(const std::string& input, const std::string& split) const = 0;
    virtual const std::any& input_any(const std::string& input, const std::string& split) const = 0;
    virtual void put_output_any(const std::string& output, const std::string& split, std::any v) = 0;

    template <class T> const T& input(const std::string& port, const std::string& split) const {
        return *std::any_cast<const std::shared_ptr<const T>&>(input_any(port, split));
    }
    template <class T> void put_output(const std::string& port, const std::string& split, T v) {
        put_output_any(port, split, std::any(std::shared_ptr<const T>(std::make_shared<T>(std::move(v)))));
    }

    // Prediction runs (`rnnflow translate`, `predict`): the lines to label, given in restore mode;
    // never a blank one (the engine leaves empty and whitespace-only input lines out and gives
    // them an empty output line, Engine::predict), so item k is the k-th non-blank line.
    // A reader puts them out as the split "infer" (listed in splits() then), in its own format
    // (e.g. source side only for parallel text); later data stages map that split like any
    // other. nullptr in training and plain restore.
    virtual const std::vector<std::string>* infer_lines() const { return nullptr; }

    // Deterministic generator for this stage (weight init), seeded from the run seed and stage id.
    virtual std::mt19937_64& rng() = 0;
    // Folder where this stage saves (fit) or finds (restore) fitted state, created on demand:
    // RUN_DIR/state/<stage_id>/. Empty path when the run has no folder (tests).
    virtual std::filesystem::path state_dir() = 0;
    // Directory of the graph file, for resolving relative data paths.
    virtual const std::filesystem::path& base_dir() const = 0;
    // Threads the engine gives oneDNN in this run.
    virtual int threads() const = 0;
};

// ---------------------------------------------------------------------------------------------
// Exact resume (docs/resume.md). A checkpoint holds the parameters and the optimiser state; a
// stage that keeps more state that changes while a run trains — a recurrent state carried from
// batch to batch, a metric's running sums, a random generator its batches advance — puts it in
// a StageState, and gets it back when the run resumes. Stages whose behaviour depends only on
// their parameters, the run seed and StepInfo (epoch, batch) have nothing to save.
class StageState {
public:
    void put(const std::string& name, Tensor t) { tensors_[name] = std::move(t); }
    void put_text(const std::string& name, std::string text) { texts_[name] = std::move(text); }
    // Exact: the shortest text that reads back the same double.
    void put_number(const std::string& name, double v);
    // A standard random engine (std::mt19937_64, ...), through its text form.
    template <class Rng> void put_rng(const std::string& name, const Rng& rng) {
        std::ostringstream os;
        os << rng;
        put_text(name, os.str());
    }

    const Tensor* tensor(const std::string& name) const;           // nullptr if absent
    const std::string* text(const std::string& name) const;        // nullptr if absent
    double number(const std::string& name, double fallback) const; // fallback if absent
    // false if absent; throws if the text is not an engine of this type.
    template <class Rng> bool get_rng(const std::string& name, Rng& rng) const {
        const std::string* t = text(name);
        if (!t) return false;
        std::istringstream is(*t);
        is >> rng;
        RNNFLOW_CHECK(!is.fail(), "saved random generator '", name, "' does not read back");
        return true;
    }

    const std::map<std::string, Tensor>& tensors() const { return tensors_; }
    const std::map<std::string, std::string>& texts() const { return texts_; }
    bool empty() const { return tensors_.empty() && texts_.empty(); }

private:
    std::map<std::string, Tensor> tensors_;
    std::map<std::string, std::string> texts_;
};

class Stage {
public:
    virtual ~Stage() = default;
    virtual void prepare(PrepareContext& ctx) { (void)ctx; }
    // Resolved values other stages may refer to (schema().values()).
    virtual std::int64_t value(const std::string& name) const;

    // Exact resume: put what the stage must get back in `state` (names are the stage's own).
    // Called between steps, never while the stage computes; for a DataSource see there.
    virtual void save_run_state(StageState& state) const { (void)state; }
    // A resumed run: called once after prepare (a fresh fit on the same data) with what
    // save_run_state gave, before the first step. The default ignores it.
    virtual void load_run_state(const StageState& state) { (void)state; }
};

// ---------------------------------------------------------------------------------------------
// Data stages: only prepare (read inputs per split, put outputs per split).
class DataStage : public Stage {
public:
    static constexpr Role stage_role = Role::data;  // the schema's role (role.hpp)
};

// ---------------------------------------------------------------------------------------------
// Batch sources: a stream of batches per split and epoch. `next` runs ahead of the model on
// another thread, so it must only touch the source's own state.
struct Batch {
    std::vector<Tensor> outputs;  // one per output port, in schema order
    bool reset_state = true;      // see StepInfo::reset_state
    std::int64_t items = 0;       // tokens (or sentences) in the batch, for throughput
    std::vector<std::int64_t> item_ids;  // see StepInfo::item_ids (one per column, or empty)
};

//
// Resume: a pass must be a function of (split, epoch) and what prepare fitted — seed a shuffle
// from the run seed and the epoch, not from a generator that lives across passes. The engine then
// resumes a pass with begin(split, epoch) and skip(k), and every source gets exact resume
// without code of its own. A source that nevertheless keeps state across passes saves it in
// save_run_state, which the engine calls right before begin("train", epoch) of each training
// pass (a source runs ahead of the model, so its state mid-pass would be the wrong one).
class DataSource : public Stage {
public:
    static constexpr Role stage_role = Role::source;
    // Start a pass over `split`; returns the number of batches it will yield (for progress).
    virtual std::int64_t begin(const std::string& split, std::int64_t epoch) = 0;
    // Fill the next batch; false when the pass is over.
    virtual bool next(Batch& batch) = 0;
    // Right after begin: move past the first `batches` batches of the pass. Returns false (the
    // default) when the source cannot jump; the engine then calls next() that many times.
    virtual bool skip(std::int64_t batches) { (void)batches; return false; }
};

// ---------------------------------------------------------------------------------------------
// Model stages: forward, and backward when the schema says differentiable.

// Indexed by schema port order; also by name.
template <class T>
class PortArgs {
public:
    PortArgs(const StageSchema* schema, bool inputs, std::vector<T*> slots)
        : schema_(schema), inputs_(inputs), slots_(std::move(slots)) {}
    T& operator[](std::size_t i) const { return *slots_.at(i); }
    T& at(const std::string& name) const;
    bool has(const std::string& name) const;  // connected (inputs) / wanted (grads)
    std::size_t size() const { return slots_.size(); }

private:
    const StageSchema* schema_;
    bool inputs_;
    std::vector<T*> slots_;
};

using Inputs = PortArgs<const Tensor>;
using Outputs = PortArgs<Tensor>;
using Grads = PortArgs<Tensor>;  // diff_dst: gradient of the objective w.r.t. outputs;
                                 // diff_src: w.r.t. float inputs (ids get none)

// What forward keeps for backward, owned by the engine per stage and reused between steps.
struct Saved {
    std::vector<Tensor> tensors;
    std::any extra;
};

class ModelStage : public Stage {
public:
    static constexpr Role stage_role = Role::model;
    // Write every output (resize as needed). Keep in `saved` what backward needs.
    virtual void forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) = 0;
    // Overwrite diff_src for each float input that has a slot (diff_src.has(name)); ADD into the
    // gradients of params() (the optimiser zeroes them). diff_dst slots that no consumer
    // reached hold zeros of the output's shape.
    virtual void backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                          Grads& diff_src, const StepInfo& step) {
        (void)in; (void)out; (void)saved; (void)diff_dst; (void)diff_src; (void)step;
    }
    virtual std::span<Param> params() { return {}; }
};

// ---------------------------------------------------------------------------------------------
// Optimisers: one step per batch over the params upstream of the loss they minimise.
class OptimizerStage : public Stage {
public:
    static constexpr Role stage_role = Role::optimizer;
    // Called once with the parameters it owns (stable order), before any step.
    virtual void attach(std::vector<std::pair<std::string, Param*>> params) = 0;
    virtual void begin_epoch(std::int64_t epoch) { (void)epoch; }
    // Update values from grads, then zero grads. Returns the global gradient norm before
    // clipping (reported in metrics).
    virtual double step(const StepInfo& step) = 0;
    virtual double learning_rate() const = 0;
    // Optimiser state for checkpoints, as named tensors ("<param>.m").
    virtual std::vector<std::pair<std::string, const Tensor*>> state() const { return {}; }
    virtual void load_state(const std::map<std::string, Tensor>& state) { (void)state; }
};

// ---------------------------------------------------------------------------------------------
// Metrics: aggregate over one pass of a split.
struct MetricValue {
    std::string name;   // "" = the stage's main metric, reported as "<stage_id>"; else
                        // reported as "<stage_id>.<name>"
    double value = 0;
    bool higher_is_better = false;
};

// Where a metric stage writes files after a pass (translations, confusion matrices, plots).
struct OutputContext {
    std::filesystem::path dir;  // RUN_DIR/<stage_id>/, created by the engine
    std::string split;          // "valid", "test", ...
    std::int64_t epoch = 0;     // 1-based epoch of the pass; 0: the final evaluation (kept checkpoint)
};

// Resume: a metric that sums over a pass saves its running sums in save_run_state (a
// checkpoint may fall in the middle of a training pass); without them the resumed pass reports
// only the batches after the resume, and the engine warns.
class MetricStage : public Stage {
public:
    static constexpr Role stage_role = Role::metric;
    virtual void begin(const std::string& split) = 0;
    // Evaluation passes and prediction runs (phase infer: inputs that need targets may be
    // empty tensors; accumulate what can be computed).
    virtual void accumulate(const Inputs& in, const StepInfo& step) = 0;
    virtual std::vector<MetricValue> end() = 0;
    // After end() of an evaluation pass, when the run has a folder. Write files atomically
    // (write_file_atomic in data.hpp) named after ctx.split, e.g.
    // "valid.translations.txt"; each pass overwrites the previous epoch's.
    virtual void write_outputs(const OutputContext& ctx) { (void)ctx; }
    // Prediction runs: true if the stage turns each input item into a line of text (a
    // translation, a label); the engine then runs it in the infer pass and returns predictions().
    virtual bool predicts() const { return false; }
    // After end() of the infer pass: one line per input item, in item order (StepInfo::item_ids).
    virtual std::vector<std::string> predictions() { return {}; }
};

// ---------------------------------------------------------------------------------------------
// Samplers: generate with the trained model in the infer phase.
class ModelRunner {
public:
    virtual ~ModelRunner() = default;
    // Run the model forward on `input`, fed in place of the batch source's outputs: ids (T, N)
    // for a token model (sampler), f32 frames (T, N, C) for a frame model (frame_sampler);
    // returns the sampler's `logits` input, (T, N, V). reset: start from zero recurrent state,
    // else continue from the previous call.
    virtual const Tensor& run(const Tensor& input, bool reset) = 0;
};

// Uniform double in [0, 1) from 53 random bits: the same on every standard library, so that a
// sampler's seed gives the same output on every machine.
inline double uniform01(std::mt19937_64& rng) {
    return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
}

// What one generation asks for; a sampler takes its own parameter for what is left unset, and
// ignores what is not its kind's (a text sampler has no frames to prime from, and so on).
struct SampleRequest {
    std::string prime;            // text to condition on ("" = start from the sampler's default)
    std::int64_t length = -1;     // tokens (frames) to generate; <= 0: the sampler's parameter
    std::int64_t seed = -1;       // -1: the sampler's own seed parameter
    double temperature = -1;      // < 0: the sampler's parameter
    std::int64_t top_k = -1;      // < 0: the sampler's parameter
    // Frame samplers: the piece whose first frames start the sample, "SPLIT:INDEX" of the run's
    // data or a note-set JSON file ("FILE" or "FILE:SPLIT:INDEX"); "" = the sampler's parameter,
    // "none" = no priming. prime_frames < 0: the sampler's parameter.
    std::string prime_from;
    std::int64_t prime_frames = -1;
    // Samplers that write files (MIDI, pictures) write OUTPUT.<ext>; empty: no files.
    std::filesystem::path output;
    // Nucleus sampling (after top_k; < 0: the sampler's parameter). Last, so the members before
    // it keep their offsets (ABI 4 of the unreleased 0.4: registry.hpp).
    double top_p = -1;
};
class SamplerStage : public Stage {
public:
    static constexpr Role stage_role = Role::sampler;
    virtual std::string generate(ModelRunner& model, const SampleRequest& req) = 0;
};

// ---------------------------------------------------------------------------------------------
template <class T>
T& PortArgs<T>::at(const std::string& name) const {
    const int i = inputs_ ? schema_->input_index(name) : schema_->output_index(name);
    RNNFLOW_CHECK(i >= 0, "stage type '", schema_->type(), "' has no port '", name, "'");
    T* p = slots_.at(static_cast<std::size_t>(i));
    RNNFLOW_CHECK(p != nullptr, "port '", name, "' of '", schema_->type(), "' is not connected");
    return *p;
}
template <class T>
bool PortArgs<T>::has(const std::string& name) const {
    const int i = inputs_ ? schema_->input_index(name) : schema_->output_index(name);
    return i >= 0 && slots_.at(static_cast<std::size_t>(i)) != nullptr;
}

}  // namespace rnnflow
