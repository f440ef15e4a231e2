// The run folder's metrics: metrics.jsonl (one JSON object per pass, appended and flushed),
// metrics.csv (rewritten atomically after every row, columns = union of names seen), and
// summary.txt at the end.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "engine.hpp"

namespace rnnflow {

class MetricsLog {
public:
    explicit MetricsLog(std::filesystem::path run_dir);
    void append(const MetricsRow& row);
    // A resumed run: the rows its checkpoint recorded replace both files (rows written after
    // that checkpoint, by the interrupted process, are dropped).
    void restore(const std::vector<MetricsRow>& rows);
    void write_summary(const std::vector<MetricsRow>& rows, double seconds, double items_per_second,
                       const std::string& kept_checkpoint);

private:
    void write_csv() const;
    std::filesystem::path dir_;
    std::vector<MetricsRow> rows_;
};

std::string format_number(double v);  // shortest text that reads back the same double
// A JSON value for a double: the number, or a quoted "NaN"/"Infinity" (JSON has neither).
std::string json_number(double v);

}  // namespace rnnflow
