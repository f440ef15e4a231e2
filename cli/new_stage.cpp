// `rnnflow new-stage NAME`: a plug-in project that builds against the installed SDK as it is
// written — CMakeLists.txt, one differentiable stage (a learned scale and shift per channel,
// forward and backward side by side), its plug-in entry point, a Catch2 test with a
// finite-difference gradient check, a graph that uses the stage, and a README.
// tests/cli/plugins_sdk.sh builds a freshly scaffolded project and runs its test.
#include <algorithm>
#include <cctype>
#include <fstream>
#include <regex>
#include <set>

#include "cli/commands.hpp"

namespace rnnflow {

namespace {

// @name@: the stage type (snake_case); @Class@: its class; @version@: the SDK's version.
const char* kCMakeLists = R"tpl(# The @name@ plug-in for rnnflow, built against the installed SDK:
#   cmake -S . -B build -DCMAKE_PREFIX_PATH=<rnnflow install prefix>
#   cmake --build build && ctest --test-dir build
cmake_minimum_required(VERSION 3.25)
project(@name@ VERSION 0.1.0 LANGUAGES CXX)

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()

# rnnflow::core (the SDK: <rnnflow/stage.hpp>, C++20) and rnnflow::testing (gradient checks).
find_package(rnnflow @version_minor@ REQUIRED)

# The plug-in: a MODULE library (rnnflow dlopens it; nothing links it). Hidden visibility: only
# the rnnflow_plugin entry point that RNNFLOW_PLUGIN defines is exported.
add_library(@name@ MODULE plugin.cpp @name@.cpp)
target_link_libraries(@name@ PRIVATE rnnflow::core)
set_target_properties(@name@ PROPERTIES CXX_EXTENSIONS OFF
  CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
target_compile_options(@name@ PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                       -Woverloaded-virtual)
# `cmake --install build --prefix <rnnflow prefix>` puts it where rnnflow finds `plugins: [@name@]`.
install(TARGETS @name@ LIBRARY DESTINATION ${rnnflow_PLUGIN_INSTALL_DIR})

# Tests: the stage compiled into a Catch2 program with rnnflow's testing library.
include(CTest)
if(BUILD_TESTING)
  find_package(Catch2 2 REQUIRED)
  add_executable(@name@_test @name@_test.cpp @name@.cpp)
  target_link_libraries(@name@_test PRIVATE rnnflow::core rnnflow::testing Catch2::Catch2)
  set_target_properties(@name@_test PROPERTIES CXX_EXTENSIONS OFF)
  target_compile_options(@name@_test PRIVATE -Wall -Wextra -Wpedantic -Wshadow)
  # The test also loads the built plug-in the way rnnflow does.
  target_compile_definitions(@name@_test PRIVATE PLUGIN_FILE="$<TARGET_FILE:@name@>")
  add_dependencies(@name@_test @name@)
  add_test(NAME @name@_test COMMAND @name@_test)
endif()
)tpl";

const char* kHeader = R"tpl(// @name@: out[t, n, c] = in[t, n, c] * gain[c] + bias[c], a learned scale and shift per channel.
//
// Ports:  in   tensor f32 (T, N, C) + lengths
//         out  tensor f32 (T, N, C) + the same lengths; 0 at padded steps
// Params: gain (C), starts at `init_gain`; bias (C), starts at 0.
// Backward: diff_in = diff_out * gain; gain.grad += sum over valid (t, n) of diff_out * in;
//           bias.grad += sum over valid (t, n) of diff_out.
// Not supported: a per-time-step scale.
//
// Written by `rnnflow new-stage`: put your formula here, keep forward and backward side by side
// in @name@.cpp, and keep the gradient check in @name@_test.cpp passing.
#pragma once

#include <array>
#include <cstdint>

#include <rnnflow/stage.hpp>

namespace @name@_plugin {

class @Class@ final : public rnnflow::ModelStage {
public:
    static rnnflow::StageSchema schema();
    explicit @Class@(const rnnflow::Params& p);

    void prepare(rnnflow::PrepareContext& ctx) override;
    void forward(const rnnflow::Inputs& in, rnnflow::Outputs& out, rnnflow::Saved& saved,
                 const rnnflow::StepInfo& step) override;
    void backward(const rnnflow::Inputs& in, const rnnflow::Outputs& out, rnnflow::Saved& saved,
                  const rnnflow::Grads& diff_dst, rnnflow::Grads& diff_src,
                  const rnnflow::StepInfo& step) override;
    std::span<rnnflow::Param> params() override { return params_; }

private:
    double init_gain_;
    std::int64_t channels_ = 0;             // C, known after prepare
    std::array<rnnflow::Param, 2> params_;  // gain (C), bias (C)
};

}  // namespace @name@_plugin
)tpl";

const char* kSource = R"tpl(#include "@name@.hpp"

#include <algorithm>

namespace @name@_plugin {

using namespace rnnflow;

StageSchema @Class@::schema() {
    // The schema is the stage's manual: `rnnflow stages --plugin ... @name@` prints it.
    return StageSchema("@name@", "learned scale and shift per channel", Role::model)
        .input("in", PortType::tensor, "f32 (T, N, C) + lengths")
        .output("out", PortType::tensor, "f32 (T, N, C) + the same lengths, 0 at padded steps")
        .param_float("init_gain", 1.0, Range{-10, 10}, "value every channel's gain starts at")
        .differentiable()
        .details("out[t, n, c] = in[t, n, c] * gain[c] + bias[c]. Params gain (C), bias (C).");
}

@Class@::@Class@(const Params& p) : init_gain_(p.get_float("init_gain")) {}

void @Class@::prepare(PrepareContext& ctx) {
    const PortInfo& info = ctx.input_info("in");
    RNNFLOW_CHECK(info.channels > 0, "input 'in' needs a known channel count, got ", info.channels);
    channels_ = info.channels;
    Param& gain = params_[0];
    gain.name = "gain";
    gain.layout = "(C)";
    gain.value = Tensor::f32({channels_});
    gain.grad = Tensor::f32({channels_});
    std::fill_n(gain.value.data<float>(), channels_, static_cast<float>(init_gain_));
    Param& bias = params_[1];
    bias.name = "bias";
    bias.layout = "(C)";
    bias.value = Tensor::f32({channels_});  // zeros
    bias.grad = Tensor::f32({channels_});
    ctx.set_output_info("out", info);  // same type and channels
}

void @Class@::forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) {
    (void)saved; (void)step;
    const Tensor& x = in.at("in");  // (T, N, C)
    Tensor& y = out.at("out");      // (T, N, C)
    RNNFLOW_CHECK(x.rank() == 3 && x.dim(2) == channels_, "input 'in' must be (T, N, ", channels_,
                  "), got ", shape_str(x.shape()));
    const std::int64_t T = x.dim(0), N = x.dim(1), C = channels_;
    y.resize(DType::f32, {T, N, C});
    y.lengths = x.lengths;
    const float* g = params_[0].value.data<float>();
    const float* b = params_[1].value.data<float>();
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            const float* src = x.data<float>() + (t * N + n) * C;
            float* dst = y.data<float>() + (t * N + n) * C;
            if (t >= x.length(n)) {
                std::fill(dst, dst + C, 0.f);
                continue;
            }
            for (std::int64_t c = 0; c < C; ++c) dst[c] = src[c] * g[c] + b[c];
        }
}

void @Class@::backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                       Grads& diff_src, const StepInfo& step) {
    (void)out; (void)saved; (void)step;
    const Tensor& x = in.at("in");          // (T, N, C)
    const Tensor& dy = diff_dst.at("out");  // (T, N, C)
    const std::int64_t T = x.dim(0), N = x.dim(1), C = channels_;
    float* dx = nullptr;  // (T, N, C), when the producer wants a gradient
    if (diff_src.has("in")) {
        Tensor& d = diff_src.at("in");
        d.resize(DType::f32, x.shape());
        d.lengths = x.lengths;
        dx = d.data<float>();
    }
    const float* g = params_[0].value.data<float>();
    float* dg = params_[0].grad.data<float>();  // gradients of params are ADDED to
    float* db = params_[1].grad.data<float>();
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            const std::int64_t row = (t * N + n) * C;
            if (t >= x.length(n)) {
                if (dx) std::fill(dx + row, dx + row + C, 0.f);
                continue;
            }
            const float* src = x.data<float>() + row;
            const float* d = dy.data<float>() + row;
            for (std::int64_t c = 0; c < C; ++c) {
                dg[c] += d[c] * src[c];
                db[c] += d[c];
                if (dx) dx[row + c] = d[c] * g[c];
            }
        }
}

}  // namespace @name@_plugin
)tpl";

const char* kPlugin = R"tpl(// The plug-in's one entry point: RNNFLOW_PLUGIN exports `rnnflow_plugin`, which returns the
// ABI version this was built with, a name, a summary, a version and the function that adds
// the stage types. Add more stages with more r.add<...>() lines.
#include <rnnflow/registry.hpp>

#include "@name@.hpp"

static void register_stages(rnnflow::Registry& r) { r.add<@name@_plugin::@Class@>(); }

RNNFLOW_PLUGIN(@name@, "the @name@ stage", "0.1.0", register_stages)
)tpl";

const char* kTest = R"tpl(// @name@: schema, forward by hand, backward against finite differences, and the built plug-in.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <memory>

#include <rnnflow/registry.hpp>
#include <rnnflow/testing/gradcheck.hpp>
#include <rnnflow/testing/harness.hpp>

#include "@name@.hpp"

using namespace rnnflow;
using @name@_plugin::@Class@;

namespace {

const StageSchema& schema() {
    static const StageSchema s = @Class@::schema();
    return s;
}

// A stage prepared for C input channels, as the engine would prepare it.
std::unique_ptr<@Class@> prepared(std::int64_t C, double init_gain) {
    auto st = std::make_unique<@Class@>(test::params_for(schema(), {{"init_gain", init_gain}}));
    test::FakePrepare ctx(schema());
    ctx.info("in", PortInfo{PortType::tensor, C, -1, nullptr});
    st->prepare(ctx);
    REQUIRE(ctx.out_info("out").channels == C);
    return st;
}

}  // namespace

TEST_CASE("@name@: schema defaults and a bad value", "[@name@]") {
    REQUIRE(schema().type() == "@name@");
    REQUIRE(schema().is_differentiable());
    REQUIRE(default_params(schema()).get_float("init_gain") == 1.0);
    REQUIRE(StageSchema::check(*schema().find_param("init_gain"), ParamValue(20.0)) ==
            "must be in [-10, 10], got 20");
}

TEST_CASE("@name@: forward against hand-computed numbers", "[@name@]") {
    auto st = prepared(2, 2.0);
    st->params()[1].value.data<float>()[0] = 0.5f;  // bias
    st->params()[1].value.data<float>()[1] = -1.f;
    Tensor x = Tensor::f32({2, 1, 2});  // (T, N, C); the second step is padding
    const float xs[] = {1, 2, 3, 4};
    std::copy(xs, xs + 4, x.data<float>());
    x.lengths = {1};
    Tensor y;
    Saved saved;
    auto in = test::make_inputs(schema(), {&x});
    auto out = test::make_outputs(schema(), {&y});
    st->forward(in, out, saved, StepInfo{});
    REQUIRE(y.shape() == Shape{2, 1, 2});
    const float want[] = {1 * 2 + 0.5f, 2 * 2 - 1.f, 0, 0};
    for (int i = 0; i < 4; ++i) REQUIRE(y.data<float>()[i] == want[i]);
    REQUIRE(y.lengths == x.lengths);
}

TEST_CASE("@name@: backward matches finite differences", "[@name@][grad]") {
    auto st = prepared(3, 1.5);
    Tensor x = Tensor::f32({4, 3, 3});  // (T, N, C), columns of 4, 2 and 3 valid steps
    for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = 0.1f * static_cast<float>(i % 7) - 0.3f;
    x.lengths = {4, 2, 3};
    for (int c = 0; c < 3; ++c) st->params()[1].value.data<float>()[c] = 0.2f * static_cast<float>(c) - 0.1f;
    const test::GradCheckResult r = test::check_gradients(*st, schema(), {&x});
    INFO(r.report);
    REQUIRE(r.ok);
    REQUIRE(r.checked > 0);
}

TEST_CASE("@name@: the built plug-in adds the stage type", "[@name@][plugin]") {
    Registry r;
    load_plugin(r, PLUGIN_FILE);
    REQUIRE(r.find("@name@") != nullptr);
    REQUIRE(r.find("@name@")->origin == PLUGIN_FILE);
    REQUIRE(r.find("@name@")->schema.is_differentiable());
}
)tpl";

const char* kGraph = R"tpl(# A character LSTM language model (rnnflow's graphs/char_lm.yaml, smaller) with the @name@ stage
# between the LSTM and the output projection. Build the plug-in first (README.md), then:
#   rnnflow run @name@.yaml --set train.epochs=1 --set train.max_batches=20
experiment: @name@-char-lm
seed: 7
vars:
  licenses: /usr/share/common-licenses
  hidden: 128
plugins: [build/lib@name@.so]   # relative to this file; a bare name is looked up on RNNFLOW_PLUGIN_PATH
stages:
  corpus:
    type: text_file
    train: ["${licenses}/GPL-3", "${licenses}/Apache-2.0", "${licenses}/MPL-2.0"]
    by: file
    valid_fraction: 0.05
    test_fraction: 0.05
  tokens: {type: tokenize, in: corpus, mode: char}
  vocab:  {type: vocabulary, in: tokens, specials: [<unk>]}
  batch:  {type: lm_batches, in: vocab.out, batch: 32, bptt: 64}
  embed:  {type: embedding, in: batch.ids, dim: 64}
  rnn:    {type: lstm, in: embed, hidden: "${hidden}", layers: 1, carry_state: true}
  @name@: {type: @name@, in: rnn, init_gain: 1.0}
  logits: {type: linear, in: @name@, out_dim: vocab.size}
  loss:   {type: cross_entropy, logits: logits, target: batch.targets}
  optim:  {type: adam, minimize: loss, lr: 2.0e-3, clip_norm: 5}
  ppl:    {type: perplexity, loss: loss}
train: {epochs: 2, keep: best(ppl.valid)}
)tpl";

const char* kReadme = R"tpl(# @name@ — an rnnflow stage plug-in

Written by `rnnflow new-stage @name@`. One stage type, `@name@`: a learned scale and shift per
channel (`out = in * gain + bias`), differentiable. Replace the formula in `@name@.hpp/.cpp` with
yours; the rest of the project stays as it is.

| file | what |
| --- | --- |
| `@name@.hpp`, `@name@.cpp` | the stage: schema (ports, parameters, manual), prepare, forward, backward |
| `plugin.cpp` | the entry point (`RNNFLOW_PLUGIN`) that registers the stage |
| `@name@_test.cpp` | Catch2: schema, forward by hand, gradient check (`rnnflow::testing`), the built plug-in loads |
| `@name@.yaml` | a character LM that uses the stage |
| `CMakeLists.txt` | `find_package(rnnflow)`, the MODULE library, the test |

## Build and test

```sh
cmake -S . -B build -DCMAKE_PREFIX_PATH=@prefix@
cmake --build build
ctest --test-dir build --output-on-failure
```

## Use it

```sh
rnnflow stages --plugin build/lib@name@.so @name@      # its manual, like a built-in's
rnnflow validate @name@.yaml
rnnflow run @name@.yaml --set train.epochs=1 --set train.max_batches=20
```

The graph names the plug-in as `plugins: [build/lib@name@.so]`, relative to the graph file. A
name without a `/` (`plugins: [@name@]`, `--plugin @name@`) is looked up as `lib@name@.so` in the
folders of `RNNFLOW_PLUGIN_PATH`, then in rnnflow's installed plug-in folder, where
`cmake --install build --prefix @prefix@` puts it.

Compare settings of the new stage with `--set` (one run folder each):

```sh
for g in 0.5 1.0 2.0; do
  rnnflow run @name@.yaml --set @name@.init_gain=$g --set train.epochs=1 --out runs/gain-$g --quiet
done
```

If rnnflow is upgraded and says `plug-in ABI version N, this rnnflow expects M`, rebuild this
project against the new SDK. See rnnflow's `docs/plugins.md` for the whole guide.
)tpl";

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
    return s;
}

}  // namespace

std::string check_stage_name(const std::string& name, const Registry& r) {
    static const std::regex snake("[a-z][a-z0-9]*(_[a-z0-9]+)*");
    if (!std::regex_match(name, snake))
        return "stage name '" + name + "' must be snake_case: a lowercase letter, then lowercase letters, digits and single underscores (e.g. channel_scale)";
    if (name.size() > 48) return "stage name '" + name + "' is longer than 48 characters";
    if (r.find(name)) return "'" + name + "' is already a stage type (" + r.find(name)->origin + ")";
    // Names CMake reserves for its own targets, and the SDK's library.
    static const std::set<std::string> reserved{"all", "clean", "help", "install", "package", "test",
                                                "rnnflow", "depend", "edit_cache", "rebuild_cache"};
    if (reserved.count(name)) return "'" + name + "' cannot name a plug-in (CMake or rnnflow uses it)";
    return {};
}

std::vector<std::pair<std::string, std::string>> scaffold_files(const std::string& name,
                                                                const std::string& prefix) {
    std::string cls;
    bool up = true;
    for (char c : name) {
        if (c == '_') { up = true; continue; }
        cls += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
        up = false;
    }
    std::string version = RNNFLOW_VERSION;
    const std::string minor = version.substr(0, version.rfind('.'));
    auto fill = [&](const char* tpl) {
        std::string s = replace_all(tpl, "@name@", name);
        s = replace_all(s, "@Class@", cls);
        s = replace_all(s, "@version_minor@", minor);
        return replace_all(s, "@prefix@", prefix);
    };
    return {{"CMakeLists.txt", fill(kCMakeLists)},   {name + ".hpp", fill(kHeader)},
            {name + ".cpp", fill(kSource)},          {"plugin.cpp", fill(kPlugin)},
            {name + "_test.cpp", fill(kTest)},       {name + ".yaml", fill(kGraph)},
            {"README.md", fill(kReadme)}};
}

}  // namespace rnnflow
