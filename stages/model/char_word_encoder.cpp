#include "char_word_encoder.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>

#include "gru.hpp"
#include "lstm.hpp"

namespace rnnflow::stages {

namespace {

// The inner recurrent stage's prepare: its only input is the embedded characters; the rest
// (generator, folders, threads) is the outer stage's.
class InnerPrepare final : public PrepareContext {
public:
    InnerPrepare(PrepareContext& outer, std::int64_t channels) : outer_(outer) {
        in_.type = PortType::tensor;
        in_.channels = channels;
    }
    PrepareMode mode() const override { return outer_.mode(); }
    const std::string& stage_id() const override { return outer_.stage_id(); }
    const std::vector<std::string>& splits() const override { return outer_.splits(); }
    bool connected(const std::string& input) const override { return input == "in"; }
    const PortInfo& input_info(const std::string& input) const override {
        RNNFLOW_CHECK(input == "in", "char_word_encoder: the inner net has no input '", input, "'");
        return in_;
    }
    void set_output_info(const std::string&, PortInfo) override {}
    bool has_input(const std::string&, const std::string&) const override { return false; }
    const std::any& input_any(const std::string& input, const std::string&) const override {
        throw Error("char_word_encoder: the inner net reads no dataset ('" + input + "')");
    }
    void put_output_any(const std::string&, const std::string&, std::any) override {}
    std::mt19937_64& rng() override { return outer_.rng(); }
    std::filesystem::path state_dir() override { return outer_.state_dir(); }
    const std::filesystem::path& base_dir() const override { return outer_.base_dir(); }
    int threads() const override { return outer_.threads(); }

private:
    PrepareContext& outer_;
    PortInfo in_;
};

}  // namespace

struct CharWordEncoder::Work {
    Saved inner;                 // the recurrent stage's own saved tensors
    Tensor emb;                  // (L, M, E) embedded characters, lengths 0 at padded words
    Tensor rnn_out, rnn_state;   // the inner outputs (out unused, state read)
    Tensor d_out, d_state, d_emb;
    std::int64_t L = 0;          // characters run (max length over non-padded words)
};

StageSchema CharWordEncoder::schema() {
    return StageSchema("char_word_encoder",
                       "a vector per word from a recurrent net over its characters", Role::model)
        .input("chars", PortType::ids,
               "character ids (Lc, T*N) + lengths: column t*N + n spells the word at (t, n)")
        .input("like", PortType::ids, "the word ids (T, N) + lengths the characters belong to")
        .output("out", PortType::tensor,
                "(T, N, D) + like's lengths, D = hidden (left_to_right) or 2 hidden "
                "(bidirectional); 0 at padded words")
        .param_int("char_dim", 32, Range{1, 65536}, "E, the size of each character's vector")
        .param_int("hidden", 64, Range{1, 65536}, "H, the recurrent state size per direction")
        .param_choice("cell", "lstm", {"lstm", "gru"}, "the recurrent cell (as the lstm / gru stages)")
        .param_bool("bidirectional", true,
                    "read each word both ways and concatenate the two final states")
        .param_float("init_scale", 0.1, Range{0, 10},
                     "character vectors (and, with initializer uniform, the recurrent weights) "
                     "start uniform in [-init_scale, init_scale]")
        .param_choice("initializer", "uniform", {"uniform", "xavier", "orthogonal"},
                      "the recurrent weights' initializer (as in the lstm / gru stages)")
        .differentiable()
        .details("out[t, n] = [h_l2r after the word's last character, h_r2l after its first] of "
                 "a one-layer recurrent net (the lstm / gru implementation, exact on padding) "
                 "over the embedded characters of word (t, n). Params: char_embedding (Vc, E), "
                 "rnn.layer0.<l2r|r2l>.weights_layer (E, G, H), .weights_iter (H, G, H), .bias. "
                 "Concatenate with a word embedding through `concat`. Ref: Ling et al. 2015; "
                 "Plank et al. 2016.");
}

CharWordEncoder::CharWordEncoder(const Params& p)
    : cell_(p.get_string("cell") == "gru" ? Cell::gru : Cell::lstm),
      char_dim_(p.get_int("char_dim")),
      hidden_(p.get_int("hidden")),
      bidirectional_(p.get_bool("bidirectional")),
      init_scale_(p.get_float("init_scale")),
      initializer_(p.get_string("initializer")) {}

CharWordEncoder::~CharWordEncoder() = default;

void CharWordEncoder::prepare(PrepareContext& ctx) {
    const PortInfo& info = ctx.input_info("chars");
    RNNFLOW_CHECK(info.classes > 0,
                  "char_word_encoder needs the character vocabulary size of input 'chars', got ",
                  info.classes, " (connect a batch source's 'chars' output)");
    vocab_ = info.classes;

    inner_schema_ = cell_ == Cell::gru ? Gru::schema() : Lstm::schema();
    Params ip = default_params(inner_schema_);
    ip.set("hidden", hidden_);
    ip.set("layers", std::int64_t(1));
    ip.set("direction", std::string(bidirectional_ ? "bidirectional_concat" : "left_to_right"));
    ip.set("initializer", initializer_);
    ip.set("init_scale", init_scale_);
    inner_ = std::make_unique<Recurrent>(cell_, ip);

    params_.clear();
    Param& e = params_.emplace_back();
    e.name = "char_embedding";
    e.layout = "(Vc, E)";
    e.value = Tensor::f32({vocab_, char_dim_});
    e.grad = Tensor::f32({vocab_, char_dim_});
    std::uniform_real_distribution<float> uni(static_cast<float>(-init_scale_),
                                              static_cast<float>(init_scale_));
    for (std::int64_t i = 0; i < e.value.numel(); ++i)
        e.value.data<float>()[i] = init_scale_ > 0 ? uni(ctx.rng()) : 0.f;

    InnerPrepare ictx(ctx, char_dim_);
    inner_->prepare(ictx);
    for (const Param& p : inner_->params()) {
        Param& q = params_.emplace_back();
        q.name = "rnn." + p.name;
        q.layout = p.layout;
        q.value = p.value;
        q.grad = p.grad;
    }

    PortInfo out;
    out.type = PortType::tensor;
    out.channels = out_channels();
    ctx.set_output_info("out", out);
}

void CharWordEncoder::forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) {
    const Tensor& chars = in.at("chars");  // (Lc, M)
    const Tensor& like = in.at("like");    // (T, N)
    RNNFLOW_ASSERT(inner_ != nullptr);     // prepare ran
    RNNFLOW_CHECK(like.rank() == 2, "char_word_encoder: input 'like' must be ids (T, N), got ",
                  shape_str(like.shape()));
    const std::int64_t T = like.dim(0), N = like.dim(1), M = T * N, E = char_dim_, H = hidden_;
    const std::int64_t D = bidirectional_ ? 2 : 1, Y = D * H;
    RNNFLOW_CHECK(like.lengths.empty() || std::ssize(like.lengths) == N,
                  "char_word_encoder: input 'like' has ", like.lengths.size(), " lengths for ", N,
                  " batch columns");
    RNNFLOW_CHECK(chars.dtype() == DType::i32 && chars.rank() == 2 && chars.dim(1) == M,
                  "char_word_encoder: input 'chars' must be ids (Lc, T*N) = (Lc, ", M,
                  ") for words ", shape_str(like.shape()), ", got ", to_string(chars.dtype()), " ",
                  shape_str(chars.shape()));
    RNNFLOW_CHECK(chars.lengths.empty() || std::ssize(chars.lengths) == M,
                  "char_word_encoder: input 'chars' has ", chars.lengths.size(), " lengths for ",
                  M, " words");
    const std::int64_t Lc = chars.dim(0);

    if (!saved.extra.has_value()) saved.extra = std::make_shared<Work>();
    Work& w = *std::any_cast<std::shared_ptr<Work>&>(saved.extra);

    // Embed the characters of valid words; padded words get length 0.
    std::vector<std::int32_t> len(static_cast<std::size_t>(M), 0);
    std::int64_t L = 0;
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            if (t >= like.length(n)) continue;
            const std::int64_t m = t * N + n, l = chars.length(m);
            RNNFLOW_CHECK(l >= 0 && l <= Lc, "char_word_encoder: word column ", m, " has ", l,
                          " characters, outside [0, ", Lc, "]");
            len[static_cast<std::size_t>(m)] = static_cast<std::int32_t>(l);
            L = std::max(L, l);
        }
    w.L = L;
    Tensor& y = out.at("out");
    y.resize(DType::f32, {T, N, Y});
    y.zero();
    y.lengths = like.lengths;
    if (L == 0) return;

    w.emb.resize(DType::f32, {L, M, E});
    w.emb.zero();
    w.emb.lengths = len;
    const std::int32_t* ids = chars.data<std::int32_t>();
    const float* table = params_[0].value.data<float>();
    float* emb = w.emb.data<float>();
    for (std::int64_t m = 0; m < M; ++m)
        for (std::int64_t l = 0; l < len[static_cast<std::size_t>(m)]; ++l) {
            const std::int32_t v = ids[l * M + m];
            RNNFLOW_CHECK(v >= 0 && v < vocab_, "char_word_encoder: character id ", v, " at ", l,
                          ", word column ", m, " is outside [0, ", vocab_, ")");
            std::memcpy(emb + (l * M + m) * E, table + v * E, static_cast<std::size_t>(E) * sizeof(float));
        }

    // The inner net reads the current weights.
    std::span<Param> ip = inner_->params();
    for (std::size_t i = 0; i < ip.size(); ++i) ip[i].value = params_[i + 1].value;

    std::vector<const Tensor*> iin{&w.emb, nullptr};
    std::vector<Tensor*> iout{&w.rnn_out, &w.rnn_state};
    const Inputs inner_in(&inner_schema_, true, iin);
    Outputs inner_out(&inner_schema_, false, iout);
    inner_->forward(inner_in, inner_out, w.inner, step);

    // state (S, D, M, H): row d of slot 0 is direction d's h.
    const float* st = w.rnn_state.data<float>();
    float* py = y.data<float>();
    for (std::int64_t m = 0; m < M; ++m) {
        if (len[static_cast<std::size_t>(m)] == 0) continue;
        for (std::int64_t d = 0; d < D; ++d)
            std::memcpy(py + m * Y + d * H, st + (d * M + m) * H, static_cast<std::size_t>(H) * sizeof(float));
    }
}

void CharWordEncoder::backward(const Inputs& in, const Outputs& out, Saved& saved,
                               const Grads& diff_dst, Grads& diff_src, const StepInfo& step) {
    (void)out; (void)diff_src;
    const Tensor& chars = in.at("chars");
    const Tensor& like = in.at("like");
    const Tensor& dy = diff_dst.at("out");  // (T, N, Y)
    const std::int64_t T = like.dim(0), N = like.dim(1), M = T * N, E = char_dim_, H = hidden_;
    const std::int64_t D = bidirectional_ ? 2 : 1, Y = D * H;
    RNNFLOW_ASSERT(dy.numel() == M * Y && saved.extra.has_value());
    Work& w = *std::any_cast<std::shared_ptr<Work>&>(saved.extra);
    if (w.L == 0) return;
    const std::int64_t L = w.L;
    const auto& len = w.emb.lengths;

    // Only the final h reaches the output: diff_state holds dy's halves, diff_out is zero.
    w.d_state.resize(DType::f32, inner_->state_shape(M));
    w.d_state.zero();
    float* ds = w.d_state.data<float>();
    const float* g = dy.data<float>();
    for (std::int64_t m = 0; m < M; ++m) {
        if (len[static_cast<std::size_t>(m)] == 0) continue;  // padded word: constant output
        for (std::int64_t d = 0; d < D; ++d)
            std::memcpy(ds + (d * M + m) * H, g + m * Y + d * H, static_cast<std::size_t>(H) * sizeof(float));
    }
    w.d_out.resize(DType::f32, {L, M, inner_->out_channels()});
    w.d_out.zero();

    std::span<Param> ip = inner_->params();
    for (auto& p : ip) p.grad.zero();
    std::vector<const Tensor*> iin{&w.emb, nullptr};
    std::vector<Tensor*> iout{&w.rnn_out, &w.rnn_state};
    std::vector<Tensor*> idd{&w.d_out, &w.d_state};
    std::vector<Tensor*> ids{&w.d_emb, nullptr};
    const Inputs inner_in(&inner_schema_, true, iin);
    const Outputs inner_out(&inner_schema_, false, iout);
    const Grads inner_dd(&inner_schema_, false, idd);
    Grads inner_ds(&inner_schema_, true, ids);
    inner_->backward(inner_in, inner_out, w.inner, inner_dd, inner_ds, step);

    // Move the inner gradients into ours.
    for (std::size_t i = 0; i < ip.size(); ++i) {
        float* dst = params_[i + 1].grad.data<float>();
        const float* src = ip[i].grad.data<float>();
        for (std::int64_t e = 0; e < ip[i].grad.numel(); ++e) dst[e] += src[e];
        ip[i].grad.zero();
    }
    // Character embedding rows, in (l, m) order (deterministic).
    const std::int32_t* idp = chars.data<std::int32_t>();
    const float* de = w.d_emb.data<float>();
    float* dt = params_[0].grad.data<float>();
    for (std::int64_t l = 0; l < L; ++l)
        for (std::int64_t m = 0; m < M; ++m) {
            if (l >= len[static_cast<std::size_t>(m)]) continue;
            float* row = dt + static_cast<std::int64_t>(idp[l * M + m]) * E;
            const float* src = de + (l * M + m) * E;
            for (std::int64_t c = 0; c < E; ++c) row[c] += src[c];
        }
}

}  // namespace rnnflow::stages
