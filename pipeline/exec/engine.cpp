#include "engine.hpp"

#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <numeric>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <limits>
#include <mutex>
#include <set>
#include <unordered_map>
#include <sstream>
#include <type_traits>

#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/task_arena.h>

#include "../core/role.hpp"
#include "../core/metric_name.hpp"
#include "guards.hpp"
#include "keep_policy.hpp"
#include "metrics_log.hpp"
#include "progress.hpp"
#include "resume.hpp"
#include "run_status.hpp"
#include "shard.hpp"

namespace rnnflow {

namespace flow = oneapi::tbb::flow;
using Clock = std::chrono::steady_clock;

int available_cores() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
    return std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)) > 0 ? static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)) : 1;
}

double MetricsRow::get(const std::string& name) const {
    for (const auto& [k, v] : values)
        if (k == name) return v;
    return std::numeric_limits<double>::quiet_NaN();
}

namespace {

// Each thread that calls oneDNN sets its own OpenMP team size (oneDNN uses the caller's
// omp_get_max_threads()).
void set_omp_threads(int n) {
    thread_local int current = -1;
    if (current != n) {
        omp_set_num_threads(n);
        current = n;
    }
}

// Run `fn`, turning any exception into an rnnflow::Error that names the stage. `context` is a
// string, or a callable giving one, evaluated only when something went wrong (per-step calls
// must not build strings).
template <class Ctx>
std::string context_text(Ctx&& context) {
    if constexpr (std::is_invocable_v<Ctx>) return context();
    else return std::string(context);
}

template <class Ctx, class Fn>
void guarded(const StageDef& def, Ctx&& context, Fn&& fn) {
    try {
        fn();
    } catch (Error& e) {
        e.in_stage(def.id, def.type, def.loc, context_text(context));
        throw;
    } catch (const std::exception& e) {
        Error err(e.what());
        err.in_stage(def.id, def.type, def.loc, context_text(context));
        throw err;
    }
}

struct BatchMsg {
    Batch* batch = nullptr;
    std::int64_t index = 0;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
struct Engine::Impl {
    struct Node {
        int idx = 0;
        const StageDef* def = nullptr;
        const StageType* type = nullptr;
        const StageSchema* schema = nullptr;
        std::unique_ptr<Stage> stage;
        ModelStage* model = nullptr;
        DataSource* source = nullptr;
        OptimizerStage* optim = nullptr;
        MetricStage* metric = nullptr;
        SamplerStage* sampler = nullptr;
        std::vector<PortInfo> out_info;
        std::vector<bool> out_info_set;
        std::vector<Tensor> outputs;   // model stages: per output port, rewritten every step
        std::vector<Tensor> diff_dst;  // per output port: sum over consumers
        std::vector<Tensor> diff_src;  // per input port: written by backward
        Saved saved;
        std::mt19937_64 rng;
    };

    Engine& self;
    const CompiledGraph& g;
    std::vector<Node> nodes;
    std::map<std::string, std::any> datasets;  // "stage/port/split"
    int source_idx = -1;
    int optim_idx = -1;
    int loss_idx = -1;       // the stage whose output the optimiser minimises
    int loss_port = -1;
    int sampler_idx = -1;
    int sampler_logits_port = -1;  // the sampler's role port role_port::sampler_logits
    // What the infer phase computes (ModelRunner::run): the output feeding the sampler's logits,
    // else the minimised loss's first tensor input from a model stage (a language model's logits).
    int infer_stage = -1, infer_port = -1;
    std::vector<int> metric_idx;
    std::vector<bool> in_backward;  // B: stages that run backward in training
    std::vector<std::pair<std::string, Param*>> trainable;  // what the optimiser updates
    std::map<std::string, bool> higher_is_better;
    // Prediction runs: the input lines that are not blank (split "infer", what readers see) and,
    // per input line, its index among them, or -1 for a blank line (whose output line is empty).
    std::vector<std::string> infer_lines;
    std::vector<std::int64_t> infer_index;

    // The step being executed (steps are serial).
    BatchMsg current;
    StepInfo step;
    const Tensor* infer_ids = nullptr;  // infer phase: the ids or frames fed in place of the source

    // Batch objects recycled between steps: no allocation once the pool is warm.
    std::mutex pool_mutex;
    std::vector<std::unique_ptr<Batch>> pool;
    std::vector<Batch*> free_batches;

    // Running totals of one pass.
    double pass_loss_sum = 0, pass_loss_count = 0, pass_grad_norm_sum = 0;
    std::int64_t pass_steps = 0, pass_items = 0;

    std::unique_ptr<MetricsLog> metrics_log;
    RunStatusFile status;  // status.json (fit mode in a run folder)
    std::unique_ptr<oneapi::tbb::task_arena> arena;

    // Resume, checkpoints and numerical guards (docs/resume.md; helpers in resume.cpp, guards.cpp).
    std::function<void(bool training)> after_step;  // set by train(): checkpoints, interrupts
    NonfiniteGuard guard;                      // train.nonfinite, train.max_skipped
    std::int64_t pass_batches = 0;             // what the source's begin() announced
    std::int64_t train_batches = -1;           // ... for the training split
    std::int64_t expect_train_batches = -1;    // a resumed run: what its checkpoint recorded
    double pass_seconds_before = 0;            // a resumed pass: its seconds before the resume
    Clock::time_point pass_t0;
    std::map<int, StageState> resume_metric_state;  // a resumed pass: metric sums to restore
    StageState source_snapshot;                // the source's run state before this training pass

    Impl(Engine& e, const CompiledGraph& graph) : self(e), g(graph) {}

    // --- graph structure -------------------------------------------------------------------
    const Connection* input_conn(int n, int port) const {
        const int c = g.input_conn[static_cast<std::size_t>(n)][static_cast<std::size_t>(port)];
        return c < 0 ? nullptr : &g.connections[static_cast<std::size_t>(c)];
    }
    bool is_model(int n) const { return nodes[static_cast<std::size_t>(n)].model != nullptr; }

    // Model stages needed to compute the inputs of `targets` (themselves included when model).
    std::vector<bool> model_ancestors(const std::vector<int>& targets) const {
        std::vector<bool> need(nodes.size(), false);
        std::vector<int> stack(targets.begin(), targets.end());
        while (!stack.empty()) {
            const int n = stack.back();
            stack.pop_back();
            const auto& node = nodes[static_cast<std::size_t>(n)];
            if (node.model) {
                if (need[static_cast<std::size_t>(n)]) continue;
                need[static_cast<std::size_t>(n)] = true;
            }
            for (std::size_t i = 0; i < node.schema->inputs().size(); ++i)
                if (const auto* c = input_conn(n, static_cast<int>(i)); c && is_model(c->from_stage))
                    stack.push_back(c->from_stage);
        }
        return need;
    }

    const Tensor* input_tensor(int n, int port) const {
        const auto* c = input_conn(n, port);
        if (!c) return nullptr;
        const auto& p = nodes[static_cast<std::size_t>(c->from_stage)];
        if (p.source) {
            if (infer_ids) return infer_ids;
            return &current.batch->outputs.at(static_cast<std::size_t>(c->from_port));
        }
        return &p.outputs.at(static_cast<std::size_t>(c->from_port));
    }

    Inputs inputs_of(int n) const {
        const auto& node = nodes[static_cast<std::size_t>(n)];
        std::vector<const Tensor*> v(node.schema->inputs().size(), nullptr);
        for (std::size_t i = 0; i < v.size(); ++i) v[i] = input_tensor(n, static_cast<int>(i));
        return Inputs(node.schema, true, std::move(v));
    }

    // Roles: one data source, at most one optimiser, the minimised loss, metrics, a sampler.
    // Role ports are taken from the role contracts (role.hpp), which the registry checked for each
    // type and the compiler for this graph: they exist and are connected.
    void find_roles() {
        std::vector<std::string> sources;
        for (auto& node : nodes) {
            if (node.source) { sources.push_back(node.def->id); source_idx = node.idx; }
            if (node.optim) {
                RNNFLOW_CHECK(optim_idx < 0, "the graph has two optimisers ('",
                              nodes[static_cast<std::size_t>(optim_idx)].def->id, "' and '", node.def->id,
                              "'); this engine trains with one");
                optim_idx = node.idx;
            }
            if (node.metric) metric_idx.push_back(node.idx);
            if (node.sampler) sampler_idx = node.idx;
        }
        if (sources.size() != 1)
            throw Error(sources.empty() ? "the graph has no batch source (e.g. lm_batches)"
                                        : "the graph has " + std::to_string(sources.size()) + " batch sources; this engine runs one",
                        "one stage of role 'source' feeds the model its batches");
        if (optim_idx >= 0) {
            const auto& on = nodes[static_cast<std::size_t>(optim_idx)];
            const int port = role_port_index(*on.schema, role_port::optimizer_minimize);
            RNNFLOW_ASSERT(port >= 0);
            const Connection* c = input_conn(optim_idx, port);
            RNNFLOW_ASSERT(c != nullptr);
            loss_idx = c->from_stage;
            loss_port = c->from_port;
            RNNFLOW_CHECK(is_model(loss_idx), "stage '", on.def->id, "' minimises '",
                          nodes[static_cast<std::size_t>(loss_idx)].def->id, "', which is not a model stage");
        }
        if (sampler_idx >= 0) {
            sampler_logits_port = role_port_index(*nodes[static_cast<std::size_t>(sampler_idx)].schema,
                                                  role_port::sampler_logits);
            RNNFLOW_ASSERT(sampler_logits_port >= 0 && input_conn(sampler_idx, sampler_logits_port) != nullptr);
        }
        find_infer_output();
    }

    void find_infer_output() {
        const Connection* c = sampler_idx >= 0 ? input_conn(sampler_idx, sampler_logits_port) : nullptr;
        if (!c && loss_idx >= 0) {
            const auto& ports = nodes[static_cast<std::size_t>(loss_idx)].schema->inputs();
            for (std::size_t i = 0; !c && i < ports.size(); ++i) {
                const Connection* in = input_conn(loss_idx, static_cast<int>(i));
                if (in && is_model(in->from_stage) && ports[i].type == PortType::tensor) c = in;
            }
        }
        if (c) {
            infer_stage = c->from_stage;
            infer_port = c->from_port;
        }
    }

    // B: stages that run backward — differentiable, on a differentiable path to the loss, and
    // with trainable parameters at or before them.
    void mark_backward_stages() {
        const std::size_t N = nodes.size();
        in_backward.assign(N, false);
        if (loss_idx < 0) return;
        std::vector<bool> reach(N, false);
        reach[static_cast<std::size_t>(loss_idx)] = nodes[static_cast<std::size_t>(loss_idx)].schema->is_differentiable();
        for (auto it = g.order.rbegin(); it != g.order.rend(); ++it) {
            const int n = *it;
            auto& node = nodes[static_cast<std::size_t>(n)];
            if (!node.model || !node.schema->is_differentiable() || reach[static_cast<std::size_t>(n)]) continue;
            for (const auto& conns : g.output_conns[static_cast<std::size_t>(n)])
                for (int ci : conns)
                    if (reach[static_cast<std::size_t>(g.connections[static_cast<std::size_t>(ci)].to_stage)])
                        reach[static_cast<std::size_t>(n)] = true;
        }
        for (int n : g.order) {
            if (!reach[static_cast<std::size_t>(n)]) continue;
            auto& node = nodes[static_cast<std::size_t>(n)];
            bool b = false;
            for (auto& p : node.model->params()) b = b || p.trainable;
            for (std::size_t i = 0; i < node.schema->inputs().size(); ++i)
                if (const auto* c = input_conn(n, static_cast<int>(i)); c && in_backward[static_cast<std::size_t>(c->from_stage)])
                    b = true;
            in_backward[static_cast<std::size_t>(n)] = b;
        }
    }

    // The optimiser owns the parameters of every stage upstream of its loss.
    void attach_optimizer() {
        if (optim_idx < 0) return;
        const std::vector<bool> up = model_ancestors({loss_idx});
        std::vector<std::pair<std::string, Param*>> params;
        for (int n : g.order) {
            if (!up[static_cast<std::size_t>(n)]) continue;
            auto& node = nodes[static_cast<std::size_t>(n)];
            for (auto& p : node.model->params())
                if (p.trainable) params.emplace_back(node.def->id + "." + p.name, &p);
        }
        auto& on = nodes[static_cast<std::size_t>(optim_idx)];
        trainable = params;
        guarded(*on.def, "prepare", [&] { on.optim->attach(std::move(params)); });
    }

    // --- per-step work ----------------------------------------------------------------------
    void forward(int n) {
        auto& node = nodes[static_cast<std::size_t>(n)];
        guarded(*node.def, [this] { return step_context("forward"); }, [&] {
            set_omp_threads(self.threads_);
            Inputs in = inputs_of(n);
            std::vector<Tensor*> outs;
            for (auto& t : node.outputs) outs.push_back(&t);
            Outputs out(node.schema, false, std::move(outs));
            node.model->forward(in, out, node.saved, step);
        });
        if (n == loss_idx && step.training() && !self.opt_.reduce_gradients) check_loss();
    }

    // --- numerical guards (the policy and its messages: guards.hpp) ----------------------------
    // Data parallelism leaves the decision to the gradient check after the reduction, which
    // every process makes on the same numbers.
    void check_loss() {
        const float* l = nodes[static_cast<std::size_t>(loss_idx)].outputs[static_cast<std::size_t>(loss_port)].data<float>();
        if (std::isfinite(l[0]) || guard.skip_step()) return;
        throw nonfinite_forward_error();
    }

    // The loss is not finite: name the first stage, in forward order, whose parameters or
    // outputs hold a NaN/Inf.
    Error nonfinite_forward_error() const {
        const auto& ln = nodes[static_cast<std::size_t>(loss_idx)];
        const float loss = ln.outputs[static_cast<std::size_t>(loss_port)].data<float>()[0];
        for (int n : g.order) {
            const auto& node = nodes[static_cast<std::size_t>(n)];
            if (!node.model) continue;
            const std::string note = n == loss_idx ? std::string() : " (the loss is " + nonfinite_word(loss) + ")";
            for (auto& p : node.model->params())
                if (const auto i = first_nonfinite(p.value); i >= 0)
                    return nonfinite_error(*node.def, "in parameter '" + p.name + "'", p.value.data<float>()[i], step, note);
            for (std::size_t o = 0; o < node.outputs.size(); ++o)
                if (const auto i = first_nonfinite(node.outputs[o]); i >= 0)
                    return nonfinite_error(*node.def, "in output '" + node.schema->outputs()[o].name + "'",
                                           node.outputs[o].data<float>()[i], step, note);
        }
        return nonfinite_error(*ln.def, "loss", loss, step);
    }
    // After backward: true when every trainable gradient is finite. Else skip the step, or
    // throw naming the first stage, in backward order, whose input or parameter gradient holds
    // a NaN/Inf.
    // Each gradient's Σ g² (kept in grad_sumsq for the optimiser's clipping) is finite exactly
    // when every element is, unless the squares overflow: only then are the elements searched.
    bool gradients_finite() {
        bool ok = true;
        for (const auto& tp : trainable) {
            Param& p = *tp.second;
            p.grad_sumsq = p.grad.dtype() == DType::f32 ? grad_sum_squares(p) : -1;
            ok = ok && (std::isfinite(p.grad_sumsq) || first_nonfinite(p.grad) < 0);
        }
        if (ok) return true;
        if (guard.skip_step()) return false;
        for (auto it = g.order.rbegin(); it != g.order.rend(); ++it) {
            const auto& node = nodes[static_cast<std::size_t>(*it)];
            if (!in_backward[static_cast<std::size_t>(*it)]) continue;
            for (std::size_t i = 0; i < node.diff_src.size(); ++i) {
                const auto* c = input_conn(*it, static_cast<int>(i));
                if (!c || !in_backward[static_cast<std::size_t>(c->from_stage)]) continue;
                if (const auto k = first_nonfinite(node.diff_src[i]); k >= 0)
                    throw nonfinite_error(*node.def, "in the gradient of its input '" + node.schema->inputs()[i].name + "'",
                                          node.diff_src[i].data<float>()[k], step);
            }
            for (auto& p : node.model->params())
                if (const auto k = first_nonfinite(p.grad); k >= 0)
                    throw nonfinite_error(*node.def, "in the gradient of parameter '" + p.name + "'", p.grad.data<float>()[k], step);
        }
        throw nonfinite_gradient_error(step);
    }

    void backward(int n) {
        if (guard.step_skipped) return;  // the update is dropped anyway
        auto& node = nodes[static_cast<std::size_t>(n)];
        guarded(*node.def, [this] { return step_context("backward"); }, [&] {
            set_omp_threads(self.threads_);
            // diff_dst: the seed for the minimised loss, else the sum over consumers in B.
            std::vector<Tensor*> dd(node.outputs.size(), nullptr);
            for (std::size_t o = 0; o < node.outputs.size(); ++o) {
                Tensor& d = node.diff_dst[o];
                if (n == loss_idx && static_cast<int>(o) == loss_port) {
                    const float* l = node.outputs[o].data<float>();
                    d.resize(DType::f32, {2});
                    d.data<float>()[0] = l[1] > 0 ? 1.0f / l[1] : 0.0f;
                    d.data<float>()[1] = 0.0f;
                    dd[o] = &d;
                    continue;
                }
                if (node.outputs[o].dtype() != DType::f32) continue;
                // One consumer in backward (the common case, e.g. logits → loss): read its
                // gradient where it lies instead of zeroing and adding a copy.
                const Tensor* only = nullptr;
                int consumers = 0;
                for (int ci : g.output_conns[static_cast<std::size_t>(n)][o]) {
                    const auto& c = g.connections[static_cast<std::size_t>(ci)];
                    if (!in_backward[static_cast<std::size_t>(c.to_stage)]) continue;
                    ++consumers;
                    only = &nodes[static_cast<std::size_t>(c.to_stage)].diff_src[static_cast<std::size_t>(c.to_port)];
                }
                if (consumers == 1 && only->dtype() == DType::f32 && only->shape() == node.outputs[o].shape() &&
                    only->lengths == node.outputs[o].lengths) {
                    dd[o] = const_cast<Tensor*>(only);  // diff_dst is read-only to the stage
                    continue;
                }
                d.resize(DType::f32, node.outputs[o].shape());
                d.lengths = node.outputs[o].lengths;
                d.zero();
                for (int ci : g.output_conns[static_cast<std::size_t>(n)][o]) {
                    const auto& c = g.connections[static_cast<std::size_t>(ci)];
                    if (!in_backward[static_cast<std::size_t>(c.to_stage)]) continue;
                    const Tensor& src = nodes[static_cast<std::size_t>(c.to_stage)].diff_src[static_cast<std::size_t>(c.to_port)];
                    RNNFLOW_ASSERT(src.numel() == d.numel());
                    float* dp = d.data<float>();
                    const float* sp = src.data<float>();
                    for (std::int64_t e = 0; e < d.numel(); ++e) dp[e] += sp[e];
                }
                dd[o] = &d;
            }
            std::vector<Tensor*> ds(node.schema->inputs().size(), nullptr);
            for (std::size_t i = 0; i < ds.size(); ++i) {
                const auto* c = input_conn(n, static_cast<int>(i));
                if (c && in_backward[static_cast<std::size_t>(c->from_stage)]) ds[i] = &node.diff_src[i];
            }
            Inputs in = inputs_of(n);
            std::vector<Tensor*> outs;
            for (auto& t : node.outputs) outs.push_back(&t);
            Outputs out(node.schema, false, std::move(outs));
            Grads diff_dst(node.schema, false, std::move(dd));
            Grads diff_src(node.schema, true, std::move(ds));
            node.model->backward(in, out, node.saved, diff_dst, diff_src, step);
        });
    }

    std::string step_context(const char* what) const { return std::string(what) + ", " + step_text(step); }

    // --- one pass over a split (or one infer call) on a flow graph ----------------------------
    enum class PassKind { train, evaluate, infer, predict };

    // The metric stages a pass feeds: all of them in evaluation, the predicting ones in a
    // prediction run, none when sampling.
    std::vector<int> pass_metrics(PassKind kind) const {
        if (kind == PassKind::infer) return {};
        std::vector<int> v;
        for (int m : metric_idx)
            if (kind != PassKind::predict || nodes[static_cast<std::size_t>(m)].metric->predicts()) v.push_back(m);
        return v;
    }
    bool loss_in_pass = false;  // the minimised loss is computed in the running pass

    Tensor shard_scratch;  // take_shard's buffer (data parallelism)

    Batch* take_batch() {
        std::lock_guard<std::mutex> lock(pool_mutex);
        if (free_batches.empty()) {
            pool.push_back(std::make_unique<Batch>());
            return pool.back().get();
        }
        Batch* b = free_batches.back();
        free_batches.pop_back();
        return b;
    }
    void give_back(Batch* b) {
        std::lock_guard<std::mutex> lock(pool_mutex);
        free_batches.push_back(b);
    }

    // --- one pass as a flow graph ---------------------------------------------------------------
    // Built the way oneTBB's examples read: run_pass declares the nodes of a step (begin, a
    // forward node per model stage the pass needs, the metrics, the backward nodes wired in
    // reverse, the optimiser step, end), then feeds the batches through two limiters. The order in
    // which edges are made is the order in which ready nodes run on the one graph thread, so it
    // is part of the results (backward nodes add into shared gradients): keep it.
    struct FlowPass {
        using Node = flow::continue_node<flow::continue_msg>;
        flow::graph fg;
        std::vector<std::unique_ptr<Node>> owned;  // after fg: destroyed before it
        std::vector<int> out_degree;               // by position in owned
        std::unordered_map<const Node*, std::size_t> position;
        Node* begin = nullptr;                     // the step's batch is current
        std::vector<Node*> fwd, bwd;               // by stage index; null where the pass skips it

        Node* add(std::function<void()> body) {
            owned.push_back(std::make_unique<Node>(fg, [body = std::move(body)](const flow::continue_msg&) { body(); }));
            position[owned.back().get()] = owned.size() - 1;
            out_degree.push_back(0);
            return owned.back().get();
        }
        void edge(Node* a, Node* b) {
            flow::make_edge(*a, *b);
            ++out_degree[position.at(a)];
        }
        // Every node nothing waits on runs before `end`.
        void join_leaves(Node& end) {
            for (std::size_t i = 0; i < owned.size(); ++i)
                if (out_degree[i] == 0) flow::make_edge(*owned[i], end);
        }
    };

    // What a pass computes: the sampler's scores when sampling, else the loss (not when
    // predicting) and the pass's metrics.
    std::vector<int> pass_targets(PassKind kind, const std::vector<int>& metrics) const {
        std::vector<int> targets;
        if (kind == PassKind::infer) {
            targets.push_back(infer_stage);
        } else {
            if (loss_idx >= 0 && kind != PassKind::predict) targets.push_back(loss_idx);
            for (int m : metrics) targets.push_back(m);
        }
        return targets;
    }

    // Edges into `target` (stage n's forward or metric node): from each producing model stage
    // that runs in this pass (once per distinct producer, and from `also`), else from begin.
    void wire_from_producers(FlowPass& p, int n, FlowPass::Node* target, int also = -1) const {
        std::set<int> preds;
        if (also >= 0 && p.fwd[static_cast<std::size_t>(also)]) preds.insert(also);
        const auto& node = nodes[static_cast<std::size_t>(n)];
        for (std::size_t i = 0; i < node.schema->inputs().size(); ++i)
            if (const auto* c = input_conn(n, static_cast<int>(i)); c && p.fwd[static_cast<std::size_t>(c->from_stage)])
                preds.insert(c->from_stage);
        if (preds.empty()) p.edge(p.begin, target);
        for (int pr : preds) p.edge(p.fwd[static_cast<std::size_t>(pr)], target);
    }

    void add_forward_nodes(FlowPass& p, const std::vector<bool>& fwd_set) {
        p.fwd.assign(nodes.size(), nullptr);
        for (int n : g.order)
            if (fwd_set[static_cast<std::size_t>(n)]) p.fwd[static_cast<std::size_t>(n)] = p.add([this, n] { forward(n); });
        for (int n : g.order)
            if (p.fwd[static_cast<std::size_t>(n)]) wire_from_producers(p, n, p.fwd[static_cast<std::size_t>(n)]);
    }

    // Metrics accumulate once their inputs are computed; when non-finite batches are skipped,
    // after the loss check too.
    void add_metric_nodes(FlowPass& p, const std::vector<int>& metrics, bool training) {
        for (int m : metrics) {
            auto* node = p.add([this, m] {
                if (guard.step_skipped) return;  // a non-finite loss: the batch counts nowhere
                auto& mn = nodes[static_cast<std::size_t>(m)];
                guarded(*mn.def, [this] { return step_context("accumulate"); }, [&] { mn.metric->accumulate(inputs_of(m), step); });
            });
            wire_from_producers(p, m, node, training && guard.skip_batches ? loss_idx : -1);
        }
    }

    // Backward nodes wired in reverse (a stage's backward after its consumers'), then the
    // optimiser step after all of them.
    void add_backward_nodes(FlowPass& p) {
        p.bwd.assign(nodes.size(), nullptr);
        for (int n : g.order)
            if (in_backward[static_cast<std::size_t>(n)]) p.bwd[static_cast<std::size_t>(n)] = p.add([this, n] { backward(n); });
        for (int n : g.order) {
            if (!p.bwd[static_cast<std::size_t>(n)]) continue;
            std::set<int> consumers;
            for (const auto& conns : g.output_conns[static_cast<std::size_t>(n)])
                for (int ci : conns) {
                    const int to = g.connections[static_cast<std::size_t>(ci)].to_stage;
                    if (p.bwd[static_cast<std::size_t>(to)]) consumers.insert(to);
                }
            if (consumers.empty()) p.edge(p.fwd[static_cast<std::size_t>(n)], p.bwd[static_cast<std::size_t>(n)]);
            for (int c : consumers) p.edge(p.bwd[static_cast<std::size_t>(c)], p.bwd[static_cast<std::size_t>(n)]);
        }
        auto* opt_node = p.add([this] { optimizer_step(); });
        bool any = false;
        for (auto* b : p.bwd)
            if (b) {
                p.edge(b, opt_node);
                any = true;
            }
        if (!any) p.edge(p.fwd[static_cast<std::size_t>(loss_idx)], opt_node);
    }

    // The optimiser node: other ranks' gradients added (data-parallel), then one update, unless
    // the batch or a gradient is non-finite (the batch then changes nothing).
    void optimizer_step() {
        auto& on = nodes[static_cast<std::size_t>(optim_idx)];
        // A gradient its stage did not write this step (still stale) is zero.
        for (const auto& tp : trainable) settle_grad(*tp.second);
        guarded(*on.def, [this] { return step_context("step"); }, [&] {
            set_omp_threads(self.threads_);
            if (self.opt_.reduce_gradients) {
                const float* l = nodes[static_cast<std::size_t>(loss_idx)].outputs[static_cast<std::size_t>(loss_port)].data<float>();
                self.opt_.reduce_gradients(trainable, l[0], l[1]);
                // Other processes' rows arrived: a row-sparse gradient is dense now.
                for (const auto& tp : trainable)
                    if (tp.second->sparse_rows && tp.second->grad.rank() > 0) {
                        tp.second->grad_rows.resize(static_cast<std::size_t>(tp.second->grad.dim(0)));
                        std::iota(tp.second->grad_rows.begin(), tp.second->grad_rows.end(), std::int64_t{0});
                    }
            }
        });
        if (guard.step_skipped || !gradients_finite()) {
            for (const auto& tp : trainable) {
                tp.second->grad.zero();  // no update from this batch
                tp.second->grad_rows.clear();
                tp.second->grad_sumsq = -1;
            }
            return;
        }
        guarded(*on.def, [this] { return step_context("step"); }, [&] { pass_grad_norm_sum += on.optim->step(step); });
        for (const auto& tp : trainable) tp.second->grad_sumsq = -1;  // zeroed by the step
    }

    // The end node: the non-finite policy, the pass's loss sums and counts, the batch back to
    // the pool.
    void finish_step(bool training, const std::function<void(std::int64_t)>& on_step_end) {
        if (training) guard.end_training_step(step);
        if (loss_in_pass && current.batch && !(training && guard.step_skipped)) {
            const float* l = nodes[static_cast<std::size_t>(loss_idx)].outputs[static_cast<std::size_t>(loss_port)].data<float>();
            if (training && !std::isfinite(l[0])) throw nonfinite_loss_error(*nodes[static_cast<std::size_t>(loss_idx)].def, step);
            pass_loss_sum += l[0];
            pass_loss_count += l[1];
        }
        ++pass_steps;
        if (current.batch) {
            pass_items += current.batch->items;
            give_back(current.batch);
        }
        if (on_step_end) on_step_end(current.index);
    }

    // begin's body: the step's batch becomes current.
    void start_step(const BatchMsg& m, PassKind kind, const std::string& split, std::int64_t epoch) {
        current = m;
        step.phase = kind == PassKind::train ? Phase::train : kind == PassKind::evaluate ? Phase::evaluate : Phase::infer;
        step.split = split;
        step.epoch = epoch;
        step.batch = m.index;
        step.reset_state = m.batch ? m.batch->reset_state : step.reset_state;
        if (m.batch) step.item_ids = m.batch->item_ids;
        else step.item_ids = {};
        guard.step_skipped = false;
    }

    // The batches, read ahead by up to train.prefetch (limit_ahead) and taken one step at a time
    // (limit_step); end releases both. Under data-parallel training each rank keeps its shard.
    void feed_batches(FlowPass& p, flow::receiver<BatchMsg>& begin_fn, FlowPass::Node& end, PassKind kind,
                      std::int64_t max_batches, std::int64_t first_index) {
        auto& src = nodes[static_cast<std::size_t>(source_idx)];
        std::int64_t produced = first_index;
        const bool shard = self.opt_.shard_count > 1 && (kind == PassKind::train || self.opt_.shard_evaluation);
        flow::input_node<BatchMsg> input(p.fg, [this, &src, &produced, max_batches, shard](oneapi::tbb::flow_control& fc) {
            if (max_batches > 0 && produced >= max_batches) {
                fc.stop();
                return BatchMsg{};
            }
            Batch* b = take_batch();
            bool more = false;
            guarded(*src.def, "next batch", [&] { more = src.source->next(*b); });
            if (!more) {
                give_back(b);
                fc.stop();
                return BatchMsg{};
            }
            if (shard) take_shard(*b, self.opt_.shard_rank, self.opt_.shard_count, shard_scratch);
            return BatchMsg{b, produced++};
        });
        const std::size_t ahead = static_cast<std::size_t>(std::max<std::int64_t>(1, g.def.train.prefetch));
        flow::limiter_node<BatchMsg> limit_ahead(p.fg, ahead);
        flow::queue_node<BatchMsg> queue(p.fg);
        flow::limiter_node<BatchMsg> limit_step(p.fg, 1);
        flow::make_edge(input, limit_ahead);
        flow::make_edge(limit_ahead, queue);
        flow::make_edge(queue, limit_step);
        flow::make_edge(limit_step, begin_fn);
        flow::make_edge(end, limit_step.decrementer());
        flow::make_edge(end, limit_ahead.decrementer());
        input.activate();
        p.fg.wait_for_all();
    }

    // Runs the pass; `on_step_end` is called after each step (serially).
    void run_pass(PassKind kind, const std::string& split, std::int64_t epoch, std::int64_t max_batches,
                  const std::function<void(std::int64_t)>& on_step_end, std::int64_t first_index = 0) {
        const bool training = kind == PassKind::train;
        const std::vector<int> metrics = pass_metrics(kind);
        const std::vector<bool> fwd_set = model_ancestors(pass_targets(kind, metrics));
        loss_in_pass = loss_idx >= 0 && fwd_set[static_cast<std::size_t>(loss_idx)];

        FlowPass p;
        p.begin = p.add([] {});
        flow::function_node<BatchMsg, flow::continue_msg> begin_fn(
            p.fg, flow::serial, [this, split, epoch, kind](const BatchMsg& m) {
                start_step(m, kind, split, epoch);
                return flow::continue_msg();
            });
        flow::make_edge(begin_fn, *p.begin);
        add_forward_nodes(p, fwd_set);
        add_metric_nodes(p, metrics, training);
        if (training && optim_idx >= 0) add_backward_nodes(p);
        FlowPass::Node end(p.fg, [this, training, &on_step_end](const flow::continue_msg&) {
            finish_step(training, on_step_end);
            return flow::continue_msg();
        });
        p.join_leaves(end);

        if (kind == PassKind::infer) {  // one step, no batch: the sampler's scores
            begin_fn.try_put(BatchMsg{nullptr, 0});
            p.fg.wait_for_all();
            return;
        }
        feed_batches(p, begin_fn, end, kind, max_batches, first_index);
    }

    // --- resumed passes (docs/resume.md) ------------------------------------------------------
    // Right after begin(): move past the batches a checkpoint's position says are done.
    void skip_batches(Node& src, std::int64_t k) {
        bool jumped = false;
        guarded(*src.def, "skip", [&] { jumped = src.source->skip(k); });
        if (jumped) return;
        Batch* b = take_batch();
        for (std::int64_t i = 0; i < k; ++i) {
            bool more = false;
            guarded(*src.def, "next batch", [&] { more = src.source->next(*b); });
            if (!more) {
                give_back(b);
                throw Error("the training split now ends after " + std::to_string(i) +
                                " batches, before the checkpoint's position (batch " + std::to_string(k) + ")",
                            "the data changed since the run started; a resume needs the same data");
            }
        }
        give_back(b);
    }
    // A metric's running sums from the checkpoint, after its begin().
    void restore_metric(int m, const std::string& split, std::int64_t epoch, std::int64_t done) {
        auto& mn = nodes[static_cast<std::size_t>(m)];
        auto it = resume_metric_state.find(m);
        if (it == resume_metric_state.end() || it->second.empty()) {
            if (self.opt_.log)
                *self.opt_.log << "warning: stage '" << mn.def->id << "' (" << mn.def->type
                               << ") saves no running sums, so its " << split << " value for epoch "
                               << (epoch + 1) << " covers only the batches after " << done << "\n";
            return;
        }
        guarded(*mn.def, "resume", [&] { mn.stage->load_run_state(it->second); });
    }
    PassTotals totals() const {
        PassTotals t;
        t.loss_sum = pass_loss_sum;
        t.loss_count = pass_loss_count;
        t.grad_norm_sum = pass_grad_norm_sum;
        t.seconds = pass_seconds_before + std::chrono::duration<double>(Clock::now() - pass_t0).count();
        t.steps = pass_steps;
        t.items = pass_items;
        t.skipped = guard.pass_skipped;
        return t;
    }

    // --- metrics of a pass --------------------------------------------------------------------
    // `from`: a resumed pass, its first from->steps batches done (docs/resume.md).
    MetricsRow run_split(PassKind kind, const std::string& split, std::int64_t epoch,
                         Progress* progress, const PassTotals* from = nullptr) {
        auto& src = nodes[static_cast<std::size_t>(source_idx)];
        std::int64_t batches = 0;
        guarded(*src.def, "begin " + split, [&] { batches = src.source->begin(split, epoch); });
        pass_batches = batches;
        if (kind == PassKind::train) {
            train_batches = batches;
            if (expect_train_batches >= 0 && batches != expect_train_batches)
                throw Error("the training split now gives " + std::to_string(batches) +
                                " batches a pass, the interrupted run's gave " + std::to_string(expect_train_batches),
                            "the data or the batch settings changed since the run started; a resume needs the same");
            expect_train_batches = -1;
        }
        const std::int64_t max_b = kind == PassKind::predict ? 0 : self.graph_.def.train.max_batches;
        const std::vector<int> metrics = pass_metrics(kind);
        if (max_b > 0) batches = std::min(batches, max_b);
        MetricsRow row;
        row.epoch = epoch + 1;
        row.split = split;
        if (batches == 0) return row;
        const std::int64_t done = from ? from->steps : 0;
        if (done > 0) skip_batches(src, done);
        for (int m : metrics) {
            auto& mn = nodes[static_cast<std::size_t>(m)];
            guarded(*mn.def, "begin " + split, [&] { mn.metric->begin(split); });
            if (done > 0) restore_metric(m, split, epoch, done);
        }
        pass_loss_sum = from ? from->loss_sum : 0;
        pass_loss_count = from ? from->loss_count : 0;
        pass_grad_norm_sum = from ? from->grad_norm_sum : 0;
        pass_steps = done;
        pass_items = from ? from->items : 0;
        guard.pass_skipped = from ? from->skipped : 0;
        pass_seconds_before = from ? from->seconds : 0;
        pass_t0 = Clock::now();
        const auto t0 = pass_t0;
        if (progress)
            progress->begin_pass(kind == PassKind::train ? "train" : kind == PassKind::predict ? "predict" : split, epoch, batches);
        run_pass(kind, split, epoch, max_b, [&](std::int64_t) {
            if (progress)
                progress->step(pass_steps, pass_loss_count > 0 ? pass_loss_sum / pass_loss_count : std::nan(""), pass_items);
            if (after_step) after_step(kind == PassKind::train);
        }, done);
        const double secs = pass_seconds_before + std::chrono::duration<double>(Clock::now() - t0).count();
        if (progress) progress->end_pass();
        if (pass_loss_count > 0) row.values.emplace_back("loss", pass_loss_sum / pass_loss_count);
        const std::filesystem::path& folder = self.opt_.run_dir.empty() ? self.opt_.restore_dir : self.opt_.run_dir;
        for (int m : metrics) {
            auto& mn = nodes[static_cast<std::size_t>(m)];
            std::vector<MetricValue> vals;
            guarded(*mn.def, "end " + split, [&] { vals = mn.metric->end(); });
            for (const auto& v : vals) {
                const std::string name = v.name.empty() ? mn.def->id : mn.def->id + "." + v.name;
                row.values.emplace_back(name, v.value);
                higher_is_better[name] = v.higher_is_better;
            }
            if (kind == PassKind::evaluate && !folder.empty()) {
                OutputContext oc{folder / mn.def->id, split, epoch + 1};
                guarded(*mn.def, "write outputs of " + split, [&] {
                    std::filesystem::create_directories(oc.dir);
                    mn.metric->write_outputs(oc);
                    std::error_code ec;  // no clutter from stages that wrote nothing
                    if (std::filesystem::is_empty(oc.dir, ec)) std::filesystem::remove(oc.dir, ec);
                });
            }
        }
        if (kind == PassKind::train) {
            auto& on = nodes[static_cast<std::size_t>(optim_idx)];
            row.values.emplace_back("lr", on.optim->learning_rate());
            if (pass_steps > guard.pass_skipped)
                row.values.emplace_back("grad_norm", pass_grad_norm_sum / static_cast<double>(pass_steps - guard.pass_skipped));
            if (guard.skip_batches) row.values.emplace_back("skipped_batches", static_cast<double>(guard.pass_skipped));
        }
        row.values.emplace_back("seconds", secs);
        row.values.emplace_back("items_per_second", secs > 0 ? static_cast<double>(pass_items) / secs : 0.0);
        return row;
    }
};

// ---------------------------------------------------------------------------------------------
Engine::Engine(CompiledGraph graph, RunOptions options)
    : graph_(std::move(graph)), opt_(std::move(options)) {
    threads_ = opt_.threads > 0 ? opt_.threads
               : graph_.def.train.threads > 0 ? static_cast<int>(graph_.def.train.threads)
                                              : available_cores();
    impl_ = std::make_unique<Impl>(*this, graph_);
    set_mid_write_hook(&fault_in_checkpoint_write);  // RNNFLOW_FAULT=kill@checkpoint:N (tests)
    impl_->arena = std::make_unique<oneapi::tbb::task_arena>(std::max(1, opt_.graph_threads));
    if (!opt_.run_dir.empty() && opt_.mode == PrepareMode::fit) {
        std::filesystem::create_directories(opt_.run_dir / "checkpoints");
        write_file_atomic(opt_.run_dir / "resolved.yaml", graph_.def.resolved_yaml);
        write_file_atomic(opt_.run_dir / "graph.dot", to_dot(graph_));
        impl_->metrics_log = std::make_unique<MetricsLog>(opt_.run_dir);
        impl_->status.start(opt_.run_dir, graph_.def.experiment, graph_.def.train.epochs, opt_.resume);
    }
}

void Engine::set_resume_command(std::string command) { impl_->status.set_resume_command(std::move(command)); }

namespace {
// What status.json says stopped a run: the message as the program prints it.
std::string failure_text(const std::exception& e) {
    const auto* err = dynamic_cast<const Error*>(&e);
    std::string text = err ? err->format() : std::string(e.what());
    if (text.rfind("error: ", 0) == 0) text.erase(0, 7);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
}
}  // namespace

Engine::~Engine() = default;

Stage* Engine::stage(const std::string& id) const {
    const int i = graph_.def.index(id);
    if (i < 0 || static_cast<std::size_t>(i) >= impl_->nodes.size()) return nullptr;
    return impl_->nodes[static_cast<std::size_t>(i)].stage.get();
}

MetricLabels Engine::metric_labels() const {
    MetricLabels labels;
    for (const int m : impl_->metric_idx) {
        const auto& node = impl_->nodes[static_cast<std::size_t>(m)];
        const auto* named = dynamic_cast<const MainMetricName*>(node.stage.get());
        const std::string name = named ? named->main_metric_name() : std::string();
        if (!name.empty() && name != node.def->id) labels[node.def->id] = node.def->id + "." + name;
    }
    return labels;
}

namespace {

class EnginePrepare : public PrepareContext {
public:
    EnginePrepare(Engine::Impl& impl, int n, PrepareMode mode, std::filesystem::path state_root,
                  const std::vector<std::string>& splits, int threads, const std::vector<std::string>* infer_lines)
        : impl_(impl), n_(n), mode_(mode), state_root_(std::move(state_root)), splits_(splits),
          threads_(threads), infer_lines_(infer_lines) {}
    const std::vector<std::string>* infer_lines() const override { return infer_lines_; }

    PrepareMode mode() const override { return mode_; }
    const std::string& stage_id() const override { return node().def->id; }
    const std::vector<std::string>& splits() const override { return splits_; }
    bool connected(const std::string& input) const override {
        const int i = node().schema->input_index(input);
        return i >= 0 && impl_.input_conn(n_, i) != nullptr;
    }
    const PortInfo& input_info(const std::string& input) const override {
        const Connection* c = conn(input);
        const auto& p = impl_.nodes[static_cast<std::size_t>(c->from_stage)];
        RNNFLOW_CHECK(p.out_info_set[static_cast<std::size_t>(c->from_port)], "stage '", p.def->id,
                      "' did not describe its output '", p.schema->outputs()[static_cast<std::size_t>(c->from_port)].name, "'");
        return p.out_info[static_cast<std::size_t>(c->from_port)];
    }
    void set_output_info(const std::string& output, PortInfo info) override {
        const int o = node().schema->output_index(output);
        RNNFLOW_CHECK(o >= 0, "has no output '", output, "'");
        info.type = node().schema->outputs()[static_cast<std::size_t>(o)].type;
        node().out_info[static_cast<std::size_t>(o)] = std::move(info);
        node().out_info_set[static_cast<std::size_t>(o)] = true;
    }
    bool has_input(const std::string& input, const std::string& split) const override {
        if (!connected(input)) return false;
        return impl_.datasets.count(key(conn(input), split)) != 0;
    }
    const std::any& input_any(const std::string& input, const std::string& split) const override {
        auto it = impl_.datasets.find(key(conn(input), split));
        RNNFLOW_CHECK(it != impl_.datasets.end(), "input '", input, "' has no data for split '", split, "'");
        return it->second;
    }
    void put_output_any(const std::string& output, const std::string& split, std::any v) override {
        const int o = node().schema->output_index(output);
        RNNFLOW_CHECK(o >= 0, "has no output '", output, "'");
        impl_.datasets[node().def->id + "/" + std::to_string(o) + "/" + split] = std::move(v);
    }
    std::mt19937_64& rng() override { return node().rng; }
    std::filesystem::path state_dir() override {
        if (state_root_.empty()) return {};
        auto d = state_root_ / "state" / node().def->id;
        if (mode_ == PrepareMode::fit) std::filesystem::create_directories(d);
        return d;
    }
    const std::filesystem::path& base_dir() const override { return impl_.g.def.base_dir; }
    int threads() const override { return threads_; }

private:
    Engine::Impl::Node& node() const { return impl_.nodes[static_cast<std::size_t>(n_)]; }
    const Connection* conn(const std::string& input) const {
        const int i = node().schema->input_index(input);
        RNNFLOW_CHECK(i >= 0, "has no input '", input, "'");
        const Connection* c = impl_.input_conn(n_, i);
        RNNFLOW_CHECK(c != nullptr, "input '", input, "' is not connected");
        return c;
    }
    std::string key(const Connection* c, const std::string& split) const {
        return impl_.nodes[static_cast<std::size_t>(c->from_stage)].def->id + "/" + std::to_string(c->from_port) + "/" + split;
    }
    Engine::Impl& impl_;
    int n_;
    PrepareMode mode_;
    std::filesystem::path state_root_;
    const std::vector<std::string>& splits_;
    int threads_;
    const std::vector<std::string>* infer_lines_;
};

// init: {from: FILE, prefix: P}: parameter `name` ← tensor "<P><name>"; without a prefix,
// "<stage id>.<name>" (an rnnflow checkpoint), then "<name>".
void apply_init(const StageDef& sd, ModelStage& model, std::map<std::string, TensorFile>& files) {
    const InitDef& init = *sd.init;
    auto it = files.find(init.from);
    if (it == files.end()) {
        TensorFile tf;
        try {
            tf = load_safetensors(init.from);
        } catch (Error& e) {
            e.at(init.loc);
            throw;
        }
        it = files.emplace(init.from, std::move(tf)).first;
    }
    const TensorFile& tf = it->second;
    for (auto& p : model.params()) {
        std::vector<std::string> names;
        if (init.has_prefix) names.push_back(init.prefix + p.name);
        else names = {sd.id + "." + p.name, p.name};
        const Tensor* t = nullptr;
        for (const auto& n : names)
            if ((t = tf.find(n))) break;
        if (!t) {
            std::string have;
            for (std::size_t i = 0; i < tf.tensors.size() && i < 8; ++i)
                have += (i ? ", " : "") + tf.tensors[i].first;
            if (tf.tensors.size() > 8) have += ", ...";
            throw Error("init: " + init.from + " has no tensor '" + names.front() + "'" +
                            (names.size() > 1 ? " (nor '" + names[1] + "')" : std::string()),
                        "the file holds: " + (have.empty() ? std::string("nothing") : have) +
                            "; set init: {prefix: ...} to the part before the parameter name",
                        init.loc);
        }
        if (t->shape() != p.value.shape() || t->dtype() != p.value.dtype())
            throw Error("init: tensor '" + names.front() + "' in " + init.from + " is " + to_string(t->dtype()) +
                            " " + shape_str(t->shape()) + ", parameter '" + p.name + "' is " +
                            to_string(p.value.dtype()) + " " + shape_str(p.value.shape()) + " (" + p.layout + ")",
                        "docs/checkpoints.md gives every parameter's shape and layout", init.loc);
        p.value = *t;
    }
}

// A blank line (empty, or only spaces, tabs and the like) has nothing to predict from, as in
// Marian and OpenNMT: it is left out of the infer split and gets an empty output line, so that
// one bad line does not lose the others' predictions and the output stays aligned with the input.
void keep_nonblank_lines(const std::vector<std::string>& lines, std::vector<std::string>& kept,
                         std::vector<std::int64_t>& index) {
    kept.clear();
    index.clear();
    for (const auto& line : lines) {
        const bool blank = std::all_of(line.begin(), line.end(), [](unsigned char c) { return std::isspace(c); });
        index.push_back(blank ? -1 : static_cast<std::int64_t>(kept.size()));
        if (!blank) kept.push_back(line);
    }
}

std::uint64_t stage_seed(std::int64_t seed, const std::string& id) {
    std::uint64_t h = 1469598103934665603ull ^ static_cast<std::uint64_t>(seed);
    for (unsigned char c : id) h = (h ^ c) * 1099511628211ull;
    return h;
}

}  // namespace

void Engine::prepare() {
    try {
        prepare_stages();
    } catch (const std::exception& e) {
        impl_->status.failed(failure_text(e), false);
        throw;
    }
}

void Engine::prepare_stages() {
    auto& im = *impl_;
    const auto& def = graph_.def;
    im.nodes.resize(def.stages.size());
    const bool infer = opt_.mode == PrepareMode::restore && opt_.infer_lines.has_value();
    const std::vector<std::string> splits = infer ? std::vector<std::string>{"infer"}
                                                  : std::vector<std::string>{"train", "valid", "test"};
    if (infer) keep_nonblank_lines(*opt_.infer_lines, im.infer_lines, im.infer_index);
    const std::vector<std::string>* infer_lines = infer ? &im.infer_lines : nullptr;
    const std::filesystem::path state_root = opt_.mode == PrepareMode::fit ? opt_.run_dir : opt_.restore_dir;
    std::map<std::string, TensorFile> init_files;  // each init file read once
    // A resumed run refits its data; what it fits must be what the run fitted (resume.hpp).
    const auto fitted_before = opt_.resume ? read_state_files(opt_.run_dir) : std::map<std::string, std::string>{};
    im.arena->execute([&] {
        set_omp_threads(threads_);
        for (int n : graph_.order) {
            auto& node = im.nodes[static_cast<std::size_t>(n)];
            const StageDef& sd = def.stages[static_cast<std::size_t>(n)];
            node.idx = n;
            node.def = &sd;
            node.type = graph_.types[static_cast<std::size_t>(n)];
            node.schema = &node.type->schema;
            node.out_info.assign(node.schema->outputs().size(), PortInfo{});
            node.out_info_set.assign(node.schema->outputs().size(), false);
            node.outputs.resize(node.schema->outputs().size());
            node.diff_dst.resize(node.schema->outputs().size());
            node.diff_src.resize(node.schema->inputs().size());
            node.rng.seed(stage_seed(def.seed, sd.id));
            guarded(sd, "prepare", [&] {
                Params params = sd.params;
                for (const auto& [name, ref] : sd.refs) {
                    const int r = def.index(ref.stage);
                    RNNFLOW_ASSERT(r >= 0 && im.nodes[static_cast<std::size_t>(r)].stage);
                    const std::int64_t v = im.nodes[static_cast<std::size_t>(r)].stage->value(ref.value);
                    const ParamSpec* spec = node.schema->find_param(name);
                    const std::string err = StageSchema::check(*spec, ParamValue(v));
                    if (!err.empty())
                        throw Error("'" + name + "' = " + ref.stage + "." + ref.value + " " + err, {}, ref.loc);
                    params.set(name, v, ref.loc);
                }
                node.stage = node.type->create(params);
                RNNFLOW_ASSERT(node.stage != nullptr);
                Stage* s = node.stage.get();
                node.model = dynamic_cast<ModelStage*>(s);
                node.source = dynamic_cast<DataSource*>(s);
                node.optim = dynamic_cast<OptimizerStage*>(s);
                node.metric = dynamic_cast<MetricStage*>(s);
                node.sampler = dynamic_cast<SamplerStage*>(s);
                EnginePrepare ctx(im, n, opt_.mode, state_root, splits, threads_, infer_lines);
                s->prepare(ctx);
                // Weights from a file (a restored run takes them from its checkpoint instead).
                if (sd.init && node.model && opt_.mode == PrepareMode::fit) {
                    apply_init(sd, *node.model, init_files);
                    if (opt_.log && opt_.log_format == "text")
                        *opt_.log << "stage '" << sd.id << "': " << node.model->params().size()
                                  << " parameters from " << sd.init->from
                                  << (sd.init->has_prefix ? " (prefix " + sd.init->prefix + ")" : "")
                                  << (sd.init->freeze ? ", frozen" : "") << "\n";
                }
                // init: {freeze: true}: the loaded weights stay as loaded (in every mode, so a
                // resumed run's optimiser state matches the parameters it updates).
                if (sd.init && sd.init->freeze && node.model)
                    for (auto& p : node.model->params()) p.trainable = false;
                for (std::size_t o = 0; o < node.out_info.size(); ++o)
                    if (!node.out_info_set[o]) {
                        node.out_info[o].type = node.schema->outputs()[o].type;
                        node.out_info_set[o] = true;
                    }
            });
        }
    });

    if (opt_.resume) check_state_files(opt_.run_dir, fitted_before);

    im.find_roles();
    im.mark_backward_stages();
    im.attach_optimizer();
}

MetricsRow Engine::evaluate(const std::string& split, std::int64_t epoch) {
    MetricsRow row;
    impl_->arena->execute([&] {
        Progress progress(opt_.log, opt_.progress_bar, graph_.def.train.log_every, opt_.log_format);
        progress.set_epochs(-1);  // one pass with a given checkpoint: no epoch to show
        row = impl_->run_split(Impl::PassKind::evaluate, split, epoch, &progress);
    });
    return row;
}

TensorFile Engine::checkpoint_file(std::int64_t epoch) const {
    TensorFile tf;
    for (auto& node : impl_->nodes) {
        if (node.model)
            for (auto& p : node.model->params()) tf.tensors.emplace_back(node.def->id + "." + p.name, p.value);
        if (node.optim)
            for (const auto& [name, t] : node.optim->state()) tf.tensors.emplace_back(node.def->id + "." + name, *t);
    }
    tf.metadata["rnnflow.version"] = RNNFLOW_VERSION;
    tf.metadata["experiment"] = graph_.def.experiment;
    tf.metadata["epoch"] = std::to_string(epoch);
    return tf;
}

void Engine::save_checkpoint(const std::filesystem::path& file, std::int64_t epoch) const {
    save_safetensors(file, checkpoint_file(epoch));
}

void Engine::save_checkpoint(const std::filesystem::path& file, const RunPosition& at,
                             const std::map<int, StageState>* metric_sums) const {
    auto& im = *impl_;
    TensorFile tf = checkpoint_file(at.epoch);
    if (opt_.shard_count > 1) {
        // Data parallelism: this process holds its shard's run state only (a carried state of
        // N / ranks columns); such runs do not resume, so their checkpoints hold weights only.
        save_safetensors(file, tf);
        return;
    }
    for (auto& node : im.nodes) {
        if (!node.stage) continue;
        StageState st;
        if (node.source) st = im.source_snapshot;  // the state before this training pass began
        else if (node.metric && metric_sums) {
            auto it = metric_sums->find(node.idx);
            if (it != metric_sums->end()) st = it->second;
        } else guarded(*node.def, "save run state", [&] { node.stage->save_run_state(st); });
        put_stage_state(tf, node.def->id, st);
    }
    at.write(tf.metadata);
    save_safetensors(file, tf);
}

RunPosition Engine::load_resume(const std::filesystem::path& file) {
    auto& im = *impl_;
    if (!std::filesystem::exists(file))
        throw Error(opt_.run_dir.string() + " has no checkpoint to resume from (" + file.string() + ")",
                    "the run stopped before its first checkpoint (the end of epoch 1, or train.checkpoint_every "
                    "batches); start it again in a new folder");
    const TensorFile tf = load_safetensors(file);
    RunPosition at = RunPosition::read(tf.metadata, file.string());
    if (at.epoch > graph_.def.train.epochs || (at.epoch == graph_.def.train.epochs && at.pass.steps > 0))
        throw Error(file.string() + " is at " + at.describe() + ", beyond this graph's train.epochs = " +
                        std::to_string(graph_.def.train.epochs),
                    "resume with the run's own graph");
    load_weights(tf, file.string());
    auto states = stage_states(tf);
    for (auto& node : im.nodes) {
        if (!node.stage) continue;
        auto it = states.find(node.def->id);
        if (it == states.end()) continue;
        if (node.metric) {
            im.resume_metric_state[node.idx] = it->second;  // applied after the pass's begin()
            continue;
        }
        guarded(*node.def, "resume", [&] { node.stage->load_run_state(it->second); });
    }
    return at;
}

void Engine::load_checkpoint(const std::filesystem::path& file) {
    load_weights(load_safetensors(file), file.string());
}

void Engine::load_weights(const TensorFile& tf, const std::string& where) {
    const std::filesystem::path file(where);
    for (auto& node : impl_->nodes) {
        if (node.model)
            for (auto& p : node.model->params()) {
                const std::string name = node.def->id + "." + p.name;
                const Tensor* t = tf.find(name);
                if (!t)
                    throw Error(file.string() + ": checkpoint has no tensor '" + name + "'",
                                "was it written by another graph? compare its resolved.yaml");
                if (t->shape() != p.value.shape() || t->dtype() != p.value.dtype())
                    throw Error(file.string() + ": tensor '" + name + "' is " + shape_str(t->shape()) +
                                    ", the graph's is " + shape_str(p.value.shape()),
                                "the checkpoint belongs to a graph with other sizes");
                p.value = *t;
            }
        if (node.optim) {
            std::map<std::string, Tensor> st;
            const std::string prefix = node.def->id + ".";
            for (const auto& [name, t] : tf.tensors)
                if (name.rfind(prefix, 0) == 0) st.emplace(name.substr(prefix.size()), t);
            guarded(*node.def, "load " + where, [&] { node.optim->load_state(st); });
        }
    }
}

namespace {

class InferRunner : public ModelRunner {
public:
    explicit InferRunner(Engine::Impl& im) : im_(im) {}
    const Tensor& run(const Tensor& ids, bool reset) override {
        im_.infer_ids = &ids;
        im_.step.reset_state = reset;
        im_.current = {};
        im_.run_pass(Engine::Impl::PassKind::infer, "infer", 0, 0, nullptr);
        im_.infer_ids = nullptr;
        return im_.nodes[static_cast<std::size_t>(im_.infer_stage)].outputs[static_cast<std::size_t>(im_.infer_port)];
    }

private:
    Engine::Impl& im_;
};

}  // namespace

std::vector<std::string> Engine::predict(const std::string& stage_id) {
    auto& im = *impl_;
    RNNFLOW_CHECK(opt_.mode == PrepareMode::restore && opt_.infer_lines.has_value(),
                  "predict needs a restored run given the lines to label (RunOptions::infer_lines)");
    int chosen = -1;
    std::string predicting;
    for (int m : im.metric_idx) {
        const auto& mn = im.nodes[static_cast<std::size_t>(m)];
        if (!mn.metric->predicts()) continue;
        predicting += (predicting.empty() ? "" : ", ") + mn.def->id;
        if (chosen < 0 && (stage_id.empty() || stage_id == mn.def->id)) chosen = m;
    }
    if (chosen < 0)
        throw Error(stage_id.empty() ? "the graph has no stage that predicts text from input lines"
                                     : "stage '" + stage_id + "' does not predict (stages that do: " +
                                           (predicting.empty() ? std::string("none") : predicting) + ")",
                    "prediction needs an evaluator that labels or translates, e.g. bleu or classification_metrics");
    std::vector<std::string> lines;
    if (!im.infer_lines.empty())  // only blank lines: nothing to run
        im.arena->execute([&] {
            Progress progress(opt_.log, opt_.progress_bar, graph_.def.train.log_every, opt_.log_format);
            progress.set_epochs(-1);
            im.run_split(Impl::PassKind::predict, "infer", 0, &progress);
            auto& mn = im.nodes[static_cast<std::size_t>(chosen)];
            guarded(*mn.def, "predictions", [&] { lines = mn.metric->predictions(); });
        });
    if (lines.size() != im.infer_lines.size())
        throw Error("stage '" + im.nodes[static_cast<std::size_t>(chosen)].def->id + "' gave " +
                        std::to_string(lines.size()) + " predictions for " + std::to_string(im.infer_lines.size()) +
                        " input lines (blank lines left out)",
                    "the reader, the batch source and the evaluator must keep one item per line");
    std::vector<std::string> out;  // one per input line, blank lines in place
    out.reserve(im.infer_index.size());
    for (const std::int64_t i : im.infer_index)
        out.push_back(i < 0 ? std::string() : std::move(lines[static_cast<std::size_t>(i)]));
    return out;
}

std::string Engine::generate(const SampleRequest& req) {
    auto& im = *impl_;
    if (im.sampler_idx < 0)
        throw Error("the graph has no sampler stage",
                    "add one, e.g. `sample: {type: sampler, logits: logits, vocab: vocab.vocab}` for text or "
                    "`sample: {type: frame_sampler, logits: logits, frames: notes.frames, low: notes.low}` for music");
    std::string text;
    im.arena->execute([&] {
        InferRunner runner(im);
        auto& sn = im.nodes[static_cast<std::size_t>(im.sampler_idx)];
        guarded(*sn.def, "generate", [&] { text = sn.sampler->generate(runner, req); });
    });
    return text;
}

void Engine::run_model(const std::function<void(ModelRunner&)>& fn) {
    auto& im = *impl_;
    if (im.infer_stage < 0)
        throw Error("the graph has no sampler and no loss reading a model stage's scores: nothing to run on ids",
                    "score a language model's run (a cross_entropy loss over the model's logits)");
    im.arena->execute([&] {
        InferRunner runner(im);
        fn(runner);
    });
}

// ---------------------------------------------------------------------------------------------
// One call of train(): the run's state and its steps. train() reads as their list: set up (or
// resume) the run, then each epoch (a training pass, validation, the kept checkpoint, samples,
// the epoch's checkpoint), then the end (the test pass with the kept checkpoint, the summary).
struct Engine::TrainRun {
    Engine& engine;
    Impl& im;
    const RunOptions& opt;
    const TrainDef& td;
    TrainResult result;
    Progress progress;
    const Clock::time_point t_start = Clock::now();
    KeepPolicy keep;
    const std::filesystem::path ckpt_dir, last_file, samples_file;
    const bool writes;               // a run folder exists
    RunPosition at;                  // where training starts: epoch 1, or a resumed run's position
    double train_seconds = 0;
    std::int64_t epoch_now = 0;      // the epoch a checkpoint within an epoch records
    Clock::time_point last_save;     // train.checkpoint_seconds counts from here

    explicit TrainRun(Engine& e)
        : engine(e), im(*e.impl_), opt(e.opt_), td(e.graph_.def.train),
          progress(opt.log, opt.progress_bar, td.log_every, opt.log_format), keep(td),
          ckpt_dir(opt.run_dir / "checkpoints"), last_file(ckpt_dir / "last.safetensors"),
          samples_file(opt.run_dir / "samples.txt"), writes(!opt.run_dir.empty()) {
        progress.set_metric_labels(e.metric_labels());
        progress.set_epochs(td.epochs);
    }
    ~TrainRun() { im.after_step = nullptr; }

    void record(const MetricsRow& row) {
        result.rows.push_back(row);
        if (im.metrics_log) im.metrics_log->append(row);
        progress.metrics(row);
    }

    // A kept-best metric needs its split: say so before an epoch of training, not after.
    void check_keep_split() {
        if (!keep.keeps_best()) return;
        auto& src = im.nodes[static_cast<std::size_t>(im.source_idx)];
        std::int64_t n = 0;
        guarded(*src.def, "begin " + td.keep_split, [&] { n = src.source->begin(td.keep_split, 0); });
        keep.check_split(n);
    }

    // A resumed run: weights, run state and position from checkpoints/last, the rows so far, and
    // samples.txt cut back to what that checkpoint saw (docs/resume.md).
    void resume() {
        at = engine.load_resume(last_file);
        result.rows = at.rows;
        if (im.metrics_log) im.metrics_log->restore(at.rows);
        std::error_code ec;
        if (std::filesystem::exists(samples_file) &&
            std::filesystem::file_size(samples_file) > static_cast<std::uintmax_t>(at.samples_bytes))
            std::filesystem::resize_file(samples_file, static_cast<std::uintmax_t>(at.samples_bytes), ec);
        keep.restore(at.best);
        train_seconds = at.train_seconds;
        result.train_items = at.train_items;
        im.guard.skipped_in_row = at.skipped_in_row;
        im.expect_train_batches = at.train_batches;
        if (opt.log) {
            *opt.log << "resuming " << opt.run_dir.string() << " at " << at.describe() << "\n";
            if (at.threads != engine.threads_)
                *opt.log << "warning: the run trained with " << at.threads << " threads, this resume with "
                         << engine.threads_ << ": its numbers will not be bit-identical to an uninterrupted run\n";
        }
        replay_epochs();
    }
    // Drivers above the run see every epoch, the restored ones included.
    void replay_epochs() {
        for (std::int64_t e = 1; e <= at.epoch && opt.on_epoch && !result.stopped_early; ++e) {
            MetricsRow tr, va;
            for (const auto& r : at.rows) {
                if (r.epoch == e && r.split == "train") tr = r;
                if (r.epoch == e && r.split == td.keep_split) va = r;
            }
            if (!opt.on_epoch(e - 1, tr, va)) result.stopped_early = true;
        }
    }

    // The run so far, as the checkpoint of a position within `epoch` records it.
    RunPosition position(std::int64_t epoch, const PassTotals& pass) const {
        RunPosition p;
        p.epoch = epoch;
        p.pass = pass;
        p.train_batches = im.train_batches;
        p.skipped_in_row = im.guard.skipped_in_row;
        p.best = keep.best();
        p.train_seconds = train_seconds;
        p.train_items = result.train_items;
        p.rows = result.rows;
        std::error_code ec;
        const auto size = std::filesystem::file_size(samples_file, ec);
        p.samples_bytes = ec ? 0 : static_cast<std::int64_t>(size);
        p.threads = engine.threads_;
        return p;
    }
    std::filesystem::path written_last() const { return writes ? last_file : std::filesystem::path(); }

    // After every step (Impl::after_step): mid-epoch checkpoints, interrupts, injected faults
    // (tests).
    void after_step(bool training) {
        fault_after_step(training);
        const int sig = interrupt_signal();
        if (!training) {
            // Validation (or test) stops; the epoch loop writes the checkpoint.
            if (sig)
                throw Interrupted(sig, "epoch " + std::to_string(epoch_now + 1) + ", " + im.step.split,
                                  writes && std::filesystem::exists(last_file) ? last_file : std::filesystem::path());
            return;
        }
        const std::int64_t done = im.pass_steps;
        const bool due = (td.checkpoint_every > 0 && done % td.checkpoint_every == 0) ||
                         (td.checkpoint_seconds > 0 &&
                          std::chrono::duration<double>(Clock::now() - last_save).count() >= double(td.checkpoint_seconds));
        if (writes && (due || sig)) {
            engine.save_checkpoint(last_file, position(epoch_now, im.totals()));
            last_save = Clock::now();
        }
        if (sig)
            throw Interrupted(sig, "epoch " + std::to_string(epoch_now + 1) + ", after batch " + std::to_string(done),
                              written_last());
    }

    // Before the first epoch: the non-finite policy, and the hook the passes call after each step.
    void start() {
        im.guard.skip_batches = td.nonfinite == "skip_batch";
        im.guard.max_skipped = td.max_skipped;
        epoch_now = at.epoch;
        last_save = Clock::now();
        im.after_step = [this](bool training) { after_step(training); };
    }

    void run_epochs() {
        for (std::int64_t epoch = at.epoch; epoch < td.epochs && !result.stopped_early; ++epoch) {
            if (stops_early(epoch)) break;
            if (!run_epoch(epoch)) result.stopped_early = true;
        }
    }
    // train.early_stopping, before 0-based `epoch`: decided from the rows so far only, so a run
    // resumed after its last epoch stops exactly where the uninterrupted one did.
    bool stops_early(std::int64_t epoch) {
        if (!keep.stops(result.rows, im.higher_is_better)) return false;
        double best = 0;
        std::int64_t best_epoch = 0;
        const auto stalled = keep.stalled_epochs(result.rows, im.higher_is_better, &best, &best_epoch);
        result.early_stop_epoch = epoch;
        if (opt.log)
            *opt.log << "early stopping after epoch " << epoch << " of " << td.epochs << ": "
                     << metric_label(td.keep_metric, engine.metric_labels()) << " on " << td.keep_split
                     << " has not improved by more than " << td.min_delta << " for " << stalled
                     << " epochs (best " << best << " at epoch " << best_epoch << ")\n";
        return true;
    }

    // One epoch; false when the on_epoch observer stops the run there.
    bool run_epoch(std::int64_t epoch) {
        epoch_now = epoch;
        begin_epoch(epoch);
        const bool resumed = opt.resume && epoch == at.epoch && at.pass.steps > 0;
        MetricsRow tr = im.run_split(Impl::PassKind::train, "train", epoch, &progress, resumed ? &at.pass : nullptr);
        RNNFLOW_CHECK(!tr.values.empty(), "the training split gave no batches",
                      "check the training data and the batch settings");
        // What an interrupt during validation checkpoints: the end of this training pass.
        const RunPosition trained = position(epoch, im.totals());
        std::map<int, StageState> metric_sums;
        for (int m : im.metric_idx) {
            auto& mn = im.nodes[static_cast<std::size_t>(m)];
            guarded(*mn.def, "save run state", [&] { mn.stage->save_run_state(metric_sums[m]); });
        }
        train_seconds += tr.get("seconds");
        result.train_items += static_cast<std::int64_t>(tr.get("items_per_second") * tr.get("seconds") + 0.5);
        record(tr);
        const MetricsRow va = validate(epoch, trained, metric_sums);
        if (!va.values.empty()) record(va);
        if (opt.after_epoch) opt.after_epoch(result.rows, td.keep_metric);
        im.status.epoch_done(epoch + 1, headline());
        if (keep.keeps_best() && keep.improves(va, im.higher_is_better) && writes)
            engine.save_checkpoint(ckpt_dir / "best.safetensors", epoch + 1);
        write_samples(epoch);
        // The epoch's last act: everything above is in this checkpoint.
        epoch_now = epoch + 1;
        if (writes) engine.save_checkpoint(last_file, position(epoch + 1, PassTotals{}));
        last_save = Clock::now();
        return !opt.on_epoch || opt.on_epoch(epoch, tr, va);
    }

    // The optimiser's epoch, and the source's run state before its training pass (what every
    // checkpoint of the epoch stores for the source).
    void begin_epoch(std::int64_t epoch) {
        auto& on = im.nodes[static_cast<std::size_t>(im.optim_idx)];
        on.optim->begin_epoch(epoch);
        auto& src = im.nodes[static_cast<std::size_t>(im.source_idx)];
        im.source_snapshot = StageState();
        guarded(*src.def, "save run state", [&] { src.stage->save_run_state(im.source_snapshot); });
        if (const int sig = interrupt_signal()) {
            // Interrupted before the first step (e.g. while reading the data): a checkpoint
            // of the untrained start, so that the run resumes like any other.
            if (writes && !std::filesystem::exists(last_file)) engine.save_checkpoint(last_file, position(epoch, PassTotals{}));
            throw Interrupted(sig, "the start of epoch " + std::to_string(epoch + 1), written_last());
        }
    }

    // The pass over train.keep's split. Interrupted, it checkpoints the end of the training pass
    // (`trained`, with the metrics' sums of that moment).
    MetricsRow validate(std::int64_t epoch, const RunPosition& trained, const std::map<int, StageState>& metric_sums) {
        try {
            return im.run_split(Impl::PassKind::evaluate, td.keep_split, epoch, &progress);
        } catch (const Interrupted& e) {
            if (writes) engine.save_checkpoint(last_file, trained, &metric_sums);
            throw Interrupted(e.signal(), "epoch " + std::to_string(epoch + 1) + ", during validation", written_last());
        }
    }

    // train.sample_length: text from the sampler after each epoch, appended to samples.txt (a
    // sampler that writes files, such as frame_sampler, writes RUN_DIR/generated.* and its summary).
    void write_samples(std::int64_t epoch) {
        if (td.sample_length <= 0 || im.sampler_idx < 0 || !writes) return;
        SampleRequest req;
        req.length = td.sample_length;
        req.output = opt.run_dir / "generated";
        const std::string text = engine.generate(req);
        std::ofstream os(samples_file, std::ios::app);
        os << "=== epoch " << (epoch + 1) << " ===\n" << text << "\n";
    }

    // After the epochs: the test split with the kept checkpoint (then the last one again), and
    // summary.txt.
    void finish() {
        result.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
        result.items_per_second = train_seconds > 0 ? static_cast<double>(result.train_items) / train_seconds : 0;
        if (!writes) {
            if (td.test) test_pass();
            finish_headline("");
            return;
        }
        const auto kept = keep.kept(ckpt_dir);
        result.best_checkpoint = kept.string();
        if (td.test) {
            engine.load_checkpoint(kept);
            test_pass();
            engine.load_checkpoint(last_file);
        }
        finish_headline(kept.string());
        if (im.metrics_log) im.metrics_log->write_summary(result.rows, result.headline, kept.string(), engine.metric_labels());
    }
    // The run's headline so far: train.keep's metric (else the first metric of the rows, else
    // the loss) on train.keep's split and on test.
    Headline headline() const {
        std::string m = keep.keeps_best() ? td.keep_metric : main_metric(result.rows);
        if (m.empty()) m = "loss";
        const auto hib = im.higher_is_better.find(m);
        return make_headline(result.rows, m, metric_label(m, engine.metric_labels()),
                             hib != im.higher_is_better.end() && hib->second, td.keep_split);
    }
    std::int64_t parameter_count() const {
        std::int64_t n = 0;
        for (const auto& [name, p] : im.trainable) n += p->value.numel();
        return n;
    }
    // The headline of the finished run, into the result and status.json.
    void finish_headline(const std::string& kept) {
        Headline h = headline();
        h.seconds = result.seconds;
        h.items_per_second = result.items_per_second;
        h.parameters = result.parameters = parameter_count();
        h.kept_checkpoint = kept;
        for (const auto& line : headline_lines(h)) result.headline += line + "\n";
        result.headline_line = headline_line(h);
        im.status.finished(h);
    }
    void test_pass() {
        MetricsRow te = engine.evaluate("test", td.epochs - 1);
        te.epoch = 0;
        if (!te.values.empty()) record(te);
    }
};

TrainResult Engine::train() {
    const bool checkpoint = !opt_.run_dir.empty();
    const std::filesystem::path last = opt_.run_dir / "checkpoints" / "last.safetensors";
    try {
        RNNFLOW_CHECK(impl_->optim_idx >= 0, "the graph has no optimiser stage; nothing to train");
        TrainRun run(*this);  // its end removes the after-step hook
        run.check_keep_split();
        if (opt_.resume) run.resume();
        run.start();
        impl_->arena->execute([&] { run.run_epochs(); });
        run.finish();
        return std::move(run.result);
    } catch (const Interrupted& e) {
        impl_->status.interrupted(failure_text(e), !e.checkpoint().empty());
        throw;
    } catch (const std::exception& e) {
        impl_->status.failed(failure_text(e), checkpoint && std::filesystem::exists(last));
        throw;
    }
}

}  // namespace rnnflow
