// frame_batches: input is the target shifted by one frame (zero before frame 0), windows of
// max_length, predict_first: false, horizon, every window once per pass, deterministic shuffles.
#include <catch2/catch.hpp>

#include <set>

#include "stages/data/frame_batches.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using rnnflow::stages::FrameBatches;
using rnnflow::test::FakePrepare;
using rnnflow::test::params_for;

namespace {
using Set = std::map<std::string, ParamValue>;

// n pieces of P = 2: piece i has 1 + (i * 3) % 5 frames, frame f = (i, f + 1).
FrameSplit pieces(int n) {
    FrameSplit fs;
    fs.dim = 2;
    fs.origin = "m.json";
    for (int i = 0; i < n; ++i) {
        FrameSplit::Item item;
        item.rows = 1 + (i * 3) % 5;
        for (int f = 0; f < item.rows; ++f) item.values.insert(item.values.end(), {float(i), float(f + 1)});
        fs.items.push_back(item);
    }
    return fs;
}

struct Setup {
    StageSchema schema = FrameBatches::schema();
    std::unique_ptr<FrameBatches> stage;
    FakePrepare ctx{schema, 1};
    Setup(const Set& set, int n) {
        stage = std::make_unique<FrameBatches>(params_for(schema, set));
        ctx.info("frames", PortInfo{PortType::frames, 2, -1, nullptr});
        ctx.data("frames", "train", pieces(n));
        ctx.data("frames", "valid", pieces(n));
        stage->prepare(ctx);
    }
    std::vector<Batch> pass(const std::string& split, std::int64_t epoch) {
        std::vector<Batch> out;
        const auto count = stage->begin(split, epoch);
        Batch b;
        while (stage->next(b)) out.push_back(b);
        REQUIRE(static_cast<std::int64_t>(out.size()) == count);
        return out;
    }
};

float at(const Tensor& t, std::int64_t s, std::int64_t n, std::int64_t p) {
    return t.data<float>()[(s * t.dim(1) + n) * t.dim(2) + p];
}

}  // namespace

TEST_CASE("frame_batches: input is the frame before the target, zero before frame 0", "[stage][data][frame_batches]") {
    Setup s({{"batch", std::int64_t(3)}}, 7);
    REQUIRE(s.ctx.out_info("input").channels == 2);
    std::int64_t frames = 0;
    std::set<std::int64_t> seen;
    for (const Batch& b : s.pass("valid", 0)) {
        const Tensor& x = b.outputs[0];  // (T, N, P)
        const Tensor& y = b.outputs[1];
        REQUIRE(x.shape() == y.shape());
        REQUIRE(x.lengths == y.lengths);
        for (std::int64_t n = 0; n < x.dim(1); ++n) {
            const std::int64_t piece = b.item_ids[static_cast<std::size_t>(n)];
            REQUIRE(seen.insert(piece).second);
            REQUIRE(y.length(n) == 1 + (piece * 3) % 5);  // every frame is predicted
            for (std::int64_t t = 0; t < x.dim(0); ++t) {
                const bool valid = t < y.length(n);
                REQUIRE(at(y, t, n, 1) == (valid ? float(t + 1) : 0.f));
                REQUIRE(at(y, t, n, 0) == (valid ? float(piece) : 0.f));
                REQUIRE(at(x, t, n, 1) == (valid ? float(t) : 0.f));  // frame t - 1; zero for t = 0
                REQUIRE(at(x, t, n, 0) == (valid && t > 0 ? float(piece) : 0.f));
            }
        }
        frames += b.items;
    }
    REQUIRE(seen.size() == 7);
    REQUIRE(frames == 1 + 4 + 2 + 5 + 3 + 1 + 4);
}

TEST_CASE("frame_batches: predict_first false and windows of max_length", "[stage][data][frame_batches]") {
    const FrameSplit fs = pieces(7);
    std::int64_t dropped = 0;
    SECTION("predict_first: false predicts frames 1..T-1; one-frame pieces are left out") {
        const auto w = FrameBatches::windows(fs, false, 0, dropped);
        REQUIRE(dropped == 2);  // pieces 0 and 5 have one frame
        REQUIRE(w.size() == 5);
        REQUIRE(w[0].piece == 1);
        REQUIRE(w[0].start == 1);
        REQUIRE(w[0].length == 3);
    }
    SECTION("max_length cuts consecutive windows") {
        const auto w = FrameBatches::windows(fs, true, 2, dropped);
        std::vector<std::int64_t> lengths;
        for (const auto& x : w)
            if (x.piece == 3) lengths.push_back(x.length);  // 5 frames: 2, 2, 1
        REQUIRE(lengths == std::vector<std::int64_t>{2, 2, 1});
        REQUIRE(dropped == 0);
    }
    SECTION("a window's input starts with the real frame before it") {
        Setup s({{"batch", std::int64_t(64)}, {"eval_max_length", std::int64_t(2)}}, 7);
        const auto batches = s.pass("valid", 0);
        REQUIRE(batches.size() == 1);
        const Batch& b = batches[0];
        bool found = false;
        for (std::int64_t n = 0; n < b.outputs[0].dim(1); ++n) {
            const Tensor& y = b.outputs[1];
            if (at(y, 0, n, 0) == 3.f && at(y, 0, n, 1) == 3.f) {  // piece 3, frames 2..3
                REQUIRE(at(b.outputs[0], 0, n, 1) == 2.f);
                found = true;
            }
        }
        REQUIRE(found);
    }
}

TEST_CASE("frame_batches: max_length cuts training pieces, eval_max_length the other splits", "[stage][data][frame_batches]") {
    auto lengths = [](Setup& s, const std::string& split) {
        std::multiset<std::int64_t> out;
        for (const Batch& b : s.pass(split, 0))
            for (std::int64_t n = 0; n < b.outputs[1].dim(1); ++n) out.insert(b.outputs[1].length(n));
        return out;
    };
    const std::multiset<std::int64_t> whole{1, 4, 2, 5, 3, 1, 4}, cut{1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2};
    SECTION("max_length alone: windows in training, whole pieces elsewhere") {
        Setup s({{"batch", std::int64_t(64)}, {"max_length", std::int64_t(2)}}, 7);
        REQUIRE(lengths(s, "train") == cut);
        REQUIRE(lengths(s, "valid") == whole);
    }
    SECTION("eval_max_length alone: whole pieces in training, windows elsewhere") {
        Setup s({{"batch", std::int64_t(64)}, {"eval_max_length", std::int64_t(2)}}, 7);
        REQUIRE(lengths(s, "train") == whole);
        REQUIRE(lengths(s, "valid") == cut);
    }
}

TEST_CASE("frame_batches: shuffles are seeded by epoch and cover every piece once", "[stage][data][frame_batches]") {
    auto order = [](std::int64_t epoch) {
        Setup s({{"batch", std::int64_t(2)}, {"pool", std::int64_t(2)}}, 11);
        std::vector<std::int64_t> ids;
        for (const Batch& b : s.pass("train", epoch)) ids.insert(ids.end(), b.item_ids.begin(), b.item_ids.end());
        return ids;
    };
    const auto a = order(0), b = order(0), c = order(1);
    REQUIRE(a == b);
    REQUIRE(a != c);
    REQUIRE(std::set<std::int64_t>(a.begin(), a.end()).size() == 11);
    REQUIRE(std::set<std::int64_t>(c.begin(), c.end()).size() == 11);
}

TEST_CASE("frame_batches: horizon H reads the frame H steps back; predict_first: false predicts from frame H",
          "[stage][data][frame_batches]") {
    Setup s({{"batch", std::int64_t(8)}, {"horizon", std::int64_t(2)}, {"predict_first", false}}, 7);
    REQUIRE(s.stage->value("dropped") == 6);  // pieces 0, 2, 5 (1, 2, 1 frames) of train and of valid
    std::int64_t columns = 0;
    for (const Batch& b : s.pass("valid", 0)) {
        const Tensor& x = b.outputs[0];  // (T, N, P)
        const Tensor& y = b.outputs[1];
        for (std::int64_t n = 0; n < x.dim(1); ++n, ++columns) {
            // item_ids number windows; the kept pieces are 1, 3, 4, 6 (4, 5, 3, 4 frames).
            const std::vector<std::int64_t> kept{1, 3, 4, 6};
            const std::int64_t piece = kept.at(static_cast<std::size_t>(b.item_ids[static_cast<std::size_t>(n)]));
            REQUIRE(y.length(n) == (piece * 3) % 5 + 1 - 2);  // frames 2..T-1
            for (std::int64_t t = 0; t < y.length(n); ++t) {
                REQUIRE(at(y, t, n, 1) == float(t + 2 + 1));  // frame t + 2
                REQUIRE(at(x, t, n, 1) == float(t + 1));      // frame t: two steps back
            }
        }
    }
    REQUIRE(columns == 7 - 3);
}
