#include "features.hpp"

#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <unordered_map>

#include "pipeline/core/npy.hpp"
#include "pipeline/core/safetensors.hpp"
#include "reader_common.hpp"

namespace rnnflow::stages {

namespace {
// The fitted state: D and the rows per training item, for restore and prediction runs.
constexpr const char* kShapeFile = "features.tsv";
}  // namespace

namespace fs = std::filesystem;

StageSchema Features::schema() {
    StageSchema s("features", "reads dense features per item (.npy, .safetensors) and their captions (TSV)",
                  Role::data);
    s.output("features", PortType::frames, "f32 (F, D) per (item, caption) pair; F = 1 for (N, D) files")
        .output("captions", PortType::text, "the caption of each pair")
        .output("items", PortType::text, "the item id of each pair (from ids, or the 0-based row)");
    reader::add_split_params(s, "feature file (.npy or .safetensors, shape (N, D) or (N, F, D))");
    s.param_list("captions", {}, "captions files, one per split given (train, valid, test order): "
                                 "lines item<TAB>caption; required")
        .param_list("ids", {}, "id files, one per split given: line k is the id of feature row k; "
                               "[] = captions name items by 0-based row")
        .param_string("tensor", "", ".safetensors: the tensor to read; \"\" = the file's only tensor")
        .value("skipped", "captions and items dropped as malformed (on_error: skip)")
        .value("uncaptioned", "feature rows left out because no caption names them")
        .details("One output entry per (item, caption) pair, in the captions file's order; items "
                 "without a caption are left out (counted, with a warning). Malformed captions "
                 "lines are reported as file:line, non-finite features as file: item k; D must "
                 "agree between splits. Prediction runs (rnnflow caption RUN_DIR FILE...): one item per "
                 "input line, PATH#k or a file of one item, shaped as in training.");
    return s;
}

Features::Features(const Params& p) : tensor_(p.get_string("tensor")) {
    const reader::SplitFiles split_files(p);
    skip_ = split_files.skip;
    const auto& captions = p.get_list("captions");
    const auto& ids = p.get_list("ids");
    std::string splits;
    for (const auto& [split, file] : split_files.files) splits += (splits.empty() ? "" : ", ") + split;
    const auto n = split_files.files.size();
    if (captions.size() != n)
        throw Error(detail::concat("captions lists ", captions.size(), " file", captions.size() == 1 ? "" : "s", " for ",
                                   n, " split", n == 1 ? "" : "s", " with features (", splits, ")"),
                    "give one captions file per split, in the order train, valid, test");
    if (!ids.empty() && ids.size() != n)
        throw Error(detail::concat("ids lists ", ids.size(), " file", ids.size() == 1 ? "" : "s", " for ", n,
                                   " split", n == 1 ? "" : "s", " with features (", splits, ")"),
                    "give one id file per split, or ids: [] to name items by row");
    for (std::size_t i = 0; i < n; ++i)
        files_.emplace_back(split_files.files[i].first,
                            SplitFiles{split_files.files[i].second, captions[i], ids.empty() ? "" : ids[i]});
}

std::int64_t Features::value(const std::string& name) const {
    if (name == "skipped") return skipped_;
    if (name == "uncaptioned") return uncaptioned_;
    return Stage::value(name);
}

namespace {

// The feature tensor of a file, f32 (N, F, D) or (N, D) (any_rank: also one item, (D) or (F, D)).
Tensor load_features(const fs::path& base, const std::string& file, const std::string& name, bool any_rank) {
    const fs::path path = fs::path(file).is_absolute() ? fs::path(file) : base / file;
    const std::string ext = fs::path(file).extension().string();
    Tensor t;
    if (ext == ".npy") {
        t = load_npy(path);
    } else if (ext == ".safetensors") {
        TensorFile tf = load_safetensors(path);
        std::vector<std::string> names;
        for (const auto& entry : tf.tensors) names.push_back(entry.first);
        std::size_t k = 0;
        if (name.empty() && names.size() != 1)
            throw Error(detail::concat(file, ": holds ", names.size(), " tensors; name the features with tensor: NAME"),
                        names.empty() ? "the file has no tensor" : "its tensors: " + reader::join_words(names));
        if (!name.empty()) {
            k = static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin());
            if (k == names.size())
                throw Error(detail::concat(file, ": no tensor '", name, "'"),
                            did_you_mean(name, names).empty() ? "its tensors: " + reader::join_words(names)
                                                              : did_you_mean(name, names));
        }
        t = std::move(tf.tensors[k].second);
        if (t.dtype() != DType::f32)
            throw Error(detail::concat(file, ": tensor '", names[k], "' is ", to_string(t.dtype()), ", features are f32"),
                        "save the features as float32");
    } else {
        throw Error(detail::concat("feature file '", file, "': unknown extension '", ext, "'"),
                    "give a .npy or a .safetensors file");
    }
    if (any_rank) return t;
    const bool ok_rank = t.rank() == 2 || t.rank() == 3;
    if (!ok_rank || t.dim(-1) < 1 || (t.rank() == 3 && t.dim(1) < 1))
        throw Error(detail::concat(file, ": features of shape ", shape_str(t.shape()),
                                   "; expected (N, D) or (N, F, D) with F, D >= 1"),
                    "one row per item: a vector (N, D) or F region vectors (N, F, D)");
    return t;
}

using RowOf = std::unordered_map<std::string, std::int64_t>;  // item id → feature row

// The ids of the feature rows, one per line (into `ids`); id → row.
RowOf read_ids(const fs::path& base, const std::string& file,
                                                       const std::string& split, std::int64_t rows,
                                                       const std::string& features, std::vector<std::string>& ids) {
    ids = split_lines(read_text_file(base, file, split + " ids"));
    if (static_cast<std::int64_t>(ids.size()) != rows)
        throw Error(detail::concat(file, ": ", ids.size(), " ids for the ", rows, " feature rows of ", features),
                    "one id per line, line k naming row k of the feature file");
    RowOf row_of;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (ids[i].empty()) throw Error(detail::concat(file, ":", i + 1, ": empty id"), "one id per line");
        const auto [it, fresh] = row_of.emplace(ids[i], static_cast<std::int64_t>(i));
        if (!fresh)
            throw Error(detail::concat(file, ":", i + 1, ": id '", ids[i], "' appears again (first at line ",
                                       it->second + 1, ")"),
                        "ids name one feature row each");
    }
    return row_of;
}

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return {};
    return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

struct Caption {
    std::int64_t row;
    std::string text;
};

// The captions lines item<TAB>caption; malformed ones go to `bad`. `row_of`: the id file's
// rows, or nullptr (items are 0-based row numbers below `rows`).
std::vector<Caption> read_captions(const fs::path& base, const std::string& file, const std::string& split,
                                   const RowOf* row_of, std::int64_t rows,
                                   const std::string& features, reader::BadLines& bad) {
    std::vector<Caption> out;
    const auto lines = split_lines(read_text_file(base, file, split + " captions"));
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const auto line = static_cast<std::int64_t>(i) + 1;
        if (trim(lines[i]).empty()) continue;
        const auto tab = lines[i].find('\t');
        if (tab == std::string::npos) {
            bad.bad(line, "no tab: expected item<TAB>caption", "");
            continue;
        }
        const std::string item = trim(lines[i].substr(0, tab));
        std::string text = trim(lines[i].substr(tab + 1));
        std::int64_t row = -1;
        if (row_of) {
            const auto it = row_of->find(item);
            if (it != row_of->end()) row = it->second;
        } else if (!item.empty() && item.size() <= 18 && item.find_first_not_of("0123456789") == std::string::npos) {
            row = std::stoll(item);
        }
        if (row < 0 || row >= rows) {
            bad.bad(line,
                    row_of ? detail::concat("unknown item '", item, "' (not an id of the id file)")
                           : detail::concat("item '", item, "' is not a row of ", features, " (0 to ", rows - 1, ")"),
                    row_of ? "items are ids from the id file" : "items are 0-based row numbers, or give ids");
            continue;
        }
        if (text.empty()) {
            bad.bad(line, detail::concat("empty caption for item '", item, "'"), "");
            continue;
        }
        out.push_back({row, std::move(text)});
    }
    return out;
}

// Rows with a NaN or Inf go to `bad`; returns which rows are usable.
std::vector<char> finite_rows(const Tensor& t, reader::BadLines& bad) {
    const std::int64_t n = t.dim(0), per_item = n == 0 ? 0 : t.numel() / n, dim = t.dim(-1);
    std::vector<char> ok(static_cast<std::size_t>(n), 1);
    const float* x = t.data<float>();
    for (std::int64_t r = 0; r < n; ++r)
        for (std::int64_t k = 0; k < per_item; ++k) {
            const float v = x[r * per_item + k];
            if (std::isfinite(v)) continue;
            bad.bad(detail::concat("item ", r, ": ", std::isnan(v) ? "NaN" : "Inf", " at region ", k / dim,
                                   ", component ", k % dim),
                    "the feature extractor gave a non-finite value; recompute this item or drop it");
            ok[static_cast<std::size_t>(r)] = 0;
            break;
        }
    return ok;
}

}  // namespace

void Features::prepare(PrepareContext& ctx) {
    for (const char* port : {"captions", "items"}) ctx.set_output_info(port, PortInfo{PortType::text, -1, -1, nullptr});
    ctx.set_output_info("features", PortInfo{PortType::frames, -1, -1, nullptr});  // channels: D, once read
    skipped_ = uncaptioned_ = 0;
    if (ctx.mode() == PrepareMode::restore) {
        restore(ctx);
        return;
    }
    std::int64_t dim = -1, train_rows = 1;
    std::string dim_file;
    if (files_.empty() || files_.front().first != "train")
        throw Error("no training file", "set train: path/to/train.npy and captions: [train captions, ...]");
    for (const auto& [split, f] : files_) {
        const Tensor t = load_features(ctx.base_dir(), f.features, tensor_, false);
        if (dim < 0) {
            dim = t.dim(-1);
            dim_file = f.features;
        }
        if (t.dim(-1) != dim)
            throw Error(detail::concat(f.features, ": features have D = ", t.dim(-1), ", the ", files_.front().first,
                                       " split's (", dim_file, ") have D = ", dim),
                        "every split needs features from the same extractor");
        const std::int64_t rows = t.dim(0), per_item = rows == 0 ? 0 : t.numel() / rows;
        if (split == "train") train_rows = per_item / dim;
        reader::BadLines bad_features(skip_, f.features), bad_captions(skip_, f.captions);
        const std::vector<char> ok = finite_rows(t, bad_features);
        std::vector<std::string> ids;
        const RowOf row_of = f.ids.empty() ? RowOf{} : read_ids(ctx.base_dir(), f.ids, split, rows, f.features, ids);
        const auto caps = read_captions(ctx.base_dir(), f.captions, split, f.ids.empty() ? nullptr : &row_of, rows,
                                        f.features, bad_captions);
        FrameSplit frames;
        TextSplit captions, items;
        frames.dim = dim;
        frames.origin = f.features;
        captions.origin = items.origin = f.captions;
        std::vector<char> captioned(static_cast<std::size_t>(rows), 0);
        const float* x = t.data<float>();
        for (const Caption& c : caps) {
            if (!ok[static_cast<std::size_t>(c.row)]) continue;  // reported with the features
            captioned[static_cast<std::size_t>(c.row)] = 1;
            frames.items.push_back({per_item / dim, std::vector<float>(x + c.row * per_item, x + (c.row + 1) * per_item)});
            captions.items.push_back(c.text);
            items.items.push_back(f.ids.empty() ? std::to_string(c.row) : ids[static_cast<std::size_t>(c.row)]);
        }
        std::int64_t left_out = 0;
        for (std::int64_t r = 0; r < rows; ++r) left_out += ok[static_cast<std::size_t>(r)] && !captioned[static_cast<std::size_t>(r)];
        if (left_out > 0)
            std::cerr << "warning: stage '" << ctx.stage_id() << "': " << left_out << " of " << rows << " items of "
                      << f.features << " have no caption in " << f.captions << " and are left out\n";
        bad_features.report(ctx.stage_id(), "items");
        bad_captions.report(ctx.stage_id(), "lines");
        skipped_ += bad_features.count() + bad_captions.count();
        uncaptioned_ += left_out;
        if (frames.items.empty())
            throw Error(detail::concat(split, " split: no (item, caption) pair in ", f.features, " and ", f.captions),
                        "check that the captions name the items (0-based rows, or ids)");
        ctx.put_output("features", split, std::move(frames));
        ctx.put_output("captions", split, std::move(captions));
        ctx.put_output("items", split, std::move(items));
    }
    ctx.set_output_info("features", PortInfo{PortType::frames, dim, -1, nullptr});
    const fs::path dir = ctx.state_dir();
    if (!dir.empty()) write_file_atomic(dir / kShapeFile, detail::concat("dim\t", dim, "\nrows\t", train_rows, "\n"));
}

namespace {
// The fitted state (D, rows per item), or (-1, -1) when the file is absent.
std::pair<std::int64_t, std::int64_t> read_shape(const fs::path& dir) {
    const fs::path file = dir / kShapeFile;
    std::int64_t dim = -1, rows = -1;
    if (dir.empty() || !fs::exists(file)) return {dim, rows};
    std::ifstream in(file);
    std::string key;
    std::int64_t v = 0;
    while (in >> key >> v) (key == "dim" ? dim : rows) = v;
    RNNFLOW_CHECK(dim > 0 && rows > 0, file.string(), ": malformed (expected dim and rows)");
    return {dim, rows};
}
}  // namespace

std::vector<std::string> Features::expand_input(const std::string& file, const fs::path& state_dir,
                                                const std::string& tensor) {
    const std::size_t hash = file.rfind('#');
    if (hash != std::string::npos && hash + 1 < file.size() &&
        file.find_first_not_of("0123456789", hash + 1) == std::string::npos)
        return {file};
    const auto [dim, rows] = read_shape(state_dir);
    if (dim < 0) return {file};  // the reader says why
    const std::int64_t n = load_item_file(file, tensor, dim, rows).second;
    if (n == 1) return {file};
    std::vector<std::string> out;
    for (std::int64_t k = 0; k < n; ++k) out.push_back(file + "#" + std::to_string(k));
    return out;
}

// Restore: D (and the rows per training item) from the fitted state; in a prediction run, the
// input lines are items: PATH (a file of one item) or PATH#k (item k of the file).
void Features::restore(PrepareContext& ctx) {
    const fs::path dir = ctx.state_dir();
    const fs::path file = dir / kShapeFile;
    const auto [dim, rows] = read_shape(dir);
    ctx.set_output_info("features", PortInfo{PortType::frames, dim, -1, nullptr});
    if (!ctx.infer_lines()) return;
    if (dim < 0)
        throw Error(detail::concat("no saved feature shape at '", file.string(), "'"),
                    "the run was trained by an rnnflow before 0.3: retrain it to caption new inputs");
    ctx.put_output("features", "infer", infer_items(*ctx.infer_lines(), dim, rows));
    ctx.put_output("items", "infer", TextSplit{*ctx.infer_lines(), "input"});
    ctx.put_output("captions", "infer", TextSplit{std::vector<std::string>(ctx.infer_lines()->size()), "input"});
}

// One item per input line, PATH or PATH#k; the shape as in training: (N, D) files hold vectors
// (rows 1), (N, F, D) files grids; a file of one item may leave out N: (D) or (F, D).
FrameSplit Features::infer_items(const std::vector<std::string>& lines, std::int64_t dim, std::int64_t rows) const {
    FrameSplit out;
    out.dim = dim;
    out.origin = "input";
    std::map<std::string, std::pair<Tensor, std::int64_t>> files;
    for (const std::string& line : lines) {
        const std::size_t hash = line.rfind('#');
        const bool indexed = hash != std::string::npos && hash + 1 < line.size() &&
                             line.find_first_not_of("0123456789", hash + 1) == std::string::npos;
        const std::string path = indexed ? line.substr(0, hash) : line;
        auto it = files.find(path);
        if (it == files.end()) it = files.emplace(path, load_item_file(path, tensor_, dim, rows)).first;
        const auto& [t, n] = it->second;  // n items of rows * dim values
        std::int64_t k = 0;
        if (indexed) k = std::stoll(line.substr(hash + 1));
        else if (n != 1)
            throw Error(detail::concat(path, ": holds ", n, " items"),
                        detail::concat("name one as ", path, "#k (k from 0 to ", n - 1, "); rnnflow caption lists them all"));
        if (k >= n) throw Error(detail::concat(line, ": the file holds ", n, " items (0 to ", n - 1, ")"));
        const float* x = t.data<float>() + k * rows * dim;
        for (std::int64_t e = 0; e < rows * dim; ++e)
            if (!std::isfinite(x[e]))
                throw Error(detail::concat(line, ": ", std::isnan(x[e]) ? "NaN" : "Inf", " at region ", e / dim,
                                           ", component ", e % dim));
        out.items.push_back({rows, std::vector<float>(x, x + rows * dim)});
    }
    return out;
}

// A feature file for prediction and its number of items, its shape checked against training's.
std::pair<Tensor, std::int64_t> Features::load_item_file(const std::string& path, const std::string& tensor,
                                                         std::int64_t dim, std::int64_t rows) {
    Tensor t = load_features({}, path, tensor, true);
    const Shape& s = t.shape();
    const bool one_vector = rows == 1 && t.rank() == 1 && s[0] == dim;
    const bool one_grid = rows > 1 && t.rank() == 2 && s[0] == rows && s[1] == dim;
    const bool vectors = rows == 1 && t.rank() == 2 && s[1] == dim;
    const bool grids = t.rank() == 3 && s[1] == rows && s[2] == dim;
    if (!(one_vector || one_grid || vectors || grids))
        throw Error(detail::concat(path, ": features of shape ", shape_str(s), ", the run was trained on ",
                                   rows == 1 ? detail::concat("vectors of D = ", dim, ": (N, ", dim, ") or (", dim, ")")
                                             : detail::concat("grids of ", rows, " x ", dim, ": (N, ", rows, ", ", dim,
                                                              ") or (", rows, ", ", dim, ")")),
                    "give features from the extractor the run was trained with");
    const std::int64_t n = one_vector || one_grid ? 1 : s[0];
    return {std::move(t), n};
}

}  // namespace rnnflow::stages
