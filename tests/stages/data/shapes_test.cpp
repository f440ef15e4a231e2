#include <catch2/catch.hpp>

#include <set>
#include <sstream>

#include "stages/data/shapes.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using rnnflow::stages::Shapes;
using rnnflow::test::FakePrepare;
using rnnflow::test::params_for;

namespace {
using Set = std::map<std::string, ParamValue>;

std::string message_of(const Set& set) {
    try {
        Shapes s(params_for(Shapes::schema(), set));
    } catch (const Error& e) {
        return e.message();
    }
    return "(no error)";
}

int index_of(const std::vector<std::string>& names, const std::string& w) {
    const auto it = std::find(names.begin(), names.end(), w);
    return it == names.end() ? -1 : static_cast<int>(it - names.begin());
}

// The test's own reading of the grammar (shapes.hpp): a caption back to what it claims. Returns
// "" when the caption is true of the scene, else what is wrong.
std::string check_caption(const std::string& caption, const Shapes::Scene& s) {
    std::istringstream in(caption);
    std::vector<std::string> w;
    for (std::string t; in >> t;) w.push_back(t);
    const auto& colours = Shapes::colour_names();
    const auto& shapes = Shapes::shape_names();
    // "a colour shape" at position i: the index of the object it names, -1 if none.
    auto object_at = [&](std::size_t i) {
        if (i + 2 >= w.size() || w[i] != "a") return -1;
        const int c = index_of(colours, w[i + 1]), k = index_of(shapes, w[i + 2]);
        for (std::size_t o = 0; o < s.objects.size(); ++o)
            if (s.objects[o].colour == c && s.objects[o].shape == k) return static_cast<int>(o);
        return -1;
    };
    if (w.size() == 3 && w[0] == "a") {
        if (s.objects.size() != 1) return "one thing named, scene has more";
        return object_at(0) == 0 ? "" : "wrong object";
    }
    if (w.size() == 7 || w.size() == 8) {  // a X rel a Y, rel of one or two words
        if (s.objects.size() != 2) return "relation, scene has not two objects";
        const std::size_t j = w.size() - 3;
        const std::string rel = w.size() == 7 ? w[3] : w[3] + " " + w[4];
        const int a = object_at(0), b = object_at(j);
        if (a < 0 || b < 0 || a == b) return "objects not in scene";
        const auto& A = s.objects[static_cast<std::size_t>(a)];
        const auto& B = s.objects[static_cast<std::size_t>(b)];
        if (rel == "above") return A.row < B.row ? "" : "not above";
        if (rel == "below") return A.row > B.row ? "" : "not below";
        if (rel == "left of") return A.col < B.col ? "" : "not left of";
        if (rel == "right of") return A.col > B.col ? "" : "not right of";
        return "unknown relation '" + rel + "'";
    }
    if (w.size() == 3) {  // count colour plural
        int k = -1;
        for (int n = 2; n <= 9; ++n)
            if (w[0] == Shapes::count_word(n)) k = n;
        if (k < 0) return "not a count";
        const int c = index_of(colours, w[1]);
        int shape = -1;
        for (int i = 0; i < static_cast<int>(shapes.size()); ++i)
            if (Shapes::plural(i) == w[2]) shape = i;
        if (static_cast<int>(s.objects.size()) != k) return "wrong count";
        for (const auto& o : s.objects)
            if (o.colour != c || o.shape != shape) return "count of other objects";
        return "";
    }
    return "unparsed";
}
}  // namespace

TEST_CASE("shapes: schema defaults and bad values", "[stage][data]") {
    const Params p = default_params(Shapes::schema());
    CHECK(p.get_int("image_size") == 36);
    CHECK(p.get_int("patch") == 6);
    CHECK(p.get_int("grid") == 3);
    CHECK(p.get_string("position") == "onehot");
    CHECK(message_of({{"patch", std::int64_t{5}}}) == "patch 5 does not divide image_size 36");
    CHECK(message_of({{"grid", std::int64_t{8}}}) ==
          "cells of 4 pixels (image_size 36 / grid 8) are too small to draw a shape");
    CHECK(message_of({{"grid", std::int64_t{1}}, {"max_objects", std::int64_t{2}}}) ==
          "max_objects 2 is more than the 1 cells of a 1x1 grid");
    CHECK(message_of({}) == "(no error)");
}

TEST_CASE("shapes: patch layout against a hand-made pixel", "[stage][data]") {
    Shapes::Geometry g;  // 36 pixels, patch 6: G = 6, D = 108 + 12
    REQUIRE(g.dim() == 120);
    std::vector<float> image(36 * 36 * 3, 0.0f);
    // Pixel (x, y) = (7, 13): patch row 13 / 6 = 2, column 7 / 6 = 1, so patch 2 * 6 + 1 = 13;
    // inside it (x, y) = (1, 1): values (1 * 6 + 1) * 3 = 21, 22, 23.
    image[(13 * 36 + 7) * 3 + 0] = 0.25f;
    image[(13 * 36 + 7) * 3 + 1] = 0.5f;
    image[(13 * 36 + 7) * 3 + 2] = 0.75f;
    const auto rows = Shapes::patches(image, g);
    REQUIRE(rows.size() == 36u * 120u);
    const float* r13 = rows.data() + 13 * 120;
    CHECK(r13[21] == 0.25f);
    CHECK(r13[22] == 0.5f);
    CHECK(r13[23] == 0.75f);
    CHECK(r13[108 + 2] == 1.0f);      // one-hot patch row 2
    CHECK(r13[108 + 6 + 1] == 1.0f);  // one-hot patch column 1
    float pixel_sum = 0, position_sum = 0;
    for (std::size_t k = 0; k < rows.size(); ++k) (k % 120 < 108 ? pixel_sum : position_sum) += rows[k];
    CHECK(pixel_sum == 1.5f);          // the one pixel, nowhere else
    CHECK(position_sum == 2.0f * 36);  // two ones per patch
    g.position = false;
    CHECK(g.dim() == 108);
    CHECK(Shapes::patches(image, g).size() == 36u * 108u);
}

TEST_CASE("shapes: shapes drawn as the header says", "[stage][data]") {
    Shapes::Object o;
    o.cx = 10;
    o.cy = 10;
    o.size = 3;
    o.shape = 1;  // square: |dx|, |dy| <= s - 1
    CHECK(Shapes::covers(o, 12, 12));
    CHECK_FALSE(Shapes::covers(o, 13, 10));
    o.shape = 3;  // diamond: |dx| + |dy| <= s
    CHECK(Shapes::covers(o, 11, 12));
    CHECK_FALSE(Shapes::covers(o, 12, 12));
    o.shape = 2;  // triangle, apex up: 2|dx| <= dy + s
    CHECK(Shapes::covers(o, 10, 7));
    CHECK_FALSE(Shapes::covers(o, 11, 7));
    CHECK(Shapes::covers(o, 13, 13));
    o.shape = 4;  // cross: arms of half-width 1
    CHECK(Shapes::covers(o, 13, 11));
    CHECK_FALSE(Shapes::covers(o, 12, 12));
    o.shape = 0;  // circle: dx^2 + dy^2 <= 12
    CHECK(Shapes::covers(o, 12, 12));
    CHECK_FALSE(Shapes::covers(o, 13, 12));
    CHECK(Shapes::plural(4) == "crosses");
    CHECK(Shapes::plural(0) == "circles");
}

TEST_CASE("shapes: same seed, same data; splits disjoint by scene key", "[stage][data]") {
    const Shapes a(params_for(Shapes::schema(), {{"train", std::int64_t{500}}, {"valid", std::int64_t{100}},
                                                 {"test", std::int64_t{100}}, {"seed", std::int64_t{9}}}));
    const auto x = a.generate(), y = a.generate();
    REQUIRE(x.at("train").scenes.size() == 500);
    REQUIRE(x.at("valid").scenes.size() == 100);
    REQUIRE(x.at("test").scenes.size() == 100);
    for (const char* split : {"train", "valid", "test"})
        for (std::size_t k = 0; k < x.at(split).scenes.size(); ++k) {
            const auto& p = x.at(split).scenes[k];
            const auto& q = y.at(split).scenes[k];
            REQUIRE(Shapes::key(p) == Shapes::key(q));
            REQUIRE(Shapes::render(p, {}) == Shapes::render(q, {}));
        }
    std::set<std::string> held, train;
    for (const char* split : {"valid", "test"})
        for (const auto& s : x.at(split).scenes) CHECK(held.insert(Shapes::key(s)).second);  // distinct
    for (const auto& s : x.at("train").scenes) {
        CHECK(held.count(Shapes::key(s)) == 0);
        train.insert(Shapes::key(s));
    }
    CHECK(train.size() > 400);  // few repeats
    const Shapes b(params_for(Shapes::schema(), {{"train", std::int64_t{500}}, {"seed", std::int64_t{10}}}));
    CHECK(Shapes::key(b.generate().at("train").scenes[0]) + Shapes::key(b.generate().at("train").scenes[1]) !=
          Shapes::key(x.at("train").scenes[0]) + Shapes::key(x.at("train").scenes[1]));
}

TEST_CASE("shapes: every caption parses back to its scene, and every true one is there", "[stage][data]") {
    const Shapes gen(params_for(Shapes::schema(), {{"train", std::int64_t{2000}}, {"max_objects", std::int64_t{4}}}));
    std::map<int, int> kinds;  // objects in scene → scenes
    const auto data = gen.generate();  // kept: a loop over a temporary's member would dangle
    for (const auto& s : data.at("train").scenes) {
        ++kinds[static_cast<int>(s.objects.size())];
        const auto caps = Shapes::captions(s);
        for (const auto& c : caps) {
            INFO(c << " / " << Shapes::key(s));
            CHECK(check_caption(c, s) == "");
        }
        const bool pair = s.objects.size() == 2 && Shapes::captions(s)[0].substr(0, 2) == "a ";
        if (pair) {  // both orders of each relation the cells satisfy
            const auto& A = s.objects[0];
            const auto& B = s.objects[1];
            CHECK(caps.size() == 2u * ((A.row != B.row) + (A.col != B.col)));
        } else {
            CHECK(caps.size() == 1);
        }
        for (const auto& o : s.objects) {  // inside its cell
            CHECK(o.cx - o.size >= o.col * 12);
            CHECK(o.cx + o.size < (o.col + 1) * 12);
            CHECK(o.cy - o.size >= o.row * 12);
            CHECK(o.cy + o.size < (o.row + 1) * 12);
        }
    }
    CHECK(kinds.size() == 4);  // 1, 2, 3 and 4 objects all occur
}

TEST_CASE("shapes: layout lists the patches the rendered objects cover", "[stage][data]") {
    Shapes::Scene s;
    // A red circle around (8, 8), s = 3 (dx^2 + dy^2 <= 12): it reaches (8, 5), (5, 8) and (11, 11)
    // — patches 1, 6, 7 — but no pixel with x, y <= 5 (dx, dy = -3: 18 > 12), so not patch 0.
    Shapes::Object a;
    a.cx = a.cy = 8;
    a.size = 3;
    Shapes::Object b;  // a blue square in cell (2, 2): pixels 30..34, inside patch (5, 5) = 35
    b.colour = 2;
    b.shape = 1;
    b.row = b.col = 2;
    b.cx = b.cy = 32;
    b.size = 3;
    s.objects = {a, b};
    CHECK(Shapes::layout(s, {}) == "red circle: 1 6 7; blue square: 35");
    const auto caps = Shapes::captions(s);
    CHECK(caps == std::vector<std::string>{"a red circle above a blue square", "a blue square below a red circle",
                                           "a red circle left of a blue square", "a blue square right of a red circle"});
    s.objects[1].colour = 0;  // now two red circles; the second reaches patches 29, 34, 35
    s.objects[1].shape = 0;
    CHECK(Shapes::captions(s) == std::vector<std::string>{"two red circles"});
    CHECK(Shapes::layout(s, {}) == "red circles: 1 6 7 29 34 35");
}

TEST_CASE("shapes: prepare puts out aligned pairs; restore generates nothing", "[stage][data]") {
    const StageSchema schema = Shapes::schema();
    Shapes s(params_for(schema, {{"train", std::int64_t{40}}, {"valid", std::int64_t{10}}, {"test", std::int64_t{10}}}));
    FakePrepare ctx(schema);
    s.prepare(ctx);
    CHECK(ctx.out_info("features").channels == 120);
    const auto& f = ctx.out<FrameSplit>("features", "valid");
    const auto& c = ctx.out<TextSplit>("captions", "valid");
    const auto& i = ctx.out<TextSplit>("items", "valid");
    const auto& l = ctx.out<TextSplit>("layout", "valid");
    REQUIRE(f.items.size() == c.items.size());
    REQUIRE(i.items.size() == c.items.size());
    REQUIRE(l.items.size() == c.items.size());
    CHECK(f.items.size() >= 10);
    CHECK(f.dim == 120);
    CHECK(f.items[0].rows == 36);
    CHECK(i.items.front() == "0");
    CHECK(i.items.back() == "9");
    for (std::size_t k = 1; k < i.items.size(); ++k)
        if (i.items[k] == i.items[k - 1]) CHECK(f.items[k].values == f.items[k - 1].values);  // one image per scene

    FakePrepare restore(schema, 1, PrepareMode::restore);
    s.prepare(restore);
    CHECK_FALSE(restore.has_out("features", "train"));
    CHECK(restore.out_info("features").channels == 120);
}
