#include "gru.hpp"

namespace rnnflow::stages {

StageSchema Gru::schema() {
    return make_schema(
        "gru", "stacked GRU, any direction, linear-before-reset by default (oneDNN)", Cell::gru,
        "u = sigmoid(x W_u + h U_u + b_u), r = sigmoid(x W_r + h U_r + b_r), h' = u*h + (1-u)*n "
        "with n = tanh(x W_n + b_n + r*(h U_n + b_hn)) (linear_before_reset, PyTorch's GRU) or "
        "n = tanh(x W_n + (r*h) U_n + b_n). Params per layer l and direction d (l2r, r2l): "
        "layer<l>.<d>.weights_layer (C_l, 3, H), .weights_iter (H, 3, H) (oneDNN ldigo, gates u, "
        "r, n), .bias (4, H) (u, r, n, hn) or (3, H). State ports (1, L*D, N, H). Padded batches "
        "give each sequence's own outputs, final states and gradients in every direction. Ref: "
        "Cho et al. 2014.");
}

}  // namespace rnnflow::stages
