#include "state.hpp"

#include "../exec/run_status.hpp"

#include <sqlite3.h>

#include <cmath>
#include <ctime>

namespace rnnflow {
namespace {

// One prepared statement, finalised on scope exit. Columns and parameters are 0/1-based as in
// SQLite's own API.
class Stmt {
public:
    Stmt(sqlite3* db, const std::string& sql) : db_(db) {
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK)
            throw Error(std::string("sweep database: ") + sqlite3_errmsg(db) + " in: " + sql);
    }
    ~Stmt() { sqlite3_finalize(s_); }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    Stmt& bind(int i, const std::string& v) { sqlite3_bind_text(s_, i, v.c_str(), -1, SQLITE_TRANSIENT); return *this; }
    Stmt& bind(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); return *this; }
    Stmt& bind(int i, int v) { sqlite3_bind_int64(s_, i, v); return *this; }
    Stmt& bind(int i, double v) {
        if (std::isnan(v)) sqlite3_bind_null(s_, i);
        else sqlite3_bind_double(s_, i, v);
        return *this;
    }
    Stmt& bind(int i, std::optional<double> v) { return v ? bind(i, *v) : bind_null(i); }
    Stmt& bind(int i, std::optional<std::int64_t> v) { return v ? bind(i, *v) : bind_null(i); }
    Stmt& bind_null(int i) { sqlite3_bind_null(s_, i); return *this; }

    bool step() {
        const int rc = sqlite3_step(s_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        throw Error(std::string("sweep database: ") + sqlite3_errmsg(db_));
    }
    std::int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
    double dbl(int c) const { return sqlite3_column_double(s_, c); }
    bool null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
    std::string text(int c) const {
        const auto* p = sqlite3_column_text(s_, c);
        return p ? reinterpret_cast<const char*>(p) : "";
    }

private:
    sqlite3* db_;
    sqlite3_stmt* s_ = nullptr;
};

std::vector<std::string> split_lines(const std::string& s) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == '\n') { if (!cur.empty()) out.push_back(cur); cur.clear(); }
        else cur += c;
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS trials(
  id INTEGER PRIMARY KEY,
  config INTEGER NOT NULL,
  seed INTEGER,
  key TEXT NOT NULL UNIQUE,
  overrides TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending'
    CHECK(status IN ('pending', 'running', 'done', 'pruned', 'failed')),
  error TEXT,
  objective REAL,
  best_epoch INTEGER,
  epochs INTEGER,
  seconds REAL,
  run_dir TEXT,
  worker TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  started TEXT,
  finished TEXT);
CREATE TABLE IF NOT EXISTS params(
  trial INTEGER NOT NULL REFERENCES trials(id),
  path TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY(trial, path));
CREATE TABLE IF NOT EXISTS metrics(
  trial INTEGER NOT NULL REFERENCES trials(id),
  epoch INTEGER NOT NULL,
  split TEXT NOT NULL,
  name TEXT NOT NULL,
  value REAL,
  PRIMARY KEY(trial, epoch, split, name));
)sql";

}  // namespace

SweepState::SweepState(const std::filesystem::path& db_file) : file_(db_file) {
    if (sqlite3_open(db_file.c_str(), &db_) != SQLITE_OK) {
        const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        db_ = nullptr;
        throw Error("cannot open the sweep database " + db_file.string() + ": " + msg);
    }
    sqlite3_busy_timeout(db_, 10000);
    // WAL: readers (users, exports) never block the writer; a kill loses at most the change
    // being written. synchronous=NORMAL is durable against process kills in WAL mode.
    exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
    exec(kSchema);
}

SweepState::~SweepState() { sqlite3_close(db_); }

void SweepState::exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        const std::string msg = err ? err : "unknown error";
        sqlite3_free(err);
        throw Error("sweep database " + file_.string() + ": " + msg);
    }
}

std::optional<std::string> SweepState::meta(const std::string& key) const {
    Stmt s(db_, "SELECT value FROM meta WHERE key = ?");
    s.bind(1, key);
    if (s.step()) return s.text(0);
    return std::nullopt;
}

void SweepState::set_meta(const std::string& key, const std::string& value) {
    Stmt s(db_, "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    s.bind(1, key).bind(2, value);
    s.step();
}

int SweepState::add_trial(const SweepTrialSpec& t) {
    {
        Stmt f(db_, "SELECT id FROM trials WHERE key = ?");
        f.bind(1, t.key);
        if (f.step()) return static_cast<int>(f.i64(0));
    }
    exec("BEGIN IMMEDIATE");
    try {
        Stmt s(db_, "INSERT INTO trials(config, seed, key, overrides) VALUES(?, ?, ?, ?)");
        s.bind(1, t.config).bind(2, t.seed).bind(3, t.key).bind(4, t.key);
        s.step();
        const int id = static_cast<int>(sqlite3_last_insert_rowid(db_));
        for (const auto& v : t.values) {
            Stmt p(db_, "INSERT OR REPLACE INTO params(trial, path, value) VALUES(?, ?, ?)");
            p.bind(1, id).bind(2, v.path).bind(3, v.text);
            p.step();
        }
        exec("COMMIT");
        return id;
    } catch (...) {
        exec("ROLLBACK");
        throw;
    }
}

namespace {
std::vector<int> reset_where(sqlite3* db, const std::string& status) {
    std::vector<int> ids;
    {
        Stmt s(db, "SELECT id FROM trials WHERE status = ? ORDER BY id");
        s.bind(1, status);
        while (s.step()) ids.push_back(static_cast<int>(s.i64(0)));
    }
    for (int id : ids) {
        Stmt d(db, "DELETE FROM metrics WHERE trial = ?");
        d.bind(1, id);
        d.step();
        Stmt u(db, "UPDATE trials SET status = 'pending', error = NULL, objective = NULL, best_epoch = NULL, "
                   "epochs = NULL, seconds = NULL, finished = NULL WHERE id = ?");
        u.bind(1, id);
        u.step();
    }
    return ids;
}
}  // namespace

std::vector<int> SweepState::reset_interrupted() {
    exec("BEGIN IMMEDIATE");
    auto ids = reset_where(db_, "running");
    exec("COMMIT");
    return ids;
}

std::vector<int> SweepState::reset_failed() {
    exec("BEGIN IMMEDIATE");
    auto ids = reset_where(db_, "failed");
    exec("COMMIT");
    return ids;
}

void SweepState::mark_running(int id, const std::string& run_dir, const std::string& worker) {
    Stmt s(db_, "UPDATE trials SET status = 'running', run_dir = ?, worker = ?, attempts = attempts + 1, "
                "started = ? WHERE id = ?");
    s.bind(1, run_dir).bind(2, worker).bind(3, utc_now()).bind(4, id);
    s.step();
}

void SweepState::add_metrics(int id, const MetricsRow& row) {
    exec("BEGIN IMMEDIATE");
    try {
        for (const auto& [name, value] : row.values) {
            Stmt s(db_, "INSERT OR REPLACE INTO metrics(trial, epoch, split, name, value) VALUES(?, ?, ?, ?, ?)");
            s.bind(1, id).bind(2, row.epoch).bind(3, row.split).bind(4, name).bind(5, value);
            s.step();
        }
        exec("COMMIT");
    } catch (...) {
        exec("ROLLBACK");
        throw;
    }
}

void SweepState::finish(int id, const std::string& status, const std::string& error,
                        std::optional<double> objective, std::int64_t best_epoch, std::int64_t epochs,
                        double seconds) {
    Stmt s(db_, "UPDATE trials SET status = ?, error = ?, objective = ?, best_epoch = ?, epochs = ?, "
                "seconds = ?, finished = ? WHERE id = ?");
    s.bind(1, status);
    if (error.empty()) s.bind_null(2);
    else s.bind(2, error);
    s.bind(3, objective).bind(4, best_epoch).bind(5, epochs).bind(6, seconds).bind(7, utc_now()).bind(8, id);
    s.step();
}

namespace {
TrialRecord read_trial(const Stmt& s) {
    TrialRecord r;
    r.id = static_cast<int>(s.i64(0));
    r.config = static_cast<int>(s.i64(1));
    if (!s.null(2)) r.seed = s.i64(2);
    r.key = s.text(3);
    r.overrides = split_lines(s.text(4));
    r.status = s.text(5);
    r.error = s.text(6);
    if (!s.null(7)) r.objective = s.dbl(7);
    r.best_epoch = s.i64(8);
    r.epochs = s.i64(9);
    r.seconds = s.dbl(10);
    r.run_dir = s.text(11);
    r.worker = s.text(12);
    r.attempts = static_cast<int>(s.i64(13));
    return r;
}
const char* kTrialColumns =
    "SELECT id, config, seed, key, overrides, status, error, objective, best_epoch, epochs, seconds, "
    "run_dir, worker, attempts FROM trials";
}  // namespace

std::vector<TrialRecord> SweepState::trials() const {
    std::vector<TrialRecord> out;
    {
        Stmt s(db_, std::string(kTrialColumns) + " ORDER BY id");
        while (s.step()) out.push_back(read_trial(s));
    }
    Stmt p(db_, "SELECT trial, path, value FROM params ORDER BY trial, rowid");
    while (p.step()) {
        const int id = static_cast<int>(p.i64(0));
        for (auto& t : out)
            if (t.id == id) t.params.push_back(SweepValue{p.text(1), p.text(2)});
    }
    return out;
}

TrialRecord SweepState::trial(int id) const {
    TrialRecord r;
    {
        Stmt s(db_, std::string(kTrialColumns) + " WHERE id = ?");
        s.bind(1, id);
        if (!s.step()) throw Error("sweep database: no trial " + std::to_string(id));
        r = read_trial(s);
    }
    Stmt p(db_, "SELECT path, value FROM params WHERE trial = ? ORDER BY rowid");
    p.bind(1, id);
    while (p.step()) r.params.push_back(SweepValue{p.text(0), p.text(1)});
    return r;
}

std::vector<std::pair<std::int64_t, double>> SweepState::history(int id, const std::string& split,
                                                                 const std::string& metric) const {
    Stmt s(db_, "SELECT epoch, value FROM metrics WHERE trial = ? AND split = ? AND name = ? AND value IS NOT NULL "
                "ORDER BY epoch");
    s.bind(1, id).bind(2, split).bind(3, metric);
    std::vector<std::pair<std::int64_t, double>> out;
    while (s.step()) out.emplace_back(s.i64(0), s.dbl(1));
    return out;
}

}  // namespace rnnflow
