#include "lstm.hpp"

namespace rnnflow::stages {

StageSchema Lstm::schema() {
    return make_schema(
        "lstm", "stacked LSTM, any direction, peephole and projection options (oneDNN)", Cell::lstm,
        "i, f, o = sigmoid(x W + h U [+ c p] + b), g = tanh(x W_g + h U_g + b_g), c' = f*c + i*g, "
        "h' = o*tanh(c') [then h' R with projection]. Params per layer l and direction d (l2r, "
        "r2l): layer<l>.<d>.weights_layer (C_l, 4, H), .weights_iter (H', 4, H) (oneDNN ldigo, "
        "gates i, f, g, o), .bias (4, H), .weights_peephole (3, H) (i, f, o), "
        ".weights_projection (H, P). State ports (2, L*D, N, H): h (first P channels with "
        "projection), c. Padded batches give each sequence's own outputs, final states and "
        "gradients in every direction. Ref: Hochreiter & Schmidhuber 1997; Gers & Schmidhuber "
        "2000; Sak et al. 2014.");
}

}  // namespace rnnflow::stages
