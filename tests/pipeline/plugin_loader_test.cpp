// Plug-in loading errors name the file; built-ins take the plug-in path.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "pipeline/core/registry.hpp"
#include "pipeline/graph/graph.hpp"

using namespace rnnflow;
namespace fs = std::filesystem;

TEST_CASE("plugins: a missing file, a non-library and a library without the entry point", "[plugin]") {
    Registry r;
    REQUIRE_THROWS_WITH(load_plugin(r, "/nonexistent/libx.so"),
                        "/nonexistent/libx.so: plug-in file not found");

    const fs::path text = fs::temp_directory_path() / ("rnnflow_not_a_plugin_" + std::to_string(::getpid()) + ".so");
    { std::ofstream(text) << "not a shared library\n"; }
    REQUIRE_THROWS_WITH(load_plugin(r, text.string()), Catch::StartsWith(text.string() + ": cannot load plug-in: "));
    fs::remove(text);

    // The engine library itself is a shared library, but exports no `rnnflow_plugin`.
    const fs::path core = fs::path(RNNFLOW_CLI).parent_path() / "librnnflow.so";
    REQUIRE(fs::exists(core));
    REQUIRE_THROWS_WITH(load_plugin(r, core.string()),
                        core.string() + ": not an rnnflow plug-in (no 'rnnflow_plugin' entry point)");
}

TEST_CASE("plugins: ABI mismatch and duplicate type names are refused", "[plugin]") {
    static void (*noop)(void*) = [](void*) {};
    rnnflow_plugin_desc old{RNNFLOW_ABI_VERSION + 1, "old", "stale", "0.0", noop};
    Registry r;
    try {
        register_plugin(r, &old, "libold.so");
        FAIL("expected an ABI error");
    } catch (const Error& e) {
        REQUIRE(e.message() == "libold.so: plug-in ABI version " + std::to_string(RNNFLOW_ABI_VERSION + 1) +
                                   ", this rnnflow expects " + std::to_string(RNNFLOW_ABI_VERSION));
        REQUIRE(e.hint() == "rebuild the plug-in against the installed rnnflow SDK");
    }

    Registry& g = Registry::global();
    REQUIRE(g.find("lstm") != nullptr);
    REQUIRE(g.find("lstm")->origin == "built-in");
    // Registering the built-in list a second time collides on the first type name.
    Registry twice;
    register_plugin(twice, rnnflow_builtin_plugin(), "built-in");
    REQUIRE_THROWS_WITH(register_plugin(twice, rnnflow_builtin_plugin(), "libcopy.so"),
                        Catch::Contains("from libcopy.so is already defined by built-in"));
}

namespace {

// Sets RNNFLOW_PLUGIN_PATH for one test and restores it.
struct PluginPath {
    std::string old;
    bool had;
    explicit PluginPath(const char* value) : had(std::getenv("RNNFLOW_PLUGIN_PATH") != nullptr) {
        if (had) old = std::getenv("RNNFLOW_PLUGIN_PATH");
        if (value) ::setenv("RNNFLOW_PLUGIN_PATH", value, 1);
        else ::unsetenv("RNNFLOW_PLUGIN_PATH");
    }
    ~PluginPath() {
        if (had) ::setenv("RNNFLOW_PLUGIN_PATH", old.c_str(), 1);
        else ::unsetenv("RNNFLOW_PLUGIN_PATH");
    }
};

}  // namespace

TEST_CASE("plugins: a bare name is found on RNNFLOW_PLUGIN_PATH as libNAME.so or NAME.so", "[plugin]") {
    const std::string dir = RNNFLOW_TEST_PLUGIN_DIR;
    PluginPath env(("/nonexistent/a::" + dir).c_str());  // empty entries are skipped
    REQUIRE(find_plugin("faulty") == fs::path(dir) / "libfaulty.so");
    REQUIRE(find_plugin("libfaulty.so") == fs::path(dir) / "libfaulty.so");
    // NAME.so too (plug-ins built without the lib prefix).
    const fs::path other = fs::temp_directory_path() / ("rnnflow_path_" + std::to_string(::getpid()));
    fs::create_directories(other);
    fs::copy_file(fs::path(dir) / "libfaulty.so", other / "faulty2.so", fs::copy_options::overwrite_existing);
    {
        PluginPath env2(other.c_str());
        REQUIRE(find_plugin("faulty2") == other / "faulty2.so");
    }
    fs::remove_all(other);

    Registry r;
    load_plugin(r, "faulty");
    REQUIRE(r.find("faulty") != nullptr);
    REQUIRE(r.find("faulty")->origin == dir + "/libfaulty.so");
    // The same file by name and by path adds nothing the second time.
    load_plugin(r, dir + "/libfaulty.so");
    REQUIRE(r.names() == std::vector<std::string>{"faulty"});
}

TEST_CASE("plugins: a name not on the search path lists every file tried", "[plugin]") {
    {
        PluginPath env("/nonexistent/a:/nonexistent/b");
        Registry r;
        try {
            load_plugin(r, "highway");
            FAIL("expected a not-found error");
        } catch (const Error& e) {
            REQUIRE_THAT(e.message(), Catch::StartsWith(
                "highway: plug-in not found on the search path (tried /nonexistent/a/libhighway.so, "
                "/nonexistent/a/highway.so, /nonexistent/b/libhighway.so, /nonexistent/b/highway.so"));
            REQUIRE_THAT(e.hint(), Catch::StartsWith("add the plug-in's folder to RNNFLOW_PLUGIN_PATH"));
        }
    }
    {
        PluginPath env(nullptr);
        Registry r;
        REQUIRE_THROWS_WITH(load_plugin(r, "highway"), Catch::StartsWith("highway: plug-in not found"));
        try {
            load_plugin(r, "highway");
        } catch (const Error& e) {
            REQUIRE_THAT(e.hint(), Catch::StartsWith("RNNFLOW_PLUGIN_PATH is not set; "));
            REQUIRE_THAT(e.hint(), Catch::Contains("./libhighway.so"));
        }
    }
    // The installed plug-in folder is searched last, next to the library.
    const auto dirs = plugin_search_path();
    REQUIRE(!dirs.empty());
    REQUIRE(dirs.back() == fs::path(RNNFLOW_CLI).parent_path() / "rnnflow" / "plugins");
}

TEST_CASE("plugins: paths (with a '/') are not searched; relative ones start at the base folder", "[plugin]") {
    REQUIRE(find_plugin("../p/libx.so", "/repo/graphs") == fs::path("/repo/p/libx.so"));
    REQUIRE(find_plugin("./libx.so") == fs::path("./libx.so"));
    REQUIRE(find_plugin("/abs/libx.so", "/repo") == fs::path("/abs/libx.so"));
    Registry r;
    REQUIRE_THROWS_WITH(load_plugin(r, "p/libx.so", "/repo/graphs"), "/repo/graphs/p/libx.so: plug-in file not found");
}

TEST_CASE("plugins: load_graph_plugins reads a graph file's list: names on the search path, paths from its folder",
          "[plugin]") {
    const std::string dir = RNNFLOW_TEST_PLUGIN_DIR;
    const fs::path tmp = fs::temp_directory_path() / ("rnnflow_graph_plugins_" + std::to_string(::getpid()));
    fs::create_directories(tmp / "sub");
    auto graph = [&](const std::string& name, const std::string& text) {
        std::ofstream(tmp / name) << text;
        return tmp / name;
    };
    SECTION("a bare name, not a file next to the graph (the sweep looked for <graph folder>/faulty)") {
        PluginPath env(dir.c_str());
        Registry r;
        load_graph_plugins(graph("g.yaml", "plugins: [faulty]\nstages: {}\n"), r);
        REQUIRE(r.find("faulty") != nullptr);
        REQUIRE(r.find("faulty")->origin == dir + "/libfaulty.so");
    }
    SECTION("a path relative to the graph's folder, also as a single scalar") {
        PluginPath env(nullptr);
        fs::copy_file(fs::path(dir) / "libfaulty.so", tmp / "sub" / "libf.so", fs::copy_options::overwrite_existing);
        Registry r;
        load_graph_plugins(graph("g2.yaml", "plugins: sub/libf.so\nstages: {}\n"), r);
        REQUIRE(r.find("faulty") != nullptr);
        REQUIRE(r.find("faulty")->origin == (tmp / "sub" / "libf.so").string());
    }
    SECTION("a missing plug-in is an error naming it; a file load_graph rejects loads nothing") {
        PluginPath env(nullptr);
        Registry r;
        REQUIRE_THROWS_WITH(load_graph_plugins(graph("g3.yaml", "plugins: [nope/libx.so]\n"), r),
                            (tmp / "nope" / "libx.so").string() + ": plug-in file not found");
        load_graph_plugins(graph("g4.yaml", "plugins: [faulty\n"), r);  // YAML error: load_graph's to report
        load_graph_plugins(tmp / "absent.yaml", r);
        load_graph_plugins(graph("g5.yaml", "plugins: {a: b}\n"), r);
        REQUIRE(r.names().empty());
    }
    fs::remove_all(tmp);
}

TEST_CASE("plugins: a plug-in whose optimiser misnames its role port is refused, naming the file", "[plugin][role]") {
    // tests/plugins/misnamed_port.cpp: an optimiser whose loss input is 'loss', not 'minimize'.
    // Before role contracts it loaded, and the engine looked the port up as index -1.
    const std::string file = std::string(RNNFLOW_TEST_PLUGIN_DIR) + "/libmisnamed_port.so";
    Registry r;
    try {
        load_plugin(r, file);
        FAIL("expected a role contract error");
    } catch (const Error& e) {
        REQUIRE(e.message() == "stage type 'misnamed_sgd' from " + file +
                                   ": the optimizer role requires an input 'minimize' (loss), the schema declares none");
        REQUIRE(e.hint() == "rename input 'loss' to 'minimize': it is the loss the engine runs backward from; the "
                            "optimiser updates the parameters upstream of it (docs/plugins.md, Roles)");
    }
    REQUIRE(r.find("misnamed_sgd") == nullptr);
    REQUIRE(!r.is_loaded(fs::canonical(file).string()));
}
