// Plug-in loading errors name the file; built-ins take the plug-in path.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "pipeline/core/registry.hpp"

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
