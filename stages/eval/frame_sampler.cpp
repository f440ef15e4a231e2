#include "frame_sampler.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "pipeline/core/midi.hpp"
#include "pipeline/core/plot.hpp"
#include "pipeline/core/text.hpp"
#include "stages/data/note_sets.hpp"

namespace rnnflow::stages {

namespace {
constexpr std::int64_t kPpqn = 480;  // ticks per quarter note in the MIDI file
}  // namespace

StageSchema FrameSampler::schema() {
    return StageSchema("frame_sampler", "generates music from a frame model by sampling; writes MIDI and a piano roll",
                       Role::sampler)
        .input("logits", PortType::tensor, "f32 (T, N, P): the next frame's note scores from the model")
        .optional_input("frames", PortType::frames,
                        "the pieces to prime from with prime_from SPLIT:INDEX (note_sets' frames)")
        .param_int("length", 64, Range{1.0, 100000.0}, "frames to sample after the prime")
        .param_float("temperature", 1.0, Range{0.0, 100.0},
                     "divides the logits: below 1 fewer, surer notes; 0 = a note where its probability > 0.5")
        .param_int("seed", 1, Range{0.0, 2147483648.0}, "random seed: same seed, same piece")
        .param_string("prime_from", "",
                      "the piece to start from: SPLIT:INDEX of the run's data (test:3), or a note-set JSON file "
                      "(FILE or FILE:SPLIT:INDEX); \"\" = no prime")
        .param_int("prime_frames", 8, Range{1.0, 100000.0}, "frames of that piece to start from")
        .param_int("low", 21, Range{0.0, 127.0}, "the MIDI note of unit 0: the reader's low (low: notes.low)")
        .allow_ref()
        .param_float("tempo", 120.0, Range{10.0, 1000.0}, "beats (quarter notes) per minute in the MIDI file")
        .param_int("steps_per_beat", 1, Range{1.0, 16.0},
                   "frames per quarter note (1 for JSB Chorales' quarter-note steps); must divide 480")
        .param_int("velocity", 80, Range{1.0, 127.0}, "MIDI velocity of every note")
        .details("Feeds the model the previous sampled frame (the zero frame first, as frame_batches does) and "
                 "draws every unit independently as Bernoulli(sigmoid(logit / temperature)) with a "
                 "std::mt19937_64. Files: OUTPUT.mid (a note held over consecutive frames is one note), "
                 "OUTPUT.png (the piano roll), OUTPUT.json (note_sets' format), where OUTPUT is "
                 "RUN_DIR/generated after each epoch (train.sample_length frames) or rnnflow generate --out.");
}

FrameSampler::FrameSampler(const Params& p)
    : temperature_(p.get_float("temperature")), tempo_(p.get_float("tempo")), seed_(p.get_int("seed")),
      length_(p.get_int("length")), prime_frames_(p.get_int("prime_frames")), low_(p.get_int("low")),
      steps_per_beat_(p.get_int("steps_per_beat")), velocity_(p.get_int("velocity")),
      prime_from_(p.get_string("prime_from")) {
    if (kPpqn % steps_per_beat_ != 0)
        throw Error(detail::concat("steps_per_beat ", steps_per_beat_, " does not divide ", kPpqn,
                                   " ticks per quarter note"),
                    "give 1, 2, 3, 4, 5, 6, 8, 10, 12, 15 or 16");
}

namespace {

// "SPLIT:INDEX" with SPLIT train, valid or test and INDEX 0-based.
bool split_index(const std::string& s, std::string& split, std::int64_t& index) {
    const auto colon = s.find(':');
    if (colon == std::string::npos) return false;
    split = s.substr(0, colon);
    const std::string digits = s.substr(colon + 1);
    if (split != "train" && split != "valid" && split != "test") return false;
    if (digits.empty() || digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return false;
    index = std::stoll(digits);
    return true;
}

// The rows [0, frames) of an item, at most all of it.
std::vector<float> first_rows(const FrameSplit::Item& item, std::int64_t frames, std::int64_t P) {
    const std::int64_t k = std::min(frames, item.rows);
    return std::vector<float>(item.values.begin(), item.values.begin() + static_cast<std::ptrdiff_t>(k * P));
}

}  // namespace

void FrameSampler::prepare(PrepareContext& ctx) {
    P_ = ctx.input_info("logits").channels;
    if (P_ > 0 && low_ + P_ - 1 > 127)
        throw Error(detail::concat("low ", low_, " + ", P_, " units reaches MIDI note ", low_ + P_ - 1,
                                   ", above 127"),
                    "set low to the reader's low (low: notes.low)");
    if (!ctx.connected("frames")) return;
    const std::int64_t width = ctx.input_info("frames").channels;
    if (P_ > 0 && width > 0 && width != P_)
        throw Error(detail::concat("frames are ", width, " units wide, the logits ", P_),
                    "prime from the frames the model was trained on");
    for (const auto& split : ctx.splits())
        if (ctx.has_input("frames", split))
            splits_[split] = std::any_cast<const std::shared_ptr<const FrameSplit>&>(ctx.input_any("frames", split));
    check_prime(ctx);
}

// A prime the graph names: read now (a piece of the data only when the run read the data).
void FrameSampler::check_prime(const PrepareContext& ctx) {
    base_dir_ = ctx.base_dir();
    std::string split;
    std::int64_t index = 0;
    const bool of_data = split_index(prime_from_, split, index);
    if (prime_from_.empty() || prime_from_ == "none" || P_ <= 0 || (of_data && splits_.empty())) return;
    (void)prime_rows(prime_from_, base_dir_, prime_frames_, P_);
}


std::vector<float> FrameSampler::prime_rows(const std::string& from, const std::filesystem::path& base,
                                            std::int64_t frames, std::int64_t P) const {
    std::string split = "test";
    std::int64_t index = 0;
    if (split_index(from, split, index)) {  // the run's data
        if (splits_.empty())
            throw Error("prime_from '" + from + "' names a piece of the run's data, which this run did not read",
                        "rnnflow generate reads it when given --prime-from " + from +
                            " (and the sampler's frames input is connected to note_sets' frames)");
        const auto it = splits_.find(split);
        if (it == splits_.end()) {
            std::string have;
            for (const auto& [name, s] : splits_) have += (have.empty() ? "" : ", ") + name;
            throw Error("prime_from '" + from + "': the run's data has no split '" + split + "'",
                        "give one of: " + have);
        }
        const auto& items = it->second->items;
        if (index >= static_cast<std::int64_t>(items.size()))
            throw Error(detail::concat("prime_from '", from, "': split '", split, "' has ", items.size(),
                                       " pieces (0..", static_cast<std::int64_t>(items.size()) - 1, ")"),
                        "give a piece index within the split");
        RNNFLOW_CHECK(it->second->dim == P, "split '", split, "' has frames of width ", it->second->dim,
                      ", the model's are ", P);
        return first_rows(items[static_cast<std::size_t>(index)], frames, P);
    }
    // A note-set JSON file: FILE, or FILE:SPLIT:INDEX.
    std::string file = from;
    if (const auto c2 = from.rfind(':'); c2 != std::string::npos && c2 > 0) {
        const auto c1 = from.rfind(':', c2 - 1);
        if (c1 != std::string::npos && c1 > 0 && split_index(from.substr(c1 + 1), split, index)) file = from.substr(0, c1);
    }
    const std::string text = read_text_file(base, file, "prime note sets");
    NoteSetRolls rolls = parse_note_sets(text, file, {split}, low_, low_ + P - 1, false);
    const auto& items = rolls.splits.at(0).second.items;
    if (index >= static_cast<std::int64_t>(items.size()))
        throw Error(detail::concat(file, ": split '", split, "' has ", items.size(), " pieces (0..",
                                   static_cast<std::int64_t>(items.size()) - 1, "), not piece ", index),
                    "give FILE:SPLIT:INDEX with a piece index within the split");
    return first_rows(items[static_cast<std::size_t>(index)], frames, P);
}

FrameSampler::Piece FrameSampler::sample(ModelRunner& model, const SampleRequest& req) const {
    const std::int64_t length = req.length > 0 ? req.length : length_;
    const std::int64_t seed = req.seed >= 0 ? req.seed : seed_;
    const double temperature = req.temperature >= 0 ? req.temperature : temperature_;
    const std::string from = req.prime_from.empty() ? prime_from_ : req.prime_from == "none" ? "" : req.prime_from;
    const std::int64_t prime_frames = req.prime_frames >= 0 ? req.prime_frames : prime_frames_;
    RNNFLOW_CHECK(temperature <= 100.0, "temperature must be in [0, 100], got ", temperature);
    if (!req.prime.empty())
        throw Error("this run's sampler generates frames: it primes with a piece, not with text",
                    "give --prime-from SPLIT:INDEX or a note-set JSON file (and --prime-frames K)");
    RNNFLOW_CHECK(prime_frames >= 1, "prime_frames must be at least 1, got ", prime_frames);
    const std::int64_t P = P_;
    RNNFLOW_CHECK(P > 0, "the width of the model's logits is not known; frame_sampler needs it at prepare",
                  "feed logits from a stage that declares its width (linear with out_dim: notes.pitches)");

    Piece piece;
    piece.P = P;
    piece.prime_from = from;
    // The parameter's file is relative to the graph's folder, a request's to the current one.
    if (!from.empty()) piece.roll = prime_rows(from, req.prime_from.empty() ? base_dir_ : std::filesystem::path(),
                                               prime_frames, P);
    piece.primed = static_cast<std::int64_t>(piece.roll.size()) / P;
    piece.frames = piece.primed + length;
    piece.roll.resize(static_cast<std::size_t>(piece.frames * P), 0.f);

    // The zero frame, then the prime: one call from a zero state.
    Tensor input = Tensor::f32({piece.primed + 1, 1, P});  // (K + 1, 1, P)
    std::fill(input.data<float>(), input.data<float>() + (piece.primed + 1) * P, 0.f);
    std::copy(piece.roll.begin(), piece.roll.begin() + static_cast<std::ptrdiff_t>(piece.primed * P),
              input.data<float>() + P);
    auto logits_ok = [&](const Tensor& l, std::int64_t steps) {
        RNNFLOW_CHECK(l.rank() == 3 && l.dim(0) == steps && l.dim(1) == 1 && l.dim(2) == P, "model gave logits ",
                      shape_str(l.shape()), ", the frame sampler expects (", steps, ", 1, ", P, ")");
    };
    const Tensor* logits = &model.run(input, true);
    logits_ok(*logits, piece.primed + 1);
    std::int64_t last = piece.primed;
    std::mt19937_64 rng(static_cast<std::uint64_t>(seed));
    for (std::int64_t t = piece.primed; t < piece.frames; ++t) {
        const float* row = logits->data<float>() + last * P;  // (P) at the last step
        float* frame = piece.roll.data() + t * P;
        for (std::int64_t k = 0; k < P; ++k) {
            const double x = row[k];
            RNNFLOW_CHECK(std::isfinite(x), "model gave a non-finite logit (unit ", k, ", frame ", t, ")");
            const bool on = temperature == 0 ? x > 0 : uniform01(rng) < 1.0 / (1.0 + std::exp(-x / temperature));
            frame[k] = on ? 1.f : 0.f;
        }
        if (t + 1 == piece.frames) break;
        Tensor step = Tensor::f32({1, 1, P});  // (1, 1, P): the frame just drawn
        std::copy(frame, frame + P, step.data<float>());
        logits = &model.run(step, false);
        logits_ok(*logits, 1);
        last = 0;
    }
    return piece;
}

namespace {

std::string note_name(std::int64_t pitch) {
    static const char* names[] = {"C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"};
    return names[pitch % 12] + std::to_string(pitch / 12 - 1);
}

// The sounding pitches' range [lo, hi] of a roll (lo > hi when silent).
std::pair<std::int64_t, std::int64_t> used_units(const FrameSampler::Piece& piece) {
    std::int64_t lo = piece.P, hi = -1;
    for (std::int64_t t = 0; t < piece.frames; ++t)
        for (std::int64_t k = 0; k < piece.P; ++k)
            if (piece.roll[static_cast<std::size_t>(t * piece.P + k)] > 0.5f) {
                lo = std::min(lo, k);
                hi = std::max(hi, k);
            }
    return {lo, hi};
}

// The roll as a heatmap: the sounding range with 2 units either side (the whole roll when
// silent), highest pitch on top; 1 where a sampled note sounds, 0.6 a prime note, 0 silence.
plot::Heatmap roll_heatmap(const FrameSampler::Piece& piece, std::int64_t low) {
    auto [lo, hi] = used_units(piece);
    if (lo > hi) { lo = 0; hi = piece.P - 1; }
    lo = std::max<std::int64_t>(0, lo - 2);
    hi = std::min(piece.P - 1, hi + 2);
    plot::Heatmap map;
    map.title = detail::concat("piano roll: ", piece.frames, " frames (notes yellow)",
                               piece.primed > 0 ? detail::concat(", the first ", piece.primed, " from ", piece.prime_from,
                                                                 " (green)")
                                                : std::string());
    map.colour_bar = false;  // three values, which the title names
    map.x_label = "frame";
    map.y_label = "MIDI note";
    map.rows = hi - lo + 1;
    map.cols = piece.frames;
    for (std::int64_t k = hi; k >= lo; --k) {
        const std::int64_t pitch = low + k;
        map.row_labels.push_back(pitch % 12 == 0 || k == hi || k == lo ? detail::concat(note_name(pitch), " ", pitch)
                                                                        : std::string());
        for (std::int64_t t = 0; t < piece.frames; ++t) {
            const bool on = piece.roll[static_cast<std::size_t>(t * piece.P + k)] > 0.5f;
            map.values.push_back(on ? (t < piece.primed ? 0.6 : 1.0) : 0.0);
        }
    }
    const std::int64_t every = piece.frames <= 40 ? 4 : piece.frames <= 200 ? 8 : 32;
    for (std::int64_t t = 0; t < piece.frames; ++t)
        map.col_labels.push_back(t % every == 0 ? std::to_string(t) : std::string());
    return map;
}

// {"test": [piece]} in note_sets' format: a list of frames, each the sorted MIDI notes sounding.
std::string note_set_json(const FrameSampler::Piece& piece, std::int64_t low) {
    std::ostringstream os;
    os << "{\"test\": [[";
    for (std::int64_t t = 0; t < piece.frames; ++t) {
        os << (t ? ",\n  [" : "\n  [");
        bool first = true;
        for (std::int64_t k = 0; k < piece.P; ++k)
            if (piece.roll[static_cast<std::size_t>(t * piece.P + k)] > 0.5f) {
                os << (first ? "" : ", ") << low + k;
                first = false;
            }
        os << "]";
    }
    os << "\n]]}\n";
    return os.str();
}

}  // namespace

void FrameSampler::write_files(const Piece& piece, const std::filesystem::path& output) const {
    const std::filesystem::path dir = output.has_parent_path() ? output.parent_path() : std::filesystem::path(".");
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
        throw Error("cannot write the generated piece: folder '" + dir.string() + "' does not exist",
                    "create it, or give another output");
    auto with = [&](const char* ext) {
        std::filesystem::path f = output;
        f += ext;
        return f;
    };
    midi::Song song;
    song.ppqn = static_cast<int>(kPpqn);
    song.bpm = tempo_;
    song.notes = midi::notes_from_roll(piece.roll.data(), piece.frames, piece.P, static_cast<int>(low_),
                                       kPpqn / steps_per_beat_, static_cast<int>(velocity_));
    midi::write_smf(with(".mid"), song);
    plot::write_png(roll_heatmap(piece, low_), with(".png"), piece.frames > 120 ? 1800 : 0, 0);
    write_file_atomic(with(".json"), note_set_json(piece, low_));
}

std::string FrameSampler::generate(ModelRunner& model, const SampleRequest& req) {
    const Piece piece = sample(model, req);
    if (!req.output.empty()) write_files(piece, req.output);
    // The summary: frames, notes, how many sound at once, the range.
    const std::int64_t sampled = piece.frames - piece.primed;
    std::int64_t on = 0;
    for (std::int64_t i = piece.primed * piece.P; i < piece.frames * piece.P; ++i)
        on += piece.roll[static_cast<std::size_t>(i)] > 0.5f;
    const auto [lo, hi] = used_units(piece);
    std::ostringstream os;
    os << piece.frames << " frames";
    if (piece.primed > 0) os << " (" << piece.primed << " from " << piece.prime_from << ", " << sampled << " sampled)";
    os << ", " << std::fixed << std::setprecision(2) << static_cast<double>(on) / static_cast<double>(sampled)
       << " notes per sampled frame, ";
    if (lo <= hi) os << "MIDI " << low_ + lo << ".." << low_ + hi;
    else os << "silent";
    if (!req.output.empty()) {
        const std::string o = req.output.string();
        os << "; wrote " << o << ".mid, " << o << ".png, " << o << ".json";
    }
    return os.str();
}

}  // namespace rnnflow::stages
