#include "attention_images.hpp"

#include <plplot.h>  // PLplot's C API; see draw() for why not plot.hpp's charts

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include "pipeline/core/plot.hpp"

namespace rnnflow::stages {

StageSchema AttentionImages::schema() {
    return StageSchema("attention_images",
                       "attention over image patches per generated word: pictures, and the mass on the named object",
                       Role::metric)
        .input("hypothesis", PortType::ids, "i32 (Th, N) decoded caption ids without <sos>/<eos>")
        .input("attention", PortType::tensor, "f32 (Th, N, F) the decoder's attention over the F patches")
        .input("images", PortType::frames, "the images as patch rows (shapes.features): (F, D) per pair")
        .optional_input("layout", PortType::text,
                        "per pair 'phrase: patches; ...' (shapes.layout), for <id>.on_object")
        .optional_input("items", PortType::text, "the scene of each pair (shapes.items): one count, one picture per scene")
        .param_int("image_size", 36, Range{1.0, 4096.0}, "image width and height in pixels, as the reader's")
        .param_int("patch", 6, Range{1.0, 512.0}, "patch width in pixels, as the reader's; F = (image_size / patch)^2")
        .param_int("pictures", 4, Range{0.0, 1000.0}, "draw the first this many scenes of each evaluated split")
        .details("<id>.on_object: mean attention mass (percent) on the patches of the thing a word names, at the "
                 "step that emits its last word (the shape), over the named things present in the scene; "
                 "<id>.on_object_chance: the same for uniform attention; <id>.on_object_events: how many. "
                 "Writes <split>.attention_image_<k>.png: the image, its caption, and per word the weights "
                 "as a white veil over the patches.");
}

AttentionImages::AttentionImages(const Params& p)
    : image_size_(p.get_int("image_size")), patch_(p.get_int("patch")), pictures_count_(p.get_int("pictures")) {
    if (image_size_ % patch_ != 0)
        throw Error(detail::concat("patch ", patch_, " does not divide image_size ", image_size_),
                    "give the reader's image_size and patch");
}

void AttentionImages::check_images(const FrameSplit& f, const std::string& split) const {
    const std::int64_t G = grid(), pixels = patch_ * patch_ * 3;
    const auto hint = "set image_size and patch as the reader's (shapes: image_size, patch)";
    if (f.dim < pixels)
        throw Error(detail::concat("images (", f.origin, ", ", split, ") have rows of D = ", f.dim, ", but patch ",
                                   patch_, " needs ", pixels, " values (patch^2 * RGB) a row"),
                    hint);
    for (std::size_t k = 0; k < f.items.size(); ++k)
        if (f.items[k].rows != G * G)
            throw Error(detail::concat("images (", f.origin, ", ", split, "): item ", k, " has ", f.items[k].rows,
                                       " patch rows, but image_size ", image_size_, " / patch ", patch_, " gives ",
                                       G, " x ", G, " = ", G * G),
                        hint);
}

void AttentionImages::prepare(PrepareContext& ctx) {
    vocab_ = ctx.input_info("hypothesis").vocab;
    if (!vocab_)
        throw Error("input 'hypothesis' carries no vocabulary", "connect the decoder's hypothesis");
    splits_.clear();
    for (const auto& split : ctx.splits()) {
        if (!ctx.has_input("images", split)) continue;
        SplitData d;
        d.images = std::any_cast<const std::shared_ptr<const FrameSplit>&>(ctx.input_any("images", split));
        check_images(*d.images, split);
        const auto n = d.images->items.size();
        if (ctx.connected("layout") && ctx.has_input("layout", split)) {
            d.layout = std::any_cast<const std::shared_ptr<const TextSplit>&>(ctx.input_any("layout", split));
            if (d.layout->items.size() != n)
                throw Error(detail::concat("layout (", d.layout->origin, ") has ", d.layout->items.size(),
                                           " entries for the ", n, " images of split ", split),
                            "connect layout and images to the same reader");
        }
        std::map<std::string, std::int64_t> ordinal;
        const TextSplit* items = nullptr;
        if (ctx.connected("items") && ctx.has_input("items", split))
            items = &ctx.input<TextSplit>("items", split);
        if (items && items->items.size() != n)
            throw Error(detail::concat("items (", items->origin, ") has ", items->items.size(), " entries for the ", n,
                                       " images of split ", split),
                        "connect items and images to the same reader");
        for (std::size_t k = 0; k < n; ++k)
            d.scene.push_back(items ? ordinal.emplace(items->items[k], static_cast<std::int64_t>(ordinal.size())).first->second
                                    : static_cast<std::int64_t>(k));
        splits_[split] = std::move(d);
    }
}

void AttentionImages::begin(const std::string& split) {
    split_ = split;
    auto it = splits_.find(split);
    cur_ = it == splits_.end() ? nullptr : &it->second;
    scored_.clear();
    pictures_.clear();
    total_ = Score{};
    training_ = false;
}

std::vector<AttentionImages::Thing> AttentionImages::parse_layout(const std::string& line, std::int64_t patches) {
    std::vector<Thing> out;
    std::istringstream entries(line);
    std::string entry;
    while (std::getline(entries, entry, ';')) {
        const auto colon = entry.find(':');
        RNNFLOW_CHECK(colon != std::string::npos, "attention_images: layout entry '", entry,
                      "' has no ':' (expected 'phrase: p p p')");
        Thing t;
        std::istringstream words(entry.substr(0, colon)), nums(entry.substr(colon + 1));
        for (std::string w; words >> w;) t.words.push_back(w);
        for (std::string v; nums >> v;) {
            RNNFLOW_CHECK(!v.empty() && v.size() < 10 && v.find_first_not_of("0123456789") == std::string::npos,
                          "attention_images: layout entry '", entry, "': '", v, "' is not a patch number");
            const std::int64_t p = std::stoll(v);
            RNNFLOW_CHECK(p < patches, "attention_images: layout entry '", entry, "': patch ", p, " of ", patches);
            t.patches.push_back(p);
        }
        RNNFLOW_CHECK(!t.words.empty(), "attention_images: layout entry '", entry, "' names nothing");
        out.push_back(std::move(t));
    }
    return out;
}

AttentionImages::Score AttentionImages::score(const std::vector<std::string>& words, const std::vector<float>& weights,
                                              std::int64_t F, const std::vector<Thing>& things) {
    Score s;
    const auto steps = static_cast<std::int64_t>(weights.size()) / F;
    for (const Thing& t : things) {
        const auto m = static_cast<std::int64_t>(t.words.size());
        for (std::int64_t end = m - 1; end < static_cast<std::int64_t>(words.size()) && end < steps; ++end) {
            if (!std::equal(t.words.begin(), t.words.end(), words.begin() + (end - m + 1))) continue;
            double mass = 0;
            for (std::int64_t p : t.patches) mass += weights[static_cast<std::size_t>(end * F + p)];
            s.mass += mass;
            s.chance += static_cast<double>(t.patches.size()) / static_cast<double>(F);
            ++s.events;
        }
    }
    return s;
}

void AttentionImages::accumulate(const Inputs& in, const StepInfo& step) {
    if (step.phase == Phase::train) {
        training_ = true;
        return;
    }
    RNNFLOW_CHECK(cur_ != nullptr, "attention_images: no images for split '", step.split,
                  "'; connect images to the reader of the batches");
    const Tensor& hyp = in.at("hypothesis");  // (Th, N)
    const Tensor& att = in.at("attention");   // (Th, N, F)
    RNNFLOW_CHECK(hyp.rank() == 2, "attention_images: 'hypothesis' must be (T, N), got ", shape_str(hyp.shape()));
    const std::int64_t N = hyp.dim(1), F = grid() * grid();
    RNNFLOW_CHECK(static_cast<std::int64_t>(step.item_ids.size()) == N, "attention_images: the batch has ", N,
                  " columns but ", step.item_ids.size(), " item ids");
    if (att.rank() != 3 || att.dim(0) == 0) return;  // attention: none gives no weights
    RNNFLOW_CHECK(att.dim(1) == N && att.dim(2) == F, "attention_images: attention of shape ", shape_str(att.shape()),
                  " for ", N, " columns of ", F, " patches (image_size ", image_size_, " / patch ", patch_, ")");
    const std::int32_t eos = vocab_->special("<eos>");
    const std::int32_t* h = hyp.data<std::int32_t>();
    const float* a = att.data<float>();
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t pair = step.item_ids[static_cast<std::size_t>(n)];
        RNNFLOW_CHECK(pair >= 0 && pair < static_cast<std::int64_t>(cur_->scene.size()), "attention_images: item ",
                      pair, " is beyond the ", cur_->scene.size(), " images of split '", step.split, "'");
        const std::int64_t scene = cur_->scene[static_cast<std::size_t>(pair)];
        const std::int64_t th = std::min(att.length(n), att.dim(0));
        if (th == 0 || scored_.count(scene)) continue;  // lengths 0: no attention (attention: none)
        scored_.insert(scene);
        Picture p;
        p.pair = pair;
        for (std::int64_t t = 0; t < std::min(hyp.length(n), hyp.dim(0)) && h[t * N + n] != eos; ++t)
            p.words.push_back(vocab_->token(h[t * N + n]));
        p.words.resize(static_cast<std::size_t>(th), "<eos>");
        for (std::int64_t t = 0; t < th; ++t) p.weights.insert(p.weights.end(), a + (t * N + n) * F, a + (t * N + n + 1) * F);
        if (cur_->layout) {
            const Score s = score(p.words, p.weights, F, parse_layout(cur_->layout->items[static_cast<std::size_t>(pair)], F));
            total_.mass += s.mass;
            total_.chance += s.chance;
            total_.events += s.events;
        }
        if (scene < pictures_count_) pictures_[scene] = std::move(p);
    }
}

std::vector<MetricValue> AttentionImages::end() {
    if (split_ == "infer" || training_ || !cur_ || !cur_->layout || scored_.empty()) return {};
    const double e = static_cast<double>(std::max<std::int64_t>(1, total_.events));
    return {{"on_object", 100.0 * total_.mass / e, true},
            {"on_object_chance", 100.0 * total_.chance / e, false},
            {"on_object_events", static_cast<double>(total_.events), true}};
}

void AttentionImages::write_outputs(const OutputContext& ctx) {
    if (!cur_) return;
    for (const auto& [scene, p] : pictures_) {
        std::string caption;
        for (const auto& w : p.words)
            if (w != "<eos>") caption += (caption.empty() ? "" : " ") + w;
        const std::string title = detail::concat(ctx.split, " scene ", scene, ": ", caption);
        draw(p, cur_->images->items[static_cast<std::size_t>(p.pair)].values, title,
             ctx.dir / detail::concat(ctx.split, ".attention_image_", scene, ".png"));
    }
}

namespace {

// plot.hpp draws charts and heatmaps; this picture needs RGB pixels and translucent overlays,
// which it has no form for, so it calls PLplot itself, under plot.hpp's PLplot lock (a sweep's
// trials and the run's plots may draw at the same time).
std::string& plplot_errors() {
    static std::string s;
    return s;
}
void on_abort(const char* message) { plplot_errors() += message ? message : "PLplot error"; }
// A colour value in [0, 1] as 0..255 (out-of-range values clamped, non-finite ones black).
PLINT to_byte(float v) { return std::isfinite(v) ? static_cast<PLINT>(std::clamp(v, 0.0f, 1.0f) * 255.0f + 0.5f) : 0; }

}  // namespace

void AttentionImages::draw(const Picture& p, const std::vector<float>& rows, const std::string& title,
                           const std::filesystem::path& file) const {
    const std::int64_t G = grid(), P = patch_, D = static_cast<std::int64_t>(rows.size()) / (G * G), F = G * G;
    const auto steps = static_cast<std::int64_t>(p.words.size());
    const std::int64_t panels = steps + 1, cols = std::min<std::int64_t>(panels, 5), lines = (panels + cols - 1) / cols;
    const int cell = 170, head = 40, label = 34;
    const int width = static_cast<int>(cols) * cell, height = head + static_cast<int>(lines) * (cell + label);
    static std::atomic<unsigned> counter{0};
    const auto tmp = file.parent_path() / detail::concat(".", file.filename().string(), ".tmp-", ::getpid(), "-", counter++);
    std::lock_guard lock(plot::plplot_mutex());
    plplot_errors().clear();
    plsabort(on_abort);
    PLINT stream = -1;
    plmkstrm(&stream);
    RNNFLOW_CHECK(stream >= 0, "cannot write '", file.string(), "': no free PLplot stream");
    plsdev("pngcairo");
    plsfnam(tmp.c_str());
    plspage(0, 0, width, height, 0, 0);
    plscmap0n(16);
    plscol0(0, 255, 255, 255);
    plscol0(1, 0, 0, 0);
    plinit();
    pladv(0);
    plschr(0, 0.9);
    plvpor(0, 1, 0, 1);
    plwind(0, 1, 0, 1);
    plcol0(1);
    plmtex("t", -1.5, 0.5, 0.5, title.c_str());
    for (std::int64_t k = 0; k < panels; ++k) {
        const double x0 = static_cast<double>((k % cols) * cell + 8) / width, x1 = x0 + (cell - 16.0) / width;
        const double ytop = 1.0 - static_cast<double>(head + (k / cols) * (cell + label)) / height;
        const double y1 = ytop, y0 = ytop - (cell - 16.0) / height;
        plvpor(x0, x1, y0, y1);
        plwind(0, static_cast<PLFLT>(image_size_), 0, static_cast<PLFLT>(image_size_));
        for (std::int64_t y = 0; y < image_size_; ++y)  // pixels, image row 0 on top
            for (std::int64_t x = 0; x < image_size_; ++x) {
                const float* v = rows.data() + ((y / P) * G + x / P) * D + ((y % P) * P + x % P) * 3;
                plscol0a(2, to_byte(v[0]), to_byte(v[1]), to_byte(v[2]), 1.0);
                plcol0(2);
                PLFLT xs[] = {PLFLT(x), PLFLT(x + 1), PLFLT(x + 1), PLFLT(x)};
                PLFLT ys[] = {PLFLT(image_size_ - y - 1), PLFLT(image_size_ - y - 1), PLFLT(image_size_ - y), PLFLT(image_size_ - y)};
                plfill(4, xs, ys);
            }
        std::string text = "image";
        if (k > 0) {
            const float* w = p.weights.data() + (k - 1) * F;
            const float top = *std::max_element(w, w + F);
            for (std::int64_t q = 0; q < F && top > 0; ++q) {
                plscol0a(3, 255, 255, 255, 0.75 * w[q] / top);
                plcol0(3);
                const PLFLT px = static_cast<PLFLT>((q % G) * P), py = static_cast<PLFLT>(image_size_ - (q / G + 1) * P);
                PLFLT xs[] = {px, px + P, px + P, px};
                PLFLT ys[] = {py, py, py + P, py + P};
                plfill(4, xs, ys);
            }
            char buf[64];
            std::snprintf(buf, sizeof buf, " (max %.2f)", static_cast<double>(top));
            text = p.words[static_cast<std::size_t>(k - 1)] + buf;
        }
        plcol0(1);
        plbox("bc", 0, 0, "bc", 0, 0);
        plmtex("b", 1.6, 0.5, 0.5, text.c_str());
    }
    plend1();
    const std::string errors = plplot_errors();
    std::ifstream in(tmp, std::ios::binary);
    char magic[4] = {};
    in.read(magic, sizeof magic);
    std::error_code ec;
    if (!errors.empty() || !in || std::memcmp(magic, "\x89PNG", 4) != 0) {
        std::filesystem::remove(tmp, ec);
        throw Error(detail::concat("cannot write '", file.string(), "': ", errors.empty() ? "PLplot wrote no PNG" : errors),
                    "is plplot-driver-cairo installed and the disk not full?");
    }
    std::filesystem::rename(tmp, file, ec);
    RNNFLOW_CHECK(!ec, "cannot write '", file.string(), "': ", ec.message());
}

}  // namespace rnnflow::stages
