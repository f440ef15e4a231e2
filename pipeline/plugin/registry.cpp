#include "../core/registry.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>

namespace rnnflow {

namespace {

// The role of the base class a stage derives from; nullopt for none (a class derived from Stage
// itself, possible only through the non-template Registry::add).
std::optional<Role> class_role(const Stage& s) {
    if (dynamic_cast<const DataStage*>(&s)) return Role::data;
    if (dynamic_cast<const DataSource*>(&s)) return Role::source;
    if (dynamic_cast<const ModelStage*>(&s)) return Role::model;
    if (dynamic_cast<const OptimizerStage*>(&s)) return Role::optimizer;
    if (dynamic_cast<const MetricStage*>(&s)) return Role::metric;
    if (dynamic_cast<const SamplerStage*>(&s)) return Role::sampler;
    return std::nullopt;
}

using Factory = std::function<std::unique_ptr<Stage>(const Params&)>;

// `create`, checking once per stage it makes that the stage derives from the base class of the
// schema's role: the engine finds a stage's role by its base class, the compiler by its schema.
// Registry::add<T>() checked this at compile time and registration; other factories get it here.
Factory role_checked(Factory create, const StageSchema& schema, const std::string& origin) {
    if (!create) return create;  // schema-only registries (tests, documentation)
    return [create = std::move(create), type = schema.type(), role = schema.role(), origin](const Params& p) {
        std::unique_ptr<Stage> stage = create(p);
        if (!stage) return stage;
        const std::optional<Role> r = class_role(*stage);
        if (!r)
            throw Error("stage type '" + type + "' from " + origin + ": the class derives from none of the "
                            "role base classes",
                        std::string("derive it from ") + role_base_class(role));
        if (*r != role) throw role_mismatch(type, role, *r, origin);
        return stage;
    };
}

}  // namespace

void Registry::add(StageSchema schema, Factory create) {
    const std::string name = schema.type();
    auto it = types_.find(name);
    if (it != types_.end())
        throw Error("stage type '" + name + "' from " + origin_ + " is already defined by " +
                        it->second.origin,
                    "rename the stage type in one of them");
    if (const RoleViolation v = check_role_ports(schema))
        throw Error("stage type '" + name + "' from " + origin_ + ": " + v.what, v.hint);
    Factory checked = role_checked(std::move(create), schema, origin_);
    types_.emplace(name, StageType{std::move(schema), std::move(checked), origin_});
}

const StageType* Registry::find(const std::string& type) const {
    auto it = types_.find(type);
    return it == types_.end() ? nullptr : &it->second;
}

std::vector<std::string> Registry::names() const {
    std::vector<std::string> out;
    for (const auto& [k, v] : types_) out.push_back(k);
    return out;
}

Registry& Registry::global() {
    static Registry r;
    static std::once_flag once;
    std::call_once(once, [] { register_plugin(r, rnnflow_builtin_plugin(), "built-in"); });
    return r;
}

void register_plugin(Registry& r, const rnnflow_plugin_desc* desc, const std::string& origin) {
    if (!desc) throw Error(origin + ": plug-in entry point returned no descriptor");
    if (desc->abi_version != RNNFLOW_ABI_VERSION)
        throw Error(origin + ": plug-in ABI version " + std::to_string(desc->abi_version) +
                        ", this rnnflow expects " + std::to_string(RNNFLOW_ABI_VERSION),
                    "rebuild the plug-in against the installed rnnflow SDK");
    r.set_origin(origin);
    try {
        desc->register_stages(&r);
    } catch (...) {
        r.set_origin("built-in");
        throw;
    }
    r.set_origin("built-in");
}

bool is_plugin_name(const std::string& spec) { return spec.find('/') == std::string::npos; }

std::vector<std::filesystem::path> plugin_search_path() {
    std::vector<std::filesystem::path> dirs;
    if (const char* env = std::getenv("RNNFLOW_PLUGIN_PATH")) {
        std::string s = env;
        std::size_t start = 0;
        while (start <= s.size()) {
            const std::size_t end = std::min(s.find(':', start), s.size());
            if (end > start) dirs.emplace_back(s.substr(start, end - start));  // empty entries: skip
            start = end + 1;
        }
    }
    // The folder of this library: <prefix>/lib/rnnflow/plugins once installed.
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&plugin_search_path), &info) && info.dli_fname) {
        // The loader's path may be bin/../lib/librnnflow.so.0.1 (RPATH $ORIGIN/../lib).
        std::error_code ec;
        std::filesystem::path lib = std::filesystem::weakly_canonical(info.dli_fname, ec);
        if (ec) lib = std::filesystem::path(info.dli_fname).lexically_normal();
        if (lib.has_parent_path()) dirs.push_back(lib.parent_path() / RNNFLOW_INSTALL_PLUGIN_SUBDIR);
    }
    return dirs;
}

std::filesystem::path find_plugin(const std::string& spec, const std::filesystem::path& base) {
    namespace fs = std::filesystem;
    if (!is_plugin_name(spec)) {
        const fs::path p(spec);
        return p.is_relative() && !base.empty() ? (base / p).lexically_normal() : p;
    }
    RNNFLOW_CHECK(!spec.empty(), "empty plug-in name");
    std::vector<std::string> files;
    if (spec.size() > 3 && spec.compare(spec.size() - 3, 3, ".so") == 0) files = {spec};
    else files = {"lib" + spec + ".so", spec + ".so"};
    const auto dirs = plugin_search_path();
    std::string tried;
    for (const auto& d : dirs)
        for (const auto& f : files) {
            const fs::path p = d / f;
            std::error_code ec;
            if (fs::is_regular_file(p, ec)) return p;
            tried += (tried.empty() ? "" : ", ") + p.string();
        }
    const bool env_set = std::getenv("RNNFLOW_PLUGIN_PATH") && *std::getenv("RNNFLOW_PLUGIN_PATH");
    throw Error(spec + ": plug-in not found on the search path (tried " + tried + ")",
                std::string(env_set ? "" : "RNNFLOW_PLUGIN_PATH is not set; ") +
                    "add the plug-in's folder to RNNFLOW_PLUGIN_PATH (colon-separated), or give a path "
                    "with a '/', e.g. ./lib" + spec + ".so");
}

void load_plugin(Registry& r, const std::string& spec, const std::filesystem::path& base) {
    namespace fs = std::filesystem;
    const std::string path = find_plugin(spec, base).string();
    if (!fs::exists(path))
        throw Error(path + ": plug-in file not found", "check the path (relative paths in YAML start at the graph file's folder)");
    // The same file named twice (command line and graph, or a graph loaded again) adds nothing.
    const std::string canonical = fs::canonical(path).string();
    if (r.is_loaded(canonical)) return;
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char* why = dlerror();
        throw Error(path + ": cannot load plug-in: " + (why ? why : "unknown dlopen error"),
                    "is it a shared library built for this machine?");
    }
    auto fn = reinterpret_cast<rnnflow_plugin_fn>(dlsym(handle, "rnnflow_plugin"));
    if (!fn)
        throw Error(path + ": not an rnnflow plug-in (no 'rnnflow_plugin' entry point)",
                    "a plug-in defines its entry point with RNNFLOW_PLUGIN(...)");
    register_plugin(r, fn(), path);
    r.mark_loaded(canonical);
}

}  // namespace rnnflow
