#include "embedding.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <unordered_map>

namespace rnnflow::stages {

StageSchema Embedding::schema() {
    return StageSchema("embedding", "look up a learned vector per id", Role::model)
        .input("in", PortType::ids, "ids (T, N) + lengths; ids in [0, V), V from the producer")
        .output("out", PortType::tensor, "vectors (T, N, dim), zero at padded steps")
        .param_int("dim", 64, Range{1, 65536}, "size C of each id's vector")
        .param_float("init_scale", 0.1, Range{0, 10},
                     "weights start uniform in [-init_scale, init_scale]")
        .param_string("pretrained", "",
                      "word vectors to start from: a GloVe or word2vec text file, relative to the graph "
                      "file's folder; \"\" = none")
        .param_bool("freeze", false, "keep the weights as initialised (not trained)")
        .differentiable()
        .details("out[t, n, :] = weight[in[t, n], :] for t < length(n), 0 at padding. "
                 "Param weight (V, C). Ids outside [0, V) are an error. pretrained: rows of "
                 "vocabulary tokens found in the file (exactly, else lowercased) start from its "
                 "vectors, the others uniform; the coverage is logged. "
                 "Not supported: padding_idx, max_norm, sparse gradients, binary word2vec files.");
}

Embedding::Embedding(const Params& p)
    : dim_(p.get_int("dim")), init_scale_(p.get_float("init_scale")),
      pretrained_(p.get_string("pretrained")), freeze_(p.get_bool("freeze")) {}

namespace {

std::string ascii_lower(std::string s) {
    for (auto& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

// Space-separated fields of a line (runs of spaces or tabs count as one separator).
std::vector<std::string_view> fields_of(std::string_view line) {
    std::vector<std::string_view> f;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        const std::size_t b = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
        if (i > b) f.push_back(line.substr(b, i - b));
    }
    return f;
}

bool is_count(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string percent(double x) {
    std::ostringstream os;
    os.precision(1);
    os << std::fixed << 100.0 * x << "%";
    return os.str();
}

}  // namespace

std::string Embedding::load_pretrained(const rnnflow::Vocabulary& vocab, const std::filesystem::path& file,
                                       float* w) const {
    std::ifstream is(file, std::ios::binary);
    if (!is.is_open())
        throw Error("pretrained vectors '" + pretrained_ + "' not found or unreadable",
                    "looked for '" + file.string() + "'; relative paths start at the graph file's folder");
    // Vocabulary rows by exact and by lowercased text; the first file row wins for each.
    std::unordered_map<std::string, std::vector<std::int32_t>> exact, lower;
    const auto& specials = vocab.specials();
    for (std::int32_t id = 0; id < vocab.size(); ++id) {
        const std::string& t = vocab.token(id);
        if (std::find(specials.begin(), specials.end(), t) != specials.end()) continue;
        exact[t].push_back(id);
        lower[ascii_lower(t)].push_back(id);
    }
    std::vector<char> by_exact(static_cast<std::size_t>(vocab.size()), 0), by_lower(static_cast<std::size_t>(vocab.size()), 0);
    std::string line;
    std::int64_t lineno = 0, rows = 0;
    std::int64_t C = -1;  // the file's dimension
    std::vector<float> vec;
    while (std::getline(is, line)) {
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const auto f = fields_of(line);
        if (f.empty()) continue;
        if (lineno == 1 && f.size() == 2 && is_count(f[0]) && is_count(f[1])) {  // word2vec header
            C = std::stoll(std::string(f[1]));
            continue;
        }
        if (C < 0) C = static_cast<std::int64_t>(f.size()) - 1;
        if (C < 1)
            throw Error(detail::concat(pretrained_, ":", lineno, ": a row needs a token and its numbers"),
                        "give a GloVe/word2vec text file: token v1 v2 ... per line");
        if (C != dim_)
            throw Error(detail::concat(pretrained_, ":", lineno, ": the vectors have ", C, " dimensions but dim is ", dim_),
                        detail::concat("set dim: ", C));
        if (static_cast<std::int64_t>(f.size()) < C + 1)
            throw Error(detail::concat(pretrained_, ":", lineno, ": ", f.size() - 1, " numbers after the token, expected ", C),
                        "each row is a token and its vector (a truncated file?)");
        // A token may hold spaces (some GloVe files): the last C fields are the numbers.
        const std::size_t first_num = f.size() - static_cast<std::size_t>(C);
        std::string token(f[0]);
        for (std::size_t k = 1; k < first_num; ++k) {
            token += ' ';
            token += f[k];
        }
        ++rows;
        auto hit = exact.find(token);
        auto hit_lower = lower.find(token);
        const bool want = (hit != exact.end()) || (hit_lower != lower.end());
        if (!want) continue;
        vec.resize(static_cast<std::size_t>(C));
        for (std::int64_t c = 0; c < C; ++c) {
            const std::string_view num = f[first_num + static_cast<std::size_t>(c)];
            float v = 0;
            const auto r = std::from_chars(num.data(), num.data() + num.size(), v);
            if (r.ec != std::errc() || r.ptr != num.data() + num.size() || !std::isfinite(v))
                throw Error(detail::concat(pretrained_, ":", lineno, ": field ", first_num + static_cast<std::size_t>(c) + 1,
                                           " '", std::string(num), "' is not a finite number"),
                            "each row is a token and its vector");
            vec[static_cast<std::size_t>(c)] = v;
        }
        if (hit != exact.end())
            for (std::int32_t id : hit->second) {
                auto& e = by_exact[static_cast<std::size_t>(id)];
                if (e) continue;
                e = 1;
                by_lower[static_cast<std::size_t>(id)] = 0;
                std::copy(vec.begin(), vec.end(), w + static_cast<std::int64_t>(id) * dim_);
            }
        if (hit_lower != lower.end())
            for (std::int32_t id : hit_lower->second) {
                const auto i = static_cast<std::size_t>(id);
                if (by_exact[i] || by_lower[i]) continue;
                by_lower[i] = 1;
                std::copy(vec.begin(), vec.end(), w + static_cast<std::int64_t>(id) * dim_);
            }
    }
    if (is.bad()) throw Error("error while reading pretrained vectors '" + pretrained_ + "'", "check the file and the disk");
    if (rows == 0) throw Error("pretrained vectors '" + pretrained_ + "' hold no vectors", "give a GloVe/word2vec text file");
    std::int64_t n_exact = 0, n_lower = 0, regular = 0;
    double occ = 0, occ_found = 0;
    for (std::int32_t id = 0; id < vocab.size(); ++id) {
        const std::string& t = vocab.token(id);
        if (std::find(specials.begin(), specials.end(), t) != specials.end()) continue;
        ++regular;
        const auto i = static_cast<std::size_t>(id);
        n_exact += by_exact[i];
        n_lower += by_lower[i];
        occ += static_cast<double>(vocab.count(id));
        if (by_exact[i] || by_lower[i]) occ_found += static_cast<double>(vocab.count(id));
    }
    std::ostringstream os;
    os << "pretrained vectors " << pretrained_ << " (" << rows << " rows, dim " << C << "): " << n_exact + n_lower
       << " of " << regular << " vocabulary tokens found ("
       << percent(regular > 0 ? static_cast<double>(n_exact + n_lower) / static_cast<double>(regular) : 0.0) << "; "
       << n_lower << " by lowercase), covering " << percent(occ > 0 ? occ_found / occ : 0.0)
       << " of training token occurrences; " << regular - n_exact - n_lower << " tokens and "
       << vocab.specials().size() << " specials initialised uniform";
    return os.str();
}

void Embedding::prepare(PrepareContext& ctx) {
    const PortInfo& info = ctx.input_info("in");
    RNNFLOW_CHECK(info.classes > 0,
                  "embedding needs the number of distinct ids of input 'in', got ", info.classes,
                  " (connect it to ids that come from a vocabulary)");
    vocab_ = info.classes;
    vocab_info_ = info.vocab;
    Param& w = params_[0];
    w.name = "weight";
    w.layout = "(V, C)";
    w.value = Tensor::f32({vocab_, dim_});
    w.grad = Tensor::f32({vocab_, dim_});
    std::uniform_real_distribution<float> uni(static_cast<float>(-init_scale_),
                                              static_cast<float>(init_scale_));
    float* v = w.value.data<float>();
    for (std::int64_t i = 0; i < w.value.numel(); ++i) v[i] = init_scale_ > 0 ? uni(ctx.rng()) : 0.f;
    w.trainable = !freeze_;
    w.sparse_rows = true;  // backward lists the rows it adds into (grad_rows)
    // Restored runs take the weights from their checkpoint: the vectors file need not exist there.
    if (!pretrained_.empty() && ctx.mode() == PrepareMode::fit) {
        RNNFLOW_CHECK(info.vocab != nullptr, "embedding: pretrained vectors need the vocabulary of input 'in' "
                      "(connect it to ids that come from a vocabulary)");
        const std::filesystem::path file = std::filesystem::path(pretrained_).is_absolute()
                                               ? std::filesystem::path(pretrained_) : ctx.base_dir() / pretrained_;
        const std::string coverage = load_pretrained(*info.vocab, file, v);
        std::cerr << "stage '" << ctx.stage_id() << "': " << coverage << "\n";
    }

    PortInfo out;
    out.type = PortType::tensor;
    out.channels = dim_;
    ctx.set_output_info("out", out);
}

void Embedding::forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) {
    (void)saved; (void)step;
    const Tensor& ids = in.at("in");     // (T, N)
    Tensor& y = out.at("out");           // (T, N, C)
    RNNFLOW_CHECK(ids.rank() == 2, "embedding: input 'in' must be ids (T, N), got shape ",
                  shape_str(ids.shape()));
    RNNFLOW_ASSERT(vocab_ > 0);  // prepare ran
    const std::int64_t T = ids.dim(0), N = ids.dim(1), C = dim_;
    RNNFLOW_CHECK(ids.lengths.empty() || std::ssize(ids.lengths) == N, "embedding: input 'in' has ",
                  ids.lengths.size(), " lengths for ", N, " batch columns");
    y.resize(DType::f32, {T, N, C});
    y.lengths = ids.lengths;
    const std::int32_t* id = ids.data<std::int32_t>();
    const float* w = params_[0].value.data<float>();
    float* dst = y.data<float>();
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            float* row = dst + (t * N + n) * C;
            if (t >= ids.length(n)) {
                std::fill(row, row + C, 0.f);
                continue;
            }
            const std::int32_t v = id[t * N + n];
            RNNFLOW_CHECK(v >= 0 && v < vocab_, "embedding: id ", v, " at step ", t, ", column ",
                          n, " is outside [0, ", vocab_, ") (V = ", vocab_, ")");
            std::memcpy(row, w + v * C, static_cast<std::size_t>(C) * sizeof(float));
        }
}

void Embedding::backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                         Grads& diff_src, const StepInfo& step) {
    (void)out; (void)saved; (void)diff_src; (void)step;
    const Tensor& ids = in.at("in");        // (T, N)
    const Tensor& dy = diff_dst.at("out");  // (T, N, C)
    const std::int64_t T = ids.dim(0), N = ids.dim(1), C = dim_;
    RNNFLOW_ASSERT(dy.numel() == T * N * C);
    const std::int32_t* id = ids.data<std::int32_t>();
    const float* g = dy.data<float>();
    Param& w = params_[0];
    float* dw = w.grad.data<float>();
    // Forward checked every id; sequential so repeated ids add in a fixed order. The rows
    // added into join the gradient's row list (sorted, unique).
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            if (t >= ids.length(n)) continue;
            const std::int64_t r = id[t * N + n];
            float* row = dw + r * C;
            const float* src = g + (t * N + n) * C;
            for (std::int64_t c = 0; c < C; ++c) row[c] += src[c];
            w.grad_rows.push_back(r);
        }
    std::sort(w.grad_rows.begin(), w.grad_rows.end());
    w.grad_rows.erase(std::unique(w.grad_rows.begin(), w.grad_rows.end()), w.grad_rows.end());
}

}  // namespace rnnflow::stages
