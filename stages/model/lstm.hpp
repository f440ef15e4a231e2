// Stage type `lstm`: the recurrent family (recurrent.hpp) with the LSTM cell, optionally with
// peephole connections and a projection (LSTMP). Equations, ports, params and padding rules are
// in recurrent.hpp; gate order i, f, g (c~), o.
//
// Refs: Hochreiter & Schmidhuber 1997; Gers & Schmidhuber 2000; Sak et al. 2014; Zaremba et
// al. 2014.
#pragma once

#include "recurrent.hpp"

namespace rnnflow::stages {

class Lstm final : public Recurrent {
public:
    static StageSchema schema();
    explicit Lstm(const Params& p) : Recurrent(Cell::lstm, p) {}
};

}  // namespace rnnflow::stages
