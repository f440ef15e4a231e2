// concat: join two activations on the channel axis.
//
// Ports:  a    tensor f32 (T, N, Ca) + lengths
//         b    tensor f32 (T, N, Cb) + the same lengths (e.g. word embeddings and a character
//              encoder's word vectors)
//         out  tensor f32 (T, N, Ca + Cb) + those lengths: out[t, n] = [a[t, n], b[t, n]]
// Backward: diff_a, diff_b are the two channel slices of diff_out (0 at padded steps).
// Not supported: more than two inputs (chain two concats), other axes.
#pragma once

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class Concat final : public ModelStage {
public:
    static StageSchema schema();
    explicit Concat(const Params& p);

    void prepare(PrepareContext& ctx) override;
    void forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) override;
    void backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                  Grads& diff_src, const StepInfo& step) override;

private:
    std::int64_t ca_ = -1, cb_ = -1;  // after prepare
};

}  // namespace rnnflow::stages
