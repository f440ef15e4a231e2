#include "sampler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace rnnflow::stages {

namespace {

// One step's choice of the next id from its logits row (V), over the ids the sampler may draw.
struct Draw {
    std::int64_t top_k;
    double temperature, top_p;
    std::vector<std::int32_t> order;  // scratch, reused across steps
    std::vector<double> weight;       // scratch: cumulative weights

    std::int32_t next(const float* row, const std::vector<std::int32_t>& candidates, std::mt19937_64& rng) {
        // Keep the top_k candidates by logit, best first (ties: lower id first).
        order = candidates;
        std::size_t k = order.size();
        if (top_k > 0 && static_cast<std::size_t>(top_k) < k) k = static_cast<std::size_t>(top_k);
        auto better = [&](std::int32_t a, std::int32_t b) { return row[a] != row[b] ? row[a] > row[b] : a < b; };
        std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(), better);
        order.resize(k);
        if (temperature == 0) return order.front();  // greedy
        const double mx = static_cast<double>(row[order.front()]);
        RNNFLOW_CHECK(std::isfinite(mx), "model gave non-finite logits");
        auto w = [&](std::int32_t id) { return std::exp((static_cast<double>(row[id]) - mx) / temperature); };
        if (top_p < 1) keep_nucleus(w);
        std::sort(order.begin(), order.end());  // CDF in id order: independent of sort details
        weight.assign(order.size(), 0.0);
        double total = 0;
        for (std::size_t i = 0; i < order.size(); ++i) {
            total += w(order[i]);
            weight[i] = total;  // cumulative
        }
        const double u = uniform01(rng) * total;
        for (std::size_t i = 0; i < order.size(); ++i)
            if (weight[i] > u) return order[i];
        return order.back();
    }

    // `order` best first: keep its shortest prefix whose probability mass reaches top_p (at
    // least one id). Ties at the edge are cut by id, as the order is.
    template <class Weight>
    void keep_nucleus(const Weight& w) {
        double total = 0;
        for (const auto id : order) total += w(id);
        double mass = 0;
        std::size_t keep = 0;
        while (keep < order.size() && (keep == 0 || mass < top_p * total)) mass += w(order[keep++]);
        order.resize(keep);
    }
};

}  // namespace

StageSchema Sampler::schema() {
    return StageSchema("sampler", "generates text from a language model by sampling", Role::sampler)
        .input("logits", PortType::tensor, "f32 (T, N, V): next-token scores from the model")
        .input("vocab", PortType::vocab, "vocabulary of the model's ids")
        .param_float("temperature", 1.0, Range{0.01, 100.0},
                     "divides the logits: below 1 sharper and safer, above 1 more varied")
        .param_int("top_k", 0, Range{0.0, 1e6}, "draw only among the k most likely tokens; 0 = all")
        .param_float("top_p", 1.0, Range{0.0, 1.0},
                     "nucleus: draw only among the fewest most likely tokens whose probabilities "
                     "sum to at least top_p (after top_k and temperature); 1 = all, 0 = the most likely")
        .param_int("seed", 1, Range{0.0, 2147483648.0}, "random seed: same seed, same text")
        .param_int("length", 200, Range{1.0, 1e6}, "tokens to generate")
        .param_string("prime", "", "text to start from; \"\" = start after <eos> (or a random token)")
        .details("Draws from softmax(logits / temperature) over the top_k tokens, cut to the top_p "
                 "nucleus (Holtzman et al. 2020), with a "
                 "std::mt19937_64 and a double-precision CDF. Never draws <pad>, <unk> or <sos>; "
                 "<eos> is written as a newline.");
}

Sampler::Sampler(const Params& p)
    : temperature_(p.get_float("temperature")), top_k_(p.get_int("top_k")), seed_(p.get_int("seed")),
      length_(p.get_int("length")), prime_(p.get_string("prime")), top_p_(p.get_float("top_p")) {}

void Sampler::prepare(PrepareContext& ctx) {
    vocab_ = ctx.input_info("vocab").vocab;
    if (vocab_ == nullptr)
        throw Error("input 'vocab' carries no vocabulary", "connect the vocabulary stage's vocab output");
    const std::int64_t c = ctx.connected("logits") ? ctx.input_info("logits").channels : -1;
    if (c >= 0 && c != vocab_->size())
        throw Error(detail::concat("logits have ", c, " channels, the vocabulary has ", vocab_->size(),
                                   " ids"),
                    "set the output layer's out_dim to vocab.size");
}

std::string Sampler::generate(ModelRunner& model, const SampleRequest& req) {
    RNNFLOW_CHECK(vocab_ != nullptr, "sampler used before prepare");
    const Vocabulary& v = *vocab_;
    const std::string prime = req.prime.empty() ? prime_ : req.prime;
    const std::int64_t length = req.length > 0 ? req.length : length_;
    const std::int64_t seed = req.seed >= 0 ? req.seed : seed_;
    const double temperature = req.temperature >= 0 ? req.temperature : temperature_;
    const std::int64_t top_k = req.top_k >= 0 ? req.top_k : top_k_;
    const double top_p = req.top_p >= 0 ? req.top_p : top_p_;
    RNNFLOW_CHECK(temperature <= 100.0, "temperature must be in [0, 100], got ", temperature);
    RNNFLOW_CHECK(top_p <= 1.0, "top_p must be in [0, 1], got ", top_p);
    if (!req.prime_from.empty() || req.prime_frames >= 0)
        throw Error("this run's sampler generates text: it primes with text, not with frames of a piece",
                    "give --prime TEXT; --prime-from and --prime-frames are for frame samplers (frame_sampler)");
    const auto V = v.size();

    std::vector<bool> allowed(static_cast<std::size_t>(V), true);
    for (const char* s : {"<pad>", "<unk>", "<sos>"})
        if (const auto id = v.special(s); id >= 0) allowed[static_cast<std::size_t>(id)] = false;
    std::vector<std::int32_t> candidates;
    for (std::int32_t i = 0; i < V; ++i)
        if (allowed[static_cast<std::size_t>(i)]) candidates.push_back(i);
    if (candidates.empty())
        throw Error("the vocabulary has no token the sampler may draw", "train on a non-empty corpus");

    std::mt19937_64 rng(static_cast<std::uint64_t>(seed));
    const std::int32_t eos = v.special("<eos>");

    // Text of every token to write: prime tokens as given (even when they became <unk>).
    std::vector<std::string> out_tokens;
    std::vector<std::int32_t> context;
    for (const auto& t : v.tokenizer().tokenize(prime)) {
        std::int32_t id = v.contains(t) ? v.id(t) : v.unk();
        if (id < 0)
            throw Error(detail::concat("prime token '", t, "' is not in the vocabulary"),
                        "use characters or words seen in training, or add <unk> to the vocabulary's specials");
        context.push_back(id);
        out_tokens.push_back(t);
    }
    std::int64_t produced = 0;
    if (context.empty()) {
        if (eos >= 0) {
            context.push_back(eos);
        } else {
            const auto k = static_cast<std::size_t>(uniform01(rng) * static_cast<double>(candidates.size()));
            const std::int32_t id = candidates[std::min(k, candidates.size() - 1)];
            context.push_back(id);
            out_tokens.push_back(v.token(id));
            ++produced;
        }
    }

    auto logits_ok = [&](const Tensor& l, std::int64_t steps) {
        RNNFLOW_CHECK(l.rank() == 3 && l.dim(0) == steps && l.dim(1) == 1 && l.dim(2) == V,
                      "model gave logits ", shape_str(l.shape()), ", the sampler expects (", steps,
                      ", 1, ", V, ")");
    };
    Tensor ids = Tensor::i32({static_cast<std::int64_t>(context.size()), 1});  // (T, 1)
    std::copy(context.begin(), context.end(), ids.data<std::int32_t>());
    const Tensor* logits = &model.run(ids, true);
    logits_ok(*logits, static_cast<std::int64_t>(context.size()));
    std::int64_t last = static_cast<std::int64_t>(context.size()) - 1;

    Draw draw{top_k, temperature, top_p, {}, {}};
    for (; produced < length; ++produced) {
        const std::int32_t next = draw.next(logits->data<float>() + last * V, candidates, rng);  // row (V)
        out_tokens.push_back(v.token(next));
        context.push_back(next);
        if (produced + 1 == length) break;
        Tensor step = Tensor::i32({1, 1});  // (1, 1)
        step.data<std::int32_t>()[0] = next;
        logits = &model.run(step, false);
        logits_ok(*logits, 1);
        last = 0;
    }

    // Detokenize between <eos> tokens, each <eos> becoming a newline.
    std::string text;
    std::vector<std::string> piece;
    const std::string eos_text = eos >= 0 ? v.token(eos) : std::string();
    // A prime word spelled "<eos>" has the <eos> id too, so it also becomes a newline.
    for (std::size_t i = 0; i < out_tokens.size(); ++i) {
        if (eos >= 0 && out_tokens[i] == eos_text) {
            text += v.tokenizer().detokenize(piece) + "\n";
            piece.clear();
        } else {
            piece.push_back(out_tokens[i]);
        }
    }
    text += v.tokenizer().detokenize(piece);
    return text;
}

}  // namespace rnnflow::stages
