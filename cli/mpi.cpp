// MPI for the command line: data-parallel training and sweeps across ranks. Only this file
// includes mpi.h; a build without MPI compiles the same functions to a clear refusal.
//
// Sweep protocol (rank 0 = coordinator; messages are text, see pipeline/sweep/sweep.hpp):
//   worker → 0  kRequest  host name          give me a trial
//   0 → worker  kTask     encode_task        run it          (or kNone: no trial left, stop)
//   worker → 0  kEpoch    "id\n" + rows      an epoch's train and valid metrics
//   0 → worker  kDecision "1" / "0"          continue / stop (early stopping)
//   worker → 0  kResult   "id\n" + outcome   the trial finished
// Rank 0 serves these on its main thread (the only thread of rank 0 that calls MPI) while its
// own `parallel` trial threads use the coordinator directly.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "cli/commands.hpp"
#include "pipeline/sweep/sweep.hpp"

#ifdef RNNFLOW_HAVE_MPI
#include <mpi.h>
#endif

namespace rnnflow {

bool mpi_launched() {
    // OpenMPI's mpirun sets OMPI_COMM_WORLD_SIZE; PMIx (srun --mpi=pmix, mpirun) sets PMIX_RANK;
    // PMI-1/2 launchers set PMI_RANK.
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
        if (std::getenv(v)) return true;
    return false;
}

#ifndef RNNFLOW_HAVE_MPI

MpiSession::MpiSession(bool asked) {
    if (asked || mpi_launched())
        throw Error("MPI is unavailable in this build",
                    "install libopenmpi-dev and rebuild (CMake -DRNNFLOW_MPI=ON), or run without mpirun/srun/--mpi");
}
MpiSession::~MpiSession() = default;
void MpiSession::abort(int code) const { std::exit(code); }
void mpi_data_parallel(RunOptions&, const MpiSession&) { throw Error("MPI is unavailable in this build"); }
void mpi_sweep(Sweep*, const MpiSession&, int, int, const Registry&, std::ostream*) {
    throw Error("MPI is unavailable in this build");
}

#else

MpiSession::MpiSession(bool asked) {
    if (!asked && !mpi_launched()) return;
    int provided = 0;
    // SERIALIZED: on rank 0 of a sweep only the main thread calls MPI; in data-parallel training
    // the gradient reduction runs on the thread that runs the engine's optimiser node.
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
    if (provided < MPI_THREAD_SERIALIZED) {
        MPI_Finalize();
        throw Error("the MPI library does not support MPI_THREAD_SERIALIZED");
    }
    active_ = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiSession::~MpiSession() {
    if (active_) MPI_Finalize();
}

void MpiSession::abort(int code) const {
    if (active_ && size_ > 1) MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);
}

void mpi_data_parallel(RunOptions& opt, const MpiSession& mpi) {
    opt.shard_rank = mpi.rank();
    opt.shard_count = mpi.size();
    opt.shard_evaluation = false;  // every rank evaluates whole batches: metrics of the whole split
    auto buf = std::make_shared<std::vector<double>>();
    auto sum = std::make_shared<std::vector<double>>();
    opt.reduce_gradients = [buf, sum, rank = mpi.rank()](const std::vector<std::pair<std::string, Param*>>& params,
                                                         double, double count) {
        double total = 0;
        MPI_Allreduce(&count, &total, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        // Each rank's gradient is the mean over its own counted items; the combined batch's is
        // sum_r (count_r / total) * mean_r.
        const double w = total > 0 ? count / total : 0.0;
        std::size_t n = 0;
        for (const auto& [name, p] : params) n += static_cast<std::size_t>(p->grad.numel());
        buf->resize(n);
        sum->resize(n);
        std::size_t k = 0;
        for (const auto& [name, p] : params) {
            const float* g = p->grad.data<float>();
            for (std::int64_t e = 0; e < p->grad.numel(); ++e) (*buf)[k++] = w * static_cast<double>(g[e]);
        }
        // Reduce + broadcast rather than Allreduce: an allreduce may add in a different order on
        // different ranks, and the weights must stay bit for bit the same everywhere.
        MPI_Reduce(buf->data(), sum->data(), static_cast<int>(n), MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
        MPI_Bcast(sum->data(), static_cast<int>(n), MPI_DOUBLE, 0, MPI_COMM_WORLD);
        (void)rank;
        k = 0;
        for (const auto& [name, p] : params) {
            float* g = p->grad.data<float>();
            for (std::int64_t e = 0; e < p->grad.numel(); ++e) g[e] = static_cast<float>((*sum)[k++]);
        }
    };
}

namespace {

enum Tag : int { kRequest = 1, kTask, kNone, kEpoch, kDecision, kResult };

void send_text(int to, int tag, const std::string& s) {
    MPI_Send(s.data(), static_cast<int>(s.size()), MPI_CHAR, to, tag, MPI_COMM_WORLD);
}

// A message from `from` (or anyone) with any tag: its text, source and tag.
std::string recv_text(int from, int& source, int& tag) {
    MPI_Status st;
    MPI_Probe(from, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
    int n = 0;
    MPI_Get_count(&st, MPI_CHAR, &n);
    std::string s(static_cast<std::size_t>(n), '\0');
    MPI_Recv(s.data(), n, MPI_CHAR, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    source = st.MPI_SOURCE;
    tag = st.MPI_TAG;
    return s;
}

std::string host_name() {
    char buf[256] = {};
    gethostname(buf, sizeof buf - 1);
    return buf;
}

void worker_loop(const MpiSession& mpi, int threads, const Registry& registry) {
    const std::string host = host_name();
    for (;;) {
        send_text(0, kRequest, host);
        int src = 0, tag = 0;
        const std::string msg = recv_text(0, src, tag);
        if (tag == kNone) return;
        const TrialTask task = decode_task(msg);
        const std::string id = std::to_string(task.id);
        const TrialOutcome o = run_trial(task, threads, registry, [&](const MetricsRow& tr, const MetricsRow& va) {
            send_text(0, kEpoch, id + "\n" + encode_rows({tr, va}));
            int s = 0, t = 0;
            return recv_text(0, s, t) == "1";
        });
        send_text(0, kResult, id + "\n" + encode_outcome(o));
    }
    (void)mpi;
}

}  // namespace

void mpi_sweep(Sweep* sweep, const MpiSession& mpi, int parallel, int threads, const Registry& registry,
               std::ostream* log) {
    if (mpi.rank() != 0) {
        worker_loop(mpi, threads, registry);
        return;
    }
    const std::string host = host_name();
    std::vector<std::thread> local;
    for (int w = 0; w < parallel; ++w)
        local.emplace_back([&, w] {
            const std::string name = "rank 0 thread " + std::to_string(w) + " on " + host;
            while (auto task = sweep->next(name)) {
                const int id = task->id;
                const TrialOutcome o = run_trial(*task, threads, registry, [&](const MetricsRow& tr, const MetricsRow& va) {
                    return sweep->report_epoch(id, tr, va);
                });
                sweep->finish(id, o);
            }
        });
    int active = mpi.size() - 1;
    while (active > 0) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (!flag) {
            // Rank 0 shares its cores with trials: poll gently instead of blocking in a spinning
            // MPI_Probe.
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            continue;
        }
        int src = 0, tag = 0;
        const std::string msg = recv_text(st.MPI_SOURCE, src, tag);
        if (tag == kRequest) {
            if (auto t = sweep->next("rank " + std::to_string(src) + " on " + msg)) send_text(src, kTask, encode_task(*t));
            else {
                send_text(src, kNone, "");
                --active;
            }
        } else if (tag == kEpoch || tag == kResult) {
            const auto nl = msg.find('\n');
            const int id = std::stoi(msg.substr(0, nl));
            const std::string rest = msg.substr(nl + 1);
            if (tag == kEpoch) {
                const auto rows = decode_rows(rest);
                const MetricsRow empty;
                const bool go = sweep->report_epoch(id, rows.size() > 0 ? rows[0] : empty, rows.size() > 1 ? rows[1] : empty);
                send_text(src, kDecision, go ? "1" : "0");
            } else {
                sweep->finish(id, decode_outcome(rest));
            }
        } else if (log) {
            *log << "warning: unexpected MPI message (tag " << tag << ") from rank " << src << "\n";
        }
    }
    for (auto& t : local) t.join();
}

#endif

}  // namespace rnnflow
