// shapes: generates the captioning toy task — small RGB images of coloured shapes in the cells of
// a grid, each with every caption a small grammar allows — as the features reader gives real
// data, so that a captioning graph runs without files (date_pairs is the same for translation).
//
//   out features (frames)  FrameSplit per split: the image cut into patches, one entry per
//                          (scene, caption) pair; PortInfo channels = D (below)
//   out captions (text)    TextSplit per split: the caption of each pair
//   out items    (text)    TextSplit per split: the scene of each pair, its 0-based index in the
//                          split ("17"): pairs with the same item are one image's references
//   out layout   (text)    TextSplit per split, per pair: what the captions name and where it is,
//                          "red circle: 0 1 6 7; blue squares: 20 21 26 27" (phrase as the
//                          captions write it, ':' then the patches it covers; ';' between)
//
// Scenes. A grid of grid x grid cells, each cell_px = image_size / grid pixels wide; an object
// sits inside one cell (never two in a cell), so objects never touch. Three kinds, drawn with
// probability 1/4, 1/2, 1/4 (only the first when max_objects = 1):
//   one object    "a red circle"
//   two objects   that differ in colour or shape, with every relation their cells satisfy, in
//                 both orders: "a red circle above a blue square" and "a blue square below a red
//                 circle"; a diagonal pair also gets "left of" / "right of" (4 captions). Above /
//                 below compare cell rows, left of / right of cell columns.
//   a count       k = 2 .. max_objects objects of one colour and shape: "two green triangles"
// Grammar (every caption is one of):
//   caption  = "a" thing | "a" thing relation "a" thing | count things
//   thing    = colour shape          things = colour plural(shape)
//   relation = "above" | "below" | "left of" | "right of"
//   count    = "two" | "three" | ... | "nine"
//   colour   = red | green | blue | yellow | purple      shape = circle | square | triangle |
//              diamond | cross (plural: crosses; the others add s)
// Rendering: background black (0); an object is a solid colour (the RGB values in shapes.cpp
// over 255), centred on pixel (cx, cy) with half-size s: circle dx^2 + dy^2 <= s^2 + s, square
// |dx|, |dy| <= s - 1, diamond |dx| + |dy| <= s, cross arms of half-width s / 3 and half-length
// s, triangle (apex up) 2|dx| <= dy + s for |dy| <= s (dx = x - cx, dy = y - cy). s is uniform
// in [max(2, cell_px / 4), (cell_px - 2) / 2], the centre uniform where the shape stays inside
// its cell (the jitter).
// Patch layout: the image_size x image_size image is cut into G x G patches of patch x patch
// pixels (G = image_size / patch), numbered row-major (patch r * G + c covers rows r * patch ..,
// columns c * patch ..); patch k is frame row k. Inside a row: the patch's pixels row-major, each
// as R, G, B in [0, 1] — value ((y * patch + x) * 3 + channel) for pixel (x, y) of the patch —
// then, with position: onehot, 2G more values: one-hot of the patch's row, one-hot of its
// column (the pixels alone do not say where a patch is, and the relations need it).
// D = patch * patch * 3 (+ 2G). A layout entry lists the patches holding at least one pixel of
// the thing (of all its objects, for a count).
// Splits: sizes count scenes. A scene's canonical key is its objects' (cell, colour, shape),
// sorted (jitter and size left out); test scenes take distinct keys, valid scenes distinct keys
// not in test, train scenes any key not in valid or test (train may repeat a key with other
// jitter). Scenes whose key is taken are drawn again, which makes one-object scenes rarer in
// train than 1/4 (there are only grid^2 * 25 of them); an error says when the key space is too
// small for valid + test.
// Deterministic: the same seed, sizes and geometry give the same data on every machine
// (mt19937_64 with our own integer mapping; pixels from integer tests).
// Restore mode generates nothing. Not supported: prediction runs (their inputs are text lines;
// they stop with an error), overlapping objects, textures, rotations, more than one relation.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class Shapes final : public DataStage {
public:
    static StageSchema schema();
    explicit Shapes(const Params& p);
    void prepare(PrepareContext& ctx) override;

    // Helpers, public for tests.
    struct Object {
        int colour = 0, shape = 0;  // indices into colour_names() / shape_names()
        int row = 0, col = 0;       // grid cell
        int cx = 0, cy = 0, size = 0;  // centre pixel, half-size s
    };
    struct Scene {
        std::vector<Object> objects;  // one; two that differ; or k of one colour and shape
    };
    struct Geometry {
        int image_size = 36, patch = 6, grid = 3, max_objects = 3;
        bool position = true;
        int cell() const { return image_size / grid; }
        int patches() const { return image_size / patch; }  // G, per side
        int dim() const { return patch * patch * 3 + (position ? 2 * patches() : 0); }
    };
    static const std::vector<std::string>& colour_names();
    static const std::vector<std::string>& shape_names();
    static std::string plural(int shape);
    static std::string count_word(int k);  // 2 → "two"
    // Whether pixel (x, y) belongs to object o.
    static bool covers(const Object& o, int x, int y);
    static Scene draw_scene(std::mt19937_64& rng, const Geometry& g);
    static std::vector<std::string> captions(const Scene& s);
    static std::string key(const Scene& s);
    // The image, (image_size, image_size, 3) row-major, values in [0, 1].
    static std::vector<float> render(const Scene& s, const Geometry& g);
    // The frame rows of an image: (G * G, D) as the header says.
    static std::vector<float> patches(const std::vector<float>& image, const Geometry& g);
    static std::string layout(const Scene& s, const Geometry& g);

    struct Split {
        std::vector<Scene> scenes;
    };
    // The scenes of every split, as prepare makes them.
    std::map<std::string, Split> generate() const;

private:
    std::int64_t train_, valid_, test_, seed_;
    Geometry geo_;
};

}  // namespace rnnflow::stages
