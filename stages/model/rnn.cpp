#include "rnn.hpp"

namespace rnnflow::stages {

StageSchema Rnn::schema() {
    return make_schema(
        "rnn", "stacked vanilla RNN (tanh, relu or sigmoid), any direction (oneDNN)", Cell::rnn,
        "h' = act(x W + h U + b). Params per layer l and direction d (l2r, r2l): "
        "layer<l>.<d>.weights_layer (C_l, 1, H), .weights_iter (H, 1, H) (oneDNN ldigo), .bias "
        "(1, H). State ports (1, L*D, N, H). Padded batches give each sequence's own outputs, "
        "final states and gradients in every direction. Ref: Elman 1990.");
}

}  // namespace rnnflow::stages
