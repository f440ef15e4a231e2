// Stage type `rnn`: the recurrent family (recurrent.hpp) with the vanilla (Elman) cell
// h' = act(x W + h U + b), act tanh, relu or sigmoid.
//
// Ref: Elman, "Finding Structure in Time" (1990).
#pragma once

#include "recurrent.hpp"

namespace rnnflow::stages {

class Rnn final : public Recurrent {
public:
    static StageSchema schema();
    explicit Rnn(const Params& p) : Recurrent(Cell::rnn, p) {}
};

}  // namespace rnnflow::stages
