// rnnflow ensemble RUN|FILE RUN|FILE ... [--split test] [--stage NAME] [--out DIR]
//
// Averages the class probabilities that classification_metrics wrote for each member run
// (RUN/<stage>/<split>.predictions.tsv, or the file itself) and scores the averaged prediction
// against the gold labels (stages/eval/ensemble.hpp). With --out, the ensemble's confusion
// matrix, predictions (with its probabilities, so an ensemble can itself be a member), metrics
// and member list are written into DIR.
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <boost/program_options.hpp>

#include "cli/commands.hpp"
#include "pipeline/core/data.hpp"
#include "pipeline/core/error.hpp"
#include "pipeline/exec/metrics_log.hpp"
#include "stages/eval/ensemble.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace rnnflow {

namespace {

// The predictions file of a member given as a run folder or a file.
fs::path member_file(const std::string& arg, const std::string& split, const std::string& stage) {
    const fs::path p(arg);
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p;
    if (!fs::is_directory(p, ec))
        throw Error(arg + ": no such run folder or predictions file");
    const std::string name = split + ".predictions.tsv";
    if (!stage.empty()) {
        const fs::path f = p / stage / name;
        if (!fs::is_regular_file(f, ec))
            throw Error(f.string() + " does not exist", "evaluate the run first: rnnflow eval " + arg + " --split " + split +
                                                            " (or check --stage)");
        return f;
    }
    std::vector<fs::path> found;
    fs::directory_iterator it(p, ec);
    if (ec) throw Error("cannot list " + arg + ": " + ec.message());
    for (std::error_code probe; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec) throw Error("cannot list " + arg + ": " + ec.message());
        if (it->is_directory(probe) && fs::is_regular_file(it->path() / name, probe))
            found.push_back(it->path() / name);
    }
    if (ec) throw Error("cannot list " + arg + ": " + ec.message());
    if (found.empty())
        throw Error(arg + " has no " + name + " in any stage folder",
                    "evaluate the run first: rnnflow eval " + arg + " --split " + split);
    if (found.size() > 1) {
        std::sort(found.begin(), found.end());
        std::string list;
        for (const auto& f : found) list += (list.empty() ? "" : ", ") + f.parent_path().filename().string();
        throw Error(arg + ": several evaluators wrote " + name + " (" + list + ")", "choose one with --stage");
    }
    return found.front();
}

}  // namespace

int cmd_ensemble(const std::vector<std::string>& args) {
    std::vector<std::string> members;
    std::string split = "test", stage, out;
    po::options_description d("ensemble options");
    d.add_options()
        ("run", po::value(&members)->composing(), "run folders or SPLIT.predictions.tsv files, two or more")
        ("split,s", po::value(&split), "the evaluated split whose predictions to combine (default test)")
        ("stage", po::value(&stage), "the classification_metrics stage (default: the run's only one with predictions)")
        ("out,o", po::value(&out), "a folder for the ensemble's SPLIT.predictions.tsv, SPLIT.confusion.tsv/.png, "
                                   "SPLIT.metrics.tsv and members.txt (created)")
        ("help,h", "describe this command");
    po::positional_options_description pos;
    pos.add("run", -1);
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(d).positional(pos).run(), vm);
    if (vm.count("help")) {
        std::cout << "usage: rnnflow ensemble RUN_A RUN_B ... [--split test] [--stage NAME] [--out DIR]\n\n"
                  << "Averages the members' class probabilities per item (classification runs, one label per item).\n\n"
                  << d << "\n";
        return 0;
    }
    po::notify(vm);
    if (split.empty() || split.find('/') != std::string::npos)
        throw Error("--split " + split + ": not a split name", "give test, valid or train");
    if (members.size() < 2)
        throw Error("an ensemble needs two or more members, got " + std::to_string(members.size()),
                    "rnnflow ensemble RUN_A RUN_B ... (run folders or predictions files)");

    std::error_code ec;
    if (!out.empty() && fs::exists(out, ec) && !fs::is_directory(out, ec))
        throw Error("--out " + out + " is a file, not a folder", "give a folder for the ensemble's files (created if missing)");
    std::vector<stages::PredictionTable> tables;
    for (const auto& m : members) tables.push_back(stages::read_prediction_table(member_file(m, split, stage)));
    const stages::EnsembleResult r = stages::ensemble_tables(tables);

    std::ostringstream text;
    std::size_t width = 8;
    for (const auto& t : tables) width = std::max(width, t.file.string().size());
    text << std::left << std::setw(static_cast<int>(width)) << "member" << "  accuracy\n";
    for (std::size_t i = 0; i < tables.size(); ++i)
        text << std::setw(static_cast<int>(width)) << tables[i].file.string() << "  " << std::fixed
             << std::setprecision(4) << r.member_accuracy[i] << "\n";
    const std::string label = "ensemble (mean of " + std::to_string(tables.size()) + ")";
    text << std::setw(static_cast<int>(width)) << label << "  " << r.metrics.at(0).value << "\n\n";
    text << split << " (" << r.items.size() << " items):";
    std::ostringstream tsv;
    tsv << "metric\tvalue\n";
    for (const auto& m : r.metrics) {
        const std::string name = m.name.empty() ? "accuracy" : m.name;
        text << "  " << name << " " << format_metric(m.value);
        tsv << name << '\t' << std::setprecision(10) << m.value << '\n';
    }
    text << "\n";
    std::cout << text.str();
    if (!out.empty()) {
        const fs::path dir(out);
        fs::create_directories(dir);
        stages::write_classification_files(dir, split, r.labels, r.confusion, r.items);
        write_file_atomic(dir / (split + ".metrics.tsv"), tsv.str());
        std::string list;
        for (const auto& t : tables) list += fs::absolute(t.file).lexically_normal().string() + "\n";
        write_file_atomic(dir / "members.txt", list);
        std::cout << "wrote " << (dir / (split + ".predictions.tsv")).string() << ", " << split
                  << ".confusion.tsv, .png, " << split << ".metrics.tsv and members.txt\n";
    }
    return 0;
}

}  // namespace rnnflow
