#include "token_noise.hpp"

#include <utility>

namespace token_noise_plugin {

using namespace rnnflow;

StageSchema TokenNoise::schema() {
    return StageSchema("token_noise", "drops and swaps tokens of the training split (augmentation)", Role::data)
        .input("in", PortType::tokens, "token sequences per split")
        .output("out", PortType::tokens, "the same sequences with noise on the chosen splits")
        .param_float("drop", 0.05, Range{0, 0.9}, "probability that a token is dropped")
        .param_float("swap", 0.0, Range{0, 1}, "probability that a token trades places with the next")
        .param_int("seed", -1, Range{-1, 2147483647}, "noise seed; -1: from the run's seed and the stage id")
        .param_list("splits", {"train"}, {"train", "valid", "test"}, "splits that get noise")
        .details("Per item: adjacent swaps left to right (a swapped pair is skipped), then drops. "
                 "The noise is drawn once, in prepare: every epoch sees the same noisy text.");
}

TokenNoise::TokenNoise(const Params& p)
    : drop_(p.get_float("drop")), swap_(p.get_float("swap")), seed_(p.get_int("seed")) {
    for (const auto& s : p.get_list("splits")) splits_.insert(s);
}

namespace {
// A double in [0, 1) from the top 53 bits: the same on every standard library.
double uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }
}  // namespace

std::vector<std::string> TokenNoise::apply(const std::vector<std::string>& tokens, std::mt19937_64& rng) const {
    std::vector<std::string> t = tokens;
    if (swap_ > 0)
        for (std::size_t i = 0; i + 1 < t.size(); ++i)
            if (uniform(rng) < swap_) {
                std::swap(t[i], t[i + 1]);
                ++i;  // the pair is done: a token moves at most one place
            }
    if (drop_ <= 0) return t;
    std::vector<std::string> kept;
    kept.reserve(t.size());
    for (auto& tok : t)
        if (uniform(rng) >= drop_) kept.push_back(std::move(tok));
    return kept;
}

void TokenNoise::prepare(PrepareContext& ctx) {
    ctx.set_output_info("out", PortInfo{PortType::tokens, -1, -1, nullptr});
    if (ctx.mode() == PrepareMode::restore) return;  // no data when sampling from a run folder
    std::mt19937_64 rng = seed_ >= 0 ? std::mt19937_64(static_cast<std::uint64_t>(seed_)) : std::mt19937_64(ctx.rng()());
    for (const auto& split : ctx.splits()) {
        if (!ctx.has_input("in", split)) continue;
        const auto& src = ctx.input<TokenSplit>("in", split);
        if (!splits_.count(split)) {
            ctx.put_output("out", split, src);  // a copy: dataset values are immutable
            continue;
        }
        TokenSplit out;
        out.origin = src.origin + " (token_noise)";
        out.spec = src.spec;
        out.items.reserve(src.items.size());
        for (const auto& item : src.items) out.items.push_back(apply(item, rng));
        ctx.put_output("out", split, std::move(out));
    }
}

}  // namespace token_noise_plugin
