// Stage type `gru`: the recurrent family (recurrent.hpp) with the GRU cell; by default the
// linear-before-reset GRU of cuDNN and PyTorch (oneDNN lbr_gru), else the original GRU (oneDNN
// gru). Gate order u (update, PyTorch's z), r, n; equations in recurrent.hpp.
//
// Refs: Cho et al. 2014; cuDNN's and PyTorch's GRU for linear_before_reset.
#pragma once

#include "recurrent.hpp"

namespace rnnflow::stages {

class Gru final : public Recurrent {
public:
    static StageSchema schema();
    explicit Gru(const Params& p) : Recurrent(Cell::gru, p) {}
};

}  // namespace rnnflow::stages
