// Finite-difference gradient checks for model stages.
//
// The objective is J = sum over outputs o, elements e (valid steps only, when the output has
// lengths) of w[o][e] * out[o][e], with fixed pseudo-random weights w. Backward is given
// diff_dst = w (zero at padding); every float input with a diff_src slot and every parameter is
// compared with central differences (J(x+h) - J(x-h)) / 2h, J accumulated in double.
// Part of the SDK's testing library (rnnflow::testing), installed as
// <rnnflow/testing/gradcheck.hpp>: include only public headers here.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <rnnflow/stage.hpp>

namespace rnnflow::test {

struct GradCheckOptions {
    double eps = 1e-2;           // step h; float forward passes make smaller steps noisier
    double rtol = 2e-2;          // |a - n| <= atol + rtol * max(|a|, |n|)
    double atol = 2e-3;
    int samples = 40;            // elements checked per tensor (spread evenly); all if fewer
    std::uint64_t seed = 42;
    StepInfo step{};
    // Inputs by schema index that get no diff_src slot (ids do not either).
    std::vector<int> no_grad_inputs;
    // Called before every forward (e.g. to reset carried state so each probe sees the same start).
    std::function<void()> before_forward;
};

struct GradCheckResult {
    bool ok = true;
    int checked = 0;
    double worst_excess = 0;     // max of |a-n| - (atol + rtol*max(|a|,|n|)); <= 0 when ok
    std::string report;          // one line per failure (first 20)
};

// inputs: by schema input order; nullptr for unconnected optional inputs.
GradCheckResult check_gradients(ModelStage& stage, const StageSchema& schema,
                                std::vector<Tensor*> inputs, const GradCheckOptions& opt = {});

}  // namespace rnnflow::test
