// Non-finite guards of a training run: what a step whose loss or gradient holds a NaN or Inf
// does (train.nonfinite: stop the run, or skip_batch: drop the update, up to train.max_skipped
// batches in a row), the scan that finds such values, and the messages that say where they are.
// The engine walks its stages and asks these; nothing here knows the flow graph (docs/resume.md).
#pragma once

#include <cstdint>
#include <string>

#include "../core/error.hpp"
#include "../core/stage.hpp"
#include "../graph/graph.hpp"

namespace rnnflow {

// Index of the first NaN/Inf of an f32 tensor, or -1 (i32 tensors: -1).
std::int64_t first_nonfinite(const Tensor& t);
// "NaN", "Inf" or "-Inf".
std::string nonfinite_word(float v);

// Where a step stands, as messages say it: "train epoch 2 batch 3" (both 1-based).
std::string step_text(const StepInfo& step);

// train.nonfinite and train.max_skipped over the training steps of a run.
struct NonfiniteGuard {
    bool skip_batches = false;        // train.nonfinite: skip_batch; else a non-finite value stops
    std::int64_t max_skipped = 10;    // train.max_skipped
    bool step_skipped = false;        // this training step's update is dropped
    std::int64_t pass_skipped = 0;    // skipped steps of the running pass
    std::int64_t skipped_in_row = 0;  // ... in a row, across passes (a checkpoint keeps it)

    // This training step has a non-finite loss or gradient: true when the policy skips the batch
    // (the step is marked skipped), false when the run stops (the caller throws, naming where).
    bool skip_step() {
        if (skip_batches) step_skipped = true;
        return skip_batches;
    }
    // After each training step: counts a skipped one; throws once max_skipped came in a row.
    void end_training_step(const StepInfo& step);
};

// "stage 'rnn' (lstm, graphs/char_lm.yaml:7:3): NaN <what> at train epoch 2 batch 3<note>", with
// the hint to lower the learning rate or skip such batches. `what`: "in output 'out'", ...
Error nonfinite_error(const StageDef& def, const std::string& what, float v, const StepInfo& step,
                      const std::string& note = {});
// The loss stage gave a non-finite loss (found after the step, when no scan ran).
Error nonfinite_loss_error(const StageDef& def, const StepInfo& step);
// A gradient is non-finite but no stage's gradient shows where.
Error nonfinite_gradient_error(const StepInfo& step);

}  // namespace rnnflow
