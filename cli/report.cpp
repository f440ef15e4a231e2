// rnnflow report RUN_DIR|SWEEP_DIR [--out FILE] [--no-dot]
// rnnflow compare RUN_A RUN_B ... [--plot FILE] [--out DIR]
//
// report: one self-contained HTML page about a run or a sweep (pipeline/report/html.hpp).
// compare: a table of the runs' metrics on standard output, one PNG of their validation curves,
// and the paths of resolved.yaml where they differ (pipeline/report/compare.hpp).
// runs: one table of every run under the folders (pipeline/report/runs.hpp).
#include <fstream>
#include <iostream>

#include <boost/program_options.hpp>

#include "cli/commands.hpp"
#include "pipeline/core/safetensors.hpp"
#include "pipeline/report/compare.hpp"
#include "pipeline/report/html.hpp"
#include "pipeline/report/runs.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace rnnflow {

namespace {
// Parses options; false (after printing the usage) on --help.
bool parse_options(const std::vector<std::string>& args, po::options_description& d,
                   const po::positional_options_description& pos, const char* usage) {
    d.add_options()("help,h", "describe this command");
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(d).positional(pos).run(), vm);
    if (vm.count("help")) {
        std::cout << "usage: " << usage << "\n\n" << d << "\n";
        return false;
    }
    po::notify(vm);
    return true;
}
}  // namespace

int cmd_report(const std::vector<std::string>& args) {
    std::string dir, out;
    bool no_dot = false;
    po::options_description d("report options");
    d.add_options()
        ("dir", po::value(&dir)->required(), "a run folder (rnnflow run) or a sweep folder (rnnflow sweep)")
        ("out,o", po::value(&out), "the HTML file to write (default DIR/report.html)")
        ("no-dot", po::bool_switch(&no_dot), "show the graph as DOT text even when Graphviz is installed");
    po::positional_options_description pos;
    pos.add("dir", 1);
    if (!parse_options(args, d, pos, "rnnflow report RUN_DIR|SWEEP_DIR [--out FILE]")) return 0;
    report::HtmlOptions opt;
    if (no_dot) opt.dot.clear();
    const fs::path file = report::write_report(dir, out, opt);
    std::cout << "wrote " << file.string() << "\n";
    return 0;
}

int cmd_compare(const std::vector<std::string>& args) {
    std::vector<std::string> dirs;
    std::string plot_file, out;
    po::options_description d("compare options");
    d.add_options()
        ("run", po::value(&dirs)->composing(), "run folders, two or more")
        ("plot,p", po::value(&plot_file), "the PNG of the validation curves (default compare.png, in --out if given)")
        ("out,o", po::value(&out), "a folder for compare.png and compare.txt (created)");
    po::positional_options_description pos;
    pos.add("run", -1);
    if (!parse_options(args, d, pos, "rnnflow compare RUN_A RUN_B ... [--plot FILE] [--out DIR]")) return 0;
    std::vector<fs::path> runs(dirs.begin(), dirs.end());
    const report::Comparison c = report::compare_runs(runs);
    const std::string text = report::comparison_text(c);
    fs::path png = plot_file.empty() ? fs::path("compare.png") : fs::path(plot_file);
    if (!out.empty()) {
        fs::create_directories(out);
        if (plot_file.empty()) png = fs::path(out) / "compare.png";
        write_file_atomic(fs::path(out) / "compare.txt", text);
    }
    report::write_comparison_plot(c, png);
    std::cout << text << "\nplot: " << png.string() << "\n";
    if (!out.empty()) std::cout << "text: " << (fs::path(out) / "compare.txt").string() << "\n";
    return 0;
}

int cmd_runs(const std::vector<std::string>& args) {
    std::vector<std::string> dirs;
    std::string sort, experiment, format = "text", html;
    bool reverse = false;
    po::options_description d("runs options");
    d.add_options()
        ("dir", po::value(&dirs)->composing(), "folders holding run folders, searched recursively (default runs/)")
        ("sort", po::value(&sort), "sort by a column: experiment, started, status, epochs, metric, best_valid, "
                                   "best_epoch, test, wall_s, folder (default: start time)")
        ("reverse,r", po::bool_switch(&reverse), "the other way round")
        ("experiment,e", po::value(&experiment), "only the runs of this experiment")
        ("format,f", po::value(&format), "text (aligned columns), tsv or json")
        ("html", po::value(&html), "also write the table as an HTML page linking each run's report "
                                   "(writes the report.html of runs that have none)");
    po::positional_options_description pos;
    pos.add("dir", -1);
    if (!parse_options(args, d, pos, "rnnflow runs [DIR ...] [--sort COLUMN] [--experiment NAME] [--format text|tsv|json] "
                                     "[--html FILE]"))
        return 0;
    if (format != "text" && format != "tsv" && format != "json")
        throw Error("--format " + format + ": not a format", "text, tsv or json");
    if (dirs.empty()) dirs.push_back("runs");
    const std::vector<fs::path> roots(dirs.begin(), dirs.end());
    const report::RunsTable t = report::runs_table(report::find_runs(roots), experiment, sort, reverse);
    std::cout << (format == "json" ? report::runs_json(t) : format == "tsv" ? report::runs_tsv(t) : report::runs_text(t));
    if (!html.empty()) {
        for (const auto& dir : t.dirs)
            if (!fs::exists(dir / "report.html")) report::write_report(dir);
        const fs::path page(html);
        write_file_atomic(page, report::runs_html(t, page.has_parent_path() ? page.parent_path() : fs::path(".")));
        std::cerr << "wrote " << page.string() << "\n";
    }
    return 0;
}

}  // namespace rnnflow
