// Fuzz target: the YAML graph loader and compiler (load_graph_text + compile + to_dot), with the
// built-in stage registry. Leading lines "#set path=value" of the input are --set overrides, so
// the override parser is fuzzed too.
#include <filesystem>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "pipeline/core/registry.hpp"
#include "pipeline/graph/graph.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace rnnflow;
    const std::string text = fuzz::as_string(data, size);
    std::vector<std::string> sets;
    std::size_t at = 0;
    while (text.compare(at, 5, "#set ") == 0) {
        const auto nl = text.find('\n', at);
        sets.push_back(text.substr(at + 5, nl == std::string::npos ? std::string::npos : nl - at - 5));
        if (nl == std::string::npos) break;
        at = nl + 1;
    }
    fuzz::expect_errors_only([&] {
        Registry& r = Registry::global();
        GraphDef def = load_graph_text(text, "fuzz.yaml", "/nonexistent/rnnflow-fuzz", sets, r);
        const CompiledGraph g = compile(std::move(def), r);
        (void)to_dot(g);
    });
    return 0;
}
