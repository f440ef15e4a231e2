// GraphDef → CompiledGraph: connections checked against the schemas, a Boost.Graph of stages
// (edges for port connections and value references) searched for cycles, and a topological
// order that keeps file order among stages that do not depend on each other.
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/depth_first_search.hpp>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "../core/role.hpp"
#include "graph.hpp"

namespace rnnflow {
namespace {

struct EdgeInfo {
    SourceLoc loc;  // where the consumer names the producer
};

using StageGraph =
    boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, boost::no_property, EdgeInfo>;
using Vertex = boost::graph_traits<StageGraph>::vertex_descriptor;
using Edge = boost::graph_traits<StageGraph>::edge_descriptor;

// Records, for each back edge of a depth-first search, the cycle it closes.
class CycleFinder : public boost::default_dfs_visitor {
public:
    CycleFinder(std::vector<Vertex>& parent, std::vector<std::pair<std::vector<Vertex>, Edge>>& cycles)
        : parent_(parent), cycles_(cycles) {}
    void tree_edge(Edge e, const StageGraph& g) { parent_[boost::target(e, g)] = boost::source(e, g); }
    void back_edge(Edge e, const StageGraph& g) {
        const Vertex from = boost::source(e, g), to = boost::target(e, g);
        std::vector<Vertex> path{from};  // to ... from, walked backwards through the DFS tree
        for (Vertex v = from; v != to;) {
            v = parent_[v];
            path.push_back(v);
        }
        std::reverse(path.begin(), path.end());
        path.push_back(to);
        cycles_.emplace_back(std::move(path), e);
    }

private:
    std::vector<Vertex>& parent_;
    std::vector<std::pair<std::vector<Vertex>, Edge>>& cycles_;
};

// "stage" when it has one output, else "stage.port": as a user would write it.
std::string port_ref(const StageSchema& s, const std::string& id, const std::string& port) {
    return s.outputs().size() == 1 ? id : id + "." + port;
}

// An output of `wanted` type to suggest for input `port` of stage `consumer`: one whose port
// name is close to the input's name, else the one nearest in file order.
std::string suggest_output(const CompiledGraph& cg, int consumer, const std::string& port,
                           PortType wanted) {
    struct Cand { int stage; std::string port; std::string ref; };
    std::vector<Cand> cands;
    for (std::size_t i = 0; i < cg.def.stages.size(); ++i) {
        if (static_cast<int>(i) == consumer || !cg.types[i]) continue;
        const StageSchema& s = cg.types[i]->schema;
        for (const auto& o : s.outputs())
            if (o.type == wanted)
                cands.push_back({static_cast<int>(i), o.name, port_ref(s, cg.def.stages[i].id, o.name)});
    }
    if (cands.empty()) return {};
    std::vector<std::string> names;
    for (const auto& c : cands) names.push_back(c.port);
    const std::string close = closest_match(port, names);
    const Cand* best = nullptr;
    for (const auto& c : cands) {
        if (!close.empty() && c.port != close) continue;
        // nearest in file order; upstream wins a tie
        auto dist = [&](const Cand& x) { return std::abs(x.stage - consumer) * 2 + (x.stage > consumer); };
        if (!best || dist(c) < dist(*best)) best = &c;
    }
    return best->ref;
}

void add_stage_edge(CompiledGraph& cg, StageGraph& graph, int from, int to, const SourceLoc& loc) {
    boost::add_edge(static_cast<Vertex>(from), static_cast<Vertex>(to), EdgeInfo{loc}, graph);
    auto& up = cg.upstream[static_cast<std::size_t>(to)];
    if (std::find(up.begin(), up.end(), from) == up.end()) up.push_back(from);
}

// Stage i's inputs: each named input exists, each required one is connected to an output of
// its type; its connections and value references become edges.
void connect_stage(CompiledGraph& cg, std::size_t i, StageGraph& graph, std::vector<Diagnostic>& diags) {
    const auto& stages = cg.def.stages;
    const StageDef& sd = stages[i];
    const StageSchema& s = cg.types[i]->schema;
    const std::string who = "stage '" + sd.id + "' (" + sd.type + "): ";
    for (const auto& [name, ref] : sd.inputs) {
        if (s.input_index(name) < 0)
            diags.push_back({ref.loc, who + "no input '" + name + "'", did_you_mean(name, s.keys())});
    }
    for (std::size_t k = 0; k < s.inputs().size(); ++k) {
        const PortSpec& in = s.inputs()[k];
        auto it = sd.inputs.find(in.name);
        if (it == sd.inputs.end()) {
            if (in.optional) continue;
            const std::string sug = suggest_output(cg, static_cast<int>(i), in.name, in.type);
            diags.push_back({sd.loc,
                             who + "input '" + in.name + "' (" + to_string(in.type) +
                                 ") is not connected",
                             sug.empty() ? "no stage in this graph gives " + std::string(to_string(in.type))
                                         : "add " + in.name + ": " + sug});
            continue;
        }
        const InputRef& ref = it->second;
        const int p = cg.def.index(ref.stage);
        if (p < 0 || !cg.types[static_cast<std::size_t>(p)]) {
            if (p < 0) {
                std::vector<std::string> ids;
                for (const auto& x : stages) ids.push_back(x.id);
                diags.push_back({ref.loc, who + "input '" + in.name + "' names unknown stage '" +
                                              ref.stage + "'",
                                 did_you_mean(ref.stage, ids)});
            }
            continue;
        }
        const StageSchema& ps = cg.types[static_cast<std::size_t>(p)]->schema;
        const int o = ps.output_index(ref.port);
        if (o < 0) {
            diags.push_back({ref.loc, who + "input '" + in.name + "': stage '" + ref.stage + "' (" +
                                          ps.type() + ") has no output '" + ref.port + "'", ""});
            continue;
        }
        const PortType got = ps.outputs()[static_cast<std::size_t>(o)].type;
        if (got != in.type) {
            const std::string sug = suggest_output(cg, static_cast<int>(i), in.name, in.type);
            diags.push_back({ref.loc,
                             who + "input '" + in.name + "' expects " + to_string(in.type) + ", '" +
                                 port_ref(ps, ref.stage, ref.port) + "' gives " + to_string(got),
                             sug.empty() ? "no stage in this graph gives " + std::string(to_string(in.type))
                                         : "did you mean '" + sug + "'?"});
            continue;
        }
        const int c = static_cast<int>(cg.connections.size());
        cg.connections.push_back({p, o, static_cast<int>(i), static_cast<int>(k)});
        cg.input_conn[i][k] = c;
        add_stage_edge(cg, graph, p, static_cast<int>(i), ref.loc);
    }
    for (const auto& [param, ref] : sd.refs) {
        const int p = cg.def.index(ref.stage);
        if (p < 0) {
            diags.push_back({ref.loc, who + "'" + param + "' refers to unknown stage '" + ref.stage + "'", ""});
            continue;
        }
        add_stage_edge(cg, graph, p, static_cast<int>(i), ref.loc);
    }
}

// Role contracts (role.hpp): a role input is fed by a stage of the role the contract names. Role
// inputs are required inputs (the registry checked), so an unconnected one was reported above.
void check_role_inputs(const CompiledGraph& cg, std::vector<Diagnostic>& diags) {
    for (std::size_t i = 0; i < cg.def.stages.size(); ++i) {
        if (!cg.types[i]) continue;
        const StageSchema& s = cg.types[i]->schema;
        for (const RolePort& port : role_ports(s.role())) {
            const int k = role_port_index(s, port);
            if (!port.input || k < 0) continue;
            const int c = cg.input_conn[i][static_cast<std::size_t>(k)];
            if (c < 0) continue;
            const int p = cg.connections[static_cast<std::size_t>(c)].from_stage;
            const StageSchema& ps = cg.types[static_cast<std::size_t>(p)]->schema;
            if (ps.role() == port.fed_by) continue;
            const StageDef& sd = cg.def.stages[i];
            diags.push_back({sd.inputs.at(port.name).loc,
                             "stage '" + sd.id + "' (" + sd.type + "): input '" + port.name +
                                 "' must be fed by a stage of role " + to_string(port.fed_by) + ", '" +
                                 cg.def.stages[static_cast<std::size_t>(p)].id + "' (" + ps.type() +
                                 ") has role " + to_string(ps.role()),
                             std::string("the ") + to_string(port.role) + " role's '" + port.name + "' is " +
                                 port.doc});
        }
    }
}

}  // namespace

CompiledGraph compile(GraphDef def, const Registry& registry) {
    std::vector<Diagnostic> diags;
    CompiledGraph cg;
    cg.def = std::move(def);
    const auto& stages = cg.def.stages;
    const std::size_t n = stages.size();
    cg.types.resize(n, nullptr);
    cg.input_conn.resize(n);
    cg.output_conns.resize(n);
    cg.upstream.resize(n);

    for (std::size_t i = 0; i < n; ++i) {
        cg.types[i] = registry.find(stages[i].type);
        if (!cg.types[i]) {
            std::string hint = did_you_mean(stages[i].type, registry.names());
            diags.push_back({stages[i].loc, "stage '" + stages[i].id + "': unknown stage type '" +
                                                stages[i].type + "'",
                             hint.empty() ? "`rnnflow stages` lists every stage type" : hint});
            continue;
        }
        const StageSchema& s = cg.types[i]->schema;
        cg.input_conn[i].assign(s.inputs().size(), -1);
        cg.output_conns[i].resize(s.outputs().size());
    }

    StageGraph graph(n);
    for (std::size_t i = 0; i < n; ++i)
        if (cg.types[i]) connect_stage(cg, i, graph, diags);
    check_role_inputs(cg, diags);

    // Consumers of each output in file order: connections were made consumer by consumer.
    for (std::size_t c = 0; c < cg.connections.size(); ++c) {
        const Connection& x = cg.connections[c];
        cg.output_conns[static_cast<std::size_t>(x.from_stage)][static_cast<std::size_t>(x.from_port)]
            .push_back(static_cast<int>(c));
    }
    for (auto& up : cg.upstream) std::sort(up.begin(), up.end());

    // Cycles: each back edge of a depth-first search (from stages in file order) closes one.
    std::vector<Vertex> parent(n);
    std::vector<std::pair<std::vector<Vertex>, Edge>> cycles;
    if (n > 0) boost::depth_first_search(graph, boost::visitor(CycleFinder(parent, cycles)));
    for (const auto& [path, edge] : cycles) {
        std::string text;
        for (std::size_t k = 0; k < path.size(); ++k) text += (k ? " -> " : "") + stages[path[k]].id;
        diags.push_back({graph[edge].loc, "stages form a cycle: " + text,
                         "a stage cannot depend on its own output; remove one of these connections"});
    }

    // Topological order, ties broken by file order (Kahn with the smallest ready index first).
    std::vector<int> indegree(n, 0);
    for (auto [e, end] = boost::edges(graph); e != end; ++e) ++indegree[boost::target(*e, graph)];
    std::set<std::size_t> ready;
    for (std::size_t i = 0; i < n; ++i)
        if (indegree[i] == 0) ready.insert(i);
    while (!ready.empty()) {
        const std::size_t v = *ready.begin();
        ready.erase(ready.begin());
        cg.order.push_back(static_cast<int>(v));
        for (auto [e, end] = boost::out_edges(v, graph); e != end; ++e)
            if (--indegree[boost::target(*e, graph)] == 0) ready.insert(boost::target(*e, graph));
    }

    if (!diags.empty()) {
        std::stable_sort(diags.begin(), diags.end(), [](const Diagnostic& a, const Diagnostic& b) {
            return std::pair(a.loc.line, a.loc.col) < std::pair(b.loc.line, b.loc.col);
        });
        throw LoadError(std::move(diags));
    }
    return cg;
}

namespace {

std::string dot_quote(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n') { out += "\\n"; continue; }
        out += c;
    }
    return out + "\"";
}

}  // namespace

std::string to_dot(const CompiledGraph& g) {
    const auto& stages = g.def.stages;
    std::string out = "digraph " + dot_quote(g.def.experiment) + " {\n";
    out += "  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n";
    for (const auto& s : stages)
        out += "  " + dot_quote(s.id) + " [label=" + dot_quote(s.id + "\n" + s.type) + "];\n";
    for (const auto& c : g.connections) {
        const auto& from = g.types[static_cast<std::size_t>(c.from_stage)]->schema;
        const auto& to = g.types[static_cast<std::size_t>(c.to_stage)]->schema;
        const PortSpec& op = from.outputs()[static_cast<std::size_t>(c.from_port)];
        const PortSpec& ip = to.inputs()[static_cast<std::size_t>(c.to_port)];
        out += "  " + dot_quote(stages[static_cast<std::size_t>(c.from_stage)].id) + " -> " +
               dot_quote(stages[static_cast<std::size_t>(c.to_stage)].id) + " [label=" +
               dot_quote(op.name + " -> " + ip.name + "\n" + to_string(op.type)) + "];\n";
    }
    for (const auto& s : stages)
        for (const auto& [param, ref] : s.refs)
            out += "  " + dot_quote(ref.stage) + " -> " + dot_quote(s.id) +
                   " [style=dashed, label=" + dot_quote(ref.value + " -> " + param) + "];\n";
    out += "}\n";
    return out;
}

}  // namespace rnnflow
