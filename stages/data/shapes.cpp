#include "shapes.hpp"

#include <algorithm>
#include <array>
#include <set>

namespace rnnflow::stages {

StageSchema Shapes::schema() {
    return StageSchema("shapes", "generates images of coloured shapes on a grid with captions from a small grammar",
                       Role::data)
        .output("features", PortType::frames, "the image as patch rows, f32 (G*G, D), one entry per (scene, caption) pair")
        .output("captions", PortType::text, "the caption of each pair (all the grammar allows per scene)")
        .output("items", PortType::text, "the scene of each pair: its 0-based index in the split")
        .output("layout", PortType::text,
                "per pair, what the captions name and the patches it covers: 'red circle: 0 1 6 7; ...'")
        .param_int("train", 4000, Range{1.0, 1e6}, "training scenes")
        .param_int("valid", 300, Range{0.0, 1e5}, "validation scenes (keys distinct from test and train); 0 = no split")
        .param_int("test", 300, Range{0.0, 1e5}, "test scenes (keys distinct from valid and train); 0 = no split")
        .param_int("seed", 1, Range{0.0, 4294967295.0}, "generator seed: same seed, same scenes")
        .param_int("image_size", 36, Range{6.0, 256.0}, "image width and height in pixels")
        .param_int("patch", 6, Range{1.0, 64.0}, "patch width in pixels; must divide image_size")
        .param_int("grid", 3, Range{1.0, 8.0}, "cells per side; image_size / grid must be at least 6")
        .param_int("max_objects", 3, Range{1.0, 9.0}, "most objects in a scene (counts go up to it); at most grid^2")
        .param_choice("position", "onehot", {"onehot", "none"},
                      "onehot: append one-hot patch row and column (2G values) to each patch row")
        .details("Captions: 'a red circle'; 'a red circle above a blue square' with every true relation "
                 "(above, below, left of, right of) in both orders; 'two green triangles'. Colours red, "
                 "green, blue, yellow, purple; shapes circle, square, triangle, diamond, cross. Patches "
                 "row-major, pixels row-major inside a patch, RGB in [0, 1]. Valid and test scenes have "
                 "canonical keys (cells, colours, shapes) distinct from each other and from train's.");
}

Shapes::Shapes(const Params& p)
    : train_(p.get_int("train")), valid_(p.get_int("valid")), test_(p.get_int("test")), seed_(p.get_int("seed")) {
    geo_.image_size = static_cast<int>(p.get_int("image_size"));
    geo_.patch = static_cast<int>(p.get_int("patch"));
    geo_.grid = static_cast<int>(p.get_int("grid"));
    geo_.max_objects = static_cast<int>(p.get_int("max_objects"));
    geo_.position = p.get_string("position") == "onehot";
    if (geo_.image_size % geo_.patch != 0)
        throw Error(detail::concat("patch ", geo_.patch, " does not divide image_size ", geo_.image_size),
                    "choose a patch width that divides the image (e.g. 6 for 36)");
    if (geo_.cell() < 6)
        throw Error(detail::concat("cells of ", geo_.cell(), " pixels (image_size ", geo_.image_size, " / grid ",
                                   geo_.grid, ") are too small to draw a shape"),
                    "give image_size >= 6 * grid");
    if (geo_.max_objects > geo_.grid * geo_.grid)
        throw Error(detail::concat("max_objects ", geo_.max_objects, " is more than the ", geo_.grid * geo_.grid,
                                   " cells of a ", geo_.grid, "x", geo_.grid, " grid"),
                    "lower max_objects or raise grid");
}

namespace {

constexpr std::array<std::array<int, 3>, 5> kRgb{{{230, 40, 40}, {40, 190, 60}, {50, 90, 240}, {240, 220, 40},
                                                  {170, 60, 210}}};
const char* const kCounts[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};

// Uniform in [0, n) from the generator's 64-bit output (bias below 2^-50 for our n).
int draw(std::mt19937_64& rng, int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); }
// Uniform in [lo, hi].
int draw_in(std::mt19937_64& rng, int lo, int hi) { return lo + draw(rng, hi - lo + 1); }

// An object of a colour and shape in a cell, with drawn size and jitter.
Shapes::Object place(std::mt19937_64& rng, const Shapes::Geometry& g, int colour, int shape, int cell) {
    Shapes::Object o;
    o.colour = colour;
    o.shape = shape;
    o.row = cell / g.grid;
    o.col = cell % g.grid;
    const int c = g.cell();
    o.size = draw_in(rng, std::max(2, c / 4), (c - 2) / 2);
    // The centre keeps [centre - s, centre + s] inside the cell.
    o.cx = o.col * c + draw_in(rng, o.size, c - 1 - o.size);
    o.cy = o.row * c + draw_in(rng, o.size, c - 1 - o.size);
    return o;
}

// k distinct cells of the grid, in drawing order (partial Fisher-Yates).
std::vector<int> draw_cells(std::mt19937_64& rng, int cells, int k) {
    std::vector<int> all(static_cast<std::size_t>(cells));
    for (int i = 0; i < cells; ++i) all[static_cast<std::size_t>(i)] = i;
    for (int i = 0; i < k; ++i) std::swap(all[static_cast<std::size_t>(i)], all[static_cast<std::size_t>(draw_in(rng, i, cells - 1))]);
    all.resize(static_cast<std::size_t>(k));
    return all;
}

std::string thing(const Shapes::Object& o) {
    return Shapes::colour_names()[static_cast<std::size_t>(o.colour)] + " " +
           Shapes::shape_names()[static_cast<std::size_t>(o.shape)];
}

}  // namespace

const std::vector<std::string>& Shapes::colour_names() {
    static const std::vector<std::string> names{"red", "green", "blue", "yellow", "purple"};
    return names;
}
const std::vector<std::string>& Shapes::shape_names() {
    static const std::vector<std::string> names{"circle", "square", "triangle", "diamond", "cross"};
    return names;
}
std::string Shapes::plural(int shape) {
    const std::string& s = shape_names()[static_cast<std::size_t>(shape)];
    return s == "cross" ? s + "es" : s + "s";
}
std::string Shapes::count_word(int k) {
    RNNFLOW_ASSERT(k >= 0 && k <= 9);
    return kCounts[k];
}

bool Shapes::covers(const Object& o, int x, int y) {
    const int dx = x - o.cx, dy = y - o.cy, s = o.size, ax = std::abs(dx), ay = std::abs(dy);
    if (ax > s || ay > s) return false;
    switch (o.shape) {
        case 0: return dx * dx + dy * dy <= s * s + s;                       // circle
        case 1: return ax <= s - 1 && ay <= s - 1;                           // square
        case 2: return 2 * ax <= dy + s;                                     // triangle, apex up
        case 3: return ax + ay <= s;                                         // diamond
        default: return (ax <= s / 3) || (ay <= s / 3);                      // cross
    }
}

Shapes::Scene Shapes::draw_scene(std::mt19937_64& rng, const Geometry& g) {
    const int colours = static_cast<int>(colour_names().size()), shapes = static_cast<int>(shape_names().size());
    const int cells = g.grid * g.grid;
    const int r = g.max_objects == 1 ? 0 : draw(rng, 4);
    const int kind = r == 0 ? 0 : r == 1 ? 2 : 1;  // one object 1/4, a pair 1/2, a count 1/4
    Scene s;
    if (kind == 0) {
        const int cell = draw(rng, cells), colour = draw(rng, colours), shape = draw(rng, shapes);
        s.objects.push_back(place(rng, g, colour, shape, cell));
    } else if (kind == 1) {
        const int a = draw(rng, colours * shapes);
        int b = draw(rng, colours * shapes - 1);
        if (b >= a) ++b;  // a different colour or shape
        const auto at = draw_cells(rng, cells, 2);
        s.objects.push_back(place(rng, g, a / shapes, a % shapes, at[0]));
        s.objects.push_back(place(rng, g, b / shapes, b % shapes, at[1]));
    } else {
        const int k = draw_in(rng, 2, g.max_objects), colour = draw(rng, colours), shape = draw(rng, shapes);
        for (int cell : draw_cells(rng, cells, k)) s.objects.push_back(place(rng, g, colour, shape, cell));
    }
    return s;
}

std::vector<std::string> Shapes::captions(const Scene& s) {
    const auto& o = s.objects;
    RNNFLOW_ASSERT(!o.empty());
    if (o.size() == 1) return {"a " + thing(o[0])};
    const bool same = o[0].colour == o[1].colour && o[0].shape == o[1].shape;
    if (same)
        return {count_word(static_cast<int>(o.size())) + " " + colour_names()[static_cast<std::size_t>(o[0].colour)] +
                " " + plural(o[0].shape)};
    std::vector<std::string> out;
    const std::string a = "a " + thing(o[0]), b = "a " + thing(o[1]);
    if (o[0].row != o[1].row) {
        const bool a_up = o[0].row < o[1].row;
        out.push_back(a + (a_up ? " above " : " below ") + b);
        out.push_back(b + (a_up ? " below " : " above ") + a);
    }
    if (o[0].col != o[1].col) {
        const bool a_left = o[0].col < o[1].col;
        out.push_back(a + (a_left ? " left of " : " right of ") + b);
        out.push_back(b + (a_left ? " right of " : " left of ") + a);
    }
    return out;
}

std::string Shapes::key(const Scene& s) {
    std::vector<std::string> parts;
    for (const Object& o : s.objects)
        parts.push_back(detail::concat(o.row, ",", o.col, ",", o.colour, ",", o.shape));
    std::sort(parts.begin(), parts.end());
    std::string k;
    for (const auto& p : parts) k += p + ";";
    return k;
}

std::vector<float> Shapes::render(const Scene& s, const Geometry& g) {
    const int n = g.image_size;
    std::vector<float> img(static_cast<std::size_t>(n) * static_cast<std::size_t>(n) * 3, 0.0f);
    for (const Object& o : s.objects) {
        const auto& rgb = kRgb[static_cast<std::size_t>(o.colour)];
        for (int y = std::max(0, o.cy - o.size); y <= std::min(n - 1, o.cy + o.size); ++y)
            for (int x = std::max(0, o.cx - o.size); x <= std::min(n - 1, o.cx + o.size); ++x) {
                if (!covers(o, x, y)) continue;
                for (int c = 0; c < 3; ++c)
                    img[(static_cast<std::size_t>(y) * static_cast<std::size_t>(n) + static_cast<std::size_t>(x)) * 3 +
                        static_cast<std::size_t>(c)] = static_cast<float>(rgb[static_cast<std::size_t>(c)]) / 255.0f;
            }
    }
    return img;
}

std::vector<float> Shapes::patches(const std::vector<float>& image, const Geometry& g) {
    const int G = g.patches(), P = g.patch, n = g.image_size, D = g.dim();
    RNNFLOW_ASSERT(image.size() == static_cast<std::size_t>(n) * static_cast<std::size_t>(n) * 3);
    std::vector<float> rows(static_cast<std::size_t>(G) * static_cast<std::size_t>(G) * static_cast<std::size_t>(D), 0.0f);
    for (int pr = 0; pr < G; ++pr)
        for (int pc = 0; pc < G; ++pc) {
            float* row = rows.data() + static_cast<std::size_t>(pr * G + pc) * static_cast<std::size_t>(D);
            for (int y = 0; y < P; ++y)
                for (int x = 0; x < P; ++x)
                    for (int c = 0; c < 3; ++c)
                        row[(y * P + x) * 3 + c] =
                            image[(static_cast<std::size_t>(pr * P + y) * static_cast<std::size_t>(n) +
                                   static_cast<std::size_t>(pc * P + x)) * 3 + static_cast<std::size_t>(c)];
            if (g.position) {
                row[P * P * 3 + pr] = 1.0f;
                row[P * P * 3 + G + pc] = 1.0f;
            }
        }
    return rows;
}

std::string Shapes::layout(const Scene& s, const Geometry& g) {
    // Things as the captions name them: each object, or the group of a count.
    const bool count = s.objects.size() >= 2 && s.objects[0].colour == s.objects[1].colour &&
                       s.objects[0].shape == s.objects[1].shape;
    std::vector<std::pair<std::string, std::set<int>>> things;
    for (const Object& o : s.objects) {
        if (!count || things.empty())
            things.emplace_back(count ? colour_names()[static_cast<std::size_t>(o.colour)] + " " + plural(o.shape) : thing(o),
                                std::set<int>{});
        auto& cover = things.back().second;
        for (int y = o.cy - o.size; y <= o.cy + o.size; ++y)
            for (int x = o.cx - o.size; x <= o.cx + o.size; ++x)
                if (covers(o, x, y)) cover.insert((y / g.patch) * g.patches() + x / g.patch);
    }
    std::string out;
    for (const auto& [name, cover] : things) {
        if (!out.empty()) out += "; ";  // piece by piece: GCC 12 warns falsely (-Wrestrict) on "..." + string
        out += name;
        out += ':';
        for (int p : cover) {
            out += ' ';
            out += std::to_string(p);
        }
    }
    return out;
}

std::map<std::string, Shapes::Split> Shapes::generate() const {
    std::mt19937_64 rng(static_cast<std::uint64_t>(seed_));
    std::map<std::string, Split> out;
    std::set<std::string> held;  // keys of valid and test scenes
    auto make = [&](const std::string& split, std::int64_t n, bool distinct) {
        Split& sp = out[split];
        const std::int64_t limit = 200 * n + 10000;
        for (std::int64_t tries = 0; static_cast<std::int64_t>(sp.scenes.size()) < n; ++tries) {
            if (tries >= limit)
                throw Error(detail::concat("found only ", sp.scenes.size(), " of ", n, " ", split, " scenes with keys ",
                                           distinct ? "distinct from each other and " : "", "not held out, after ",
                                           limit, " draws"),
                            "lower valid/test, or raise grid or max_objects for more distinct scenes");
            Scene s = draw_scene(rng, geo_);
            const std::string k = key(s);
            if (held.count(k)) continue;
            if (distinct) held.insert(k);
            sp.scenes.push_back(std::move(s));
        }
    };
    if (test_ > 0) make("test", test_, true);
    if (valid_ > 0) make("valid", valid_, true);
    make("train", train_, false);
    return out;
}

void Shapes::prepare(PrepareContext& ctx) {
    for (const char* port : {"captions", "items", "layout"}) ctx.set_output_info(port, PortInfo{PortType::text, -1, -1, nullptr});
    ctx.set_output_info("features", PortInfo{PortType::frames, geo_.dim(), -1, nullptr});
    if (ctx.infer_lines())
        throw Error("prediction runs are not supported: their inputs are text lines, this reader generates images",
                    "evaluate on the generated test split instead (rnnflow eval RUN --split test)");
    if (ctx.mode() == PrepareMode::restore) return;
    auto splits = generate();
    for (const auto& split : ctx.splits()) {
        auto it = splits.find(split);
        if (it == splits.end()) continue;
        const std::string origin = detail::concat("shapes (seed ", seed_, ", ", split, ")");
        FrameSplit frames;
        frames.dim = geo_.dim();
        frames.origin = origin;
        TextSplit captions{{}, origin}, items{{}, origin}, layouts{{}, origin};
        const std::int64_t rows = static_cast<std::int64_t>(geo_.patches()) * geo_.patches();
        for (std::size_t k = 0; k < it->second.scenes.size(); ++k) {
            const Scene& s = it->second.scenes[k];
            const auto values = patches(render(s, geo_), geo_);
            const std::string where = layout(s, geo_);
            for (auto& c : Shapes::captions(s)) {
                frames.items.push_back({rows, values});
                captions.items.push_back(std::move(c));
                items.items.push_back(std::to_string(k));
                layouts.items.push_back(where);
            }
        }
        ctx.put_output("features", split, std::move(frames));
        ctx.put_output("captions", split, std::move(captions));
        ctx.put_output("items", split, std::move(items));
        ctx.put_output("layout", split, std::move(layouts));
    }
}

}  // namespace rnnflow::stages
