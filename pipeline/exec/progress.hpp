// Progress on a terminal (one line redrawn in place: phase, epoch, batch, loss, items/s, ETA)
// or, when output is not a terminal, plain log lines every N batches; metrics after each pass.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>

namespace rnnflow {

struct MetricsRow;

class Progress {
public:
    // out: nullptr for silence. log_every: 0 = about ten lines per pass. format: "text"|"json".
    Progress(std::ostream* out, bool bar, std::int64_t log_every, std::string format);
    void begin_pass(const std::string& name, std::int64_t epoch, std::int64_t batches);
    void step(std::int64_t done, double loss, std::int64_t items);
    void end_pass();
    void metrics(const MetricsRow& row);

private:
    std::ostream* out_;
    bool bar_;
    std::int64_t log_every_;
    std::string format_;
    std::string name_;
    std::int64_t epoch_ = 0, batches_ = 0, done_ = 0, items_ = 0;
    double loss_ = 0;
    std::chrono::steady_clock::time_point start_, last_draw_;
    void draw(bool final);
};

}  // namespace rnnflow
