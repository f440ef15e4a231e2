// The stage registry and the plug-in entry point. Built-in stages register through exactly the
// path a plug-in takes: a descriptor whose register function adds stage types.
#pragma once

#include <concepts>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "role.hpp"
#include "schema.hpp"
#include "stage.hpp"

// 3: PortType::frames (the values after it moved), FrameSplit, npy.hpp, safetensors.hpp,
//    PortInfo::directions; version 0.3 (the minor version moves with the ABI)
// 4: SampleRequest's frame-sampler fields (prime_from, prime_frames, output), top_p (#25,
//    folded into 4: 0.4 is unreleased), midi.hpp; 0.4
#define RNNFLOW_ABI_VERSION 4
#define RNNFLOW_VERSION "0.4.0"

namespace rnnflow {

struct StageType {
    StageSchema schema;
    std::function<std::unique_ptr<Stage>(const Params&)> create;
    std::string origin;  // "built-in" or the plug-in file
};

namespace detail {
// T names exactly one role: it derives from one role base class (an ambiguous or absent
// T::stage_role does not satisfy the requirement).
template <class T>
concept one_stage_role = requires {
    { T::stage_role } -> std::convertible_to<Role>;
};
}  // namespace detail

class Registry {
public:
    // A stage class with `static StageSchema schema()` and a constructor from `const Params&`,
    // derived from the base class of its schema's role (role.hpp).
    template <class T>
    void add() {
        static_assert(std::is_base_of_v<Stage, T>,
                      "rnnflow: a stage class derives from the base class of its role (stage.hpp)");
        static_assert(detail::one_stage_role<T>,
                      "rnnflow: a stage class derives from exactly one role base class: DataStage, "
                      "DataSource, ModelStage, OptimizerStage, MetricStage or SamplerStage");
        if constexpr (std::is_base_of_v<Stage, T> && detail::one_stage_role<T>) {  // else: only the asserts
            StageSchema s = T::schema();
            if (s.role() != T::stage_role) throw role_mismatch(s.type(), s.role(), T::stage_role, origin_);
            add(std::move(s), [](const Params& p) -> std::unique_ptr<Stage> { return std::make_unique<T>(p); });
        }
    }
    // Throws Error if the type name is taken, or if the schema lacks a port its role requires
    // (role.hpp). The stages `create` makes must derive from the base class of the schema's role.
    void add(StageSchema schema, std::function<std::unique_ptr<Stage>(const Params&)> create);

    const StageType* find(const std::string& type) const;
    std::vector<std::string> names() const;  // sorted
    const std::map<std::string, StageType>& types() const { return types_; }

    // Where types added from now on come from (set by the plug-in loader).
    void set_origin(std::string origin) { origin_ = std::move(origin); }
    // Plug-in files (canonical paths) already registered.
    bool is_loaded(const std::string& canonical_path) const { return loaded_.count(canonical_path) != 0; }
    void mark_loaded(const std::string& canonical_path) { loaded_.insert(canonical_path); }

    // The registry with every built-in stage (created on first use).
    static Registry& global();

private:
    std::map<std::string, StageType> types_;
    std::set<std::string> loaded_;
    std::string origin_ = "built-in";
};

}  // namespace rnnflow

extern "C" {
// What a plug-in's entry point returns. Layout is frozen per ABI version.
struct rnnflow_plugin_desc {
    int abi_version;       // RNNFLOW_ABI_VERSION the plug-in was built with
    const char* name;
    const char* summary;
    const char* version;
    void (*register_stages)(void* registry);  // a rnnflow::Registry*
};
typedef const rnnflow_plugin_desc* (*rnnflow_plugin_fn)(void);
}

// In a plug-in: RNNFLOW_PLUGIN(myplugin, "what it adds", "1.0", register_fn) exports
// `rnnflow_plugin`. With RNNFLOW_BUILTIN defined (stages/builtin.cpp) it defines
// `rnnflow_builtin_plugin` instead, unexported, so built-ins take the same path.
#define RNNFLOW_PLUGIN_DESC_(ident, summary, version, fn)                                    \
    static void ident##_register_(void* r) { fn(*static_cast<::rnnflow::Registry*>(r)); }  \
    static const rnnflow_plugin_desc ident##_desc_ = {RNNFLOW_ABI_VERSION, #ident, summary, \
                                                      version, &ident##_register_};
#ifdef RNNFLOW_BUILTIN
#define RNNFLOW_PLUGIN(ident, summary, version, fn)       \
    RNNFLOW_PLUGIN_DESC_(ident, summary, version, fn)     \
    const rnnflow_plugin_desc* rnnflow_builtin_plugin() { return &ident##_desc_; }
#else
#define RNNFLOW_PLUGIN(ident, summary, version, fn)                                   \
    RNNFLOW_PLUGIN_DESC_(ident, summary, version, fn)                                 \
    extern "C" __attribute__((visibility("default"))) const rnnflow_plugin_desc* rnnflow_plugin(void) { \
        return &ident##_desc_;                                                        \
    }
#endif

const rnnflow_plugin_desc* rnnflow_builtin_plugin();

namespace rnnflow {
// Register a descriptor's stages into `r`; checks the ABI version. `origin` names the file.
void register_plugin(Registry& r, const rnnflow_plugin_desc* desc, const std::string& origin);
// dlopen a plug-in and register it; each failure is an Error naming the file. `spec` is a path
// when it holds a '/' (relative paths start at `base`, the current folder when empty), else a
// name looked up with find_plugin.
void load_plugin(Registry& r, const std::string& spec, const std::filesystem::path& base = {});

// The file a plug-in spec names. A bare name (no '/') is looked for as libNAME.so and NAME.so
// (or exactly NAME when it ends in ".so") in each folder of RNNFLOW_PLUGIN_PATH (colon-
// separated), then in the installed plug-in folder; the error lists every file tried.
std::filesystem::path find_plugin(const std::string& spec, const std::filesystem::path& base = {});
// Folders searched for bare names, in order: RNNFLOW_PLUGIN_PATH's, then
// <folder of librnnflow.so>/rnnflow/plugins (where `cmake --install` puts plug-ins).
std::vector<std::filesystem::path> plugin_search_path();
bool is_plugin_name(const std::string& spec);  // no '/': searched, not a path
}  // namespace rnnflow
