// attention_images: where a captioning decoder looks — per generated word, its attention weights
// over the image's patches drawn over the image, and how much of that attention falls on the
// thing the word names (Xu et al. 2015, "Show, Attend and Tell", fig. 3 and §5.4 draw the same
// maps; the measured mass is ours).
//
//   hypothesis (ids)     i32 (Th, N) + lengths: decoded caption ids without <sos>/<eos>;
//                        PortInfo vocab = the caption vocabulary (word tokens)
//   attention  (tensor)  f32 (Th, N, F) + lengths: the decoder's weights a_t over the F patches
//                        at the step that emits word t (attention_decoder.attention)
//   images     (frames)  dataset: the reader's features, one (F, D) entry per pair; F = G * G
//                        patches, row-major, each row the patch's pixels row-major as R, G, B in
//                        [0, 1] (shapes.hpp's patch layout); values after the first
//                        patch * patch * 3 of a row (shapes' one-hot position) are ignored
//   layout     (text)    dataset, optional: per pair, "phrase: p p p; phrase: p p" — a thing as
//                        the captions name it ("red circle", "green triangles") and the patches
//                        it covers (shapes.layout)
//   items      (text)    dataset, optional: the scene (image) of each pair (shapes.items); pairs
//                        of one scene decode the same image, so each scene counts once and gets
//                        one picture. Without it every pair is a scene of its own.
//
// Geometry comes from the parameters (image_size, patch: G = image_size / patch) and is checked
// at prepare against every image's rows (F = G^2) and dim (D >= patch^2 * 3), and per batch
// against the attention's F.
//
// Metrics per evaluation pass, over the scenes decoded (the lowest pair of each), when layout is
// connected:
//   <id>.on_object         mean over events of the attention mass (percent) on the patches of
//                          the thing named. An event: the hypothesis contains a layout phrase
//                          word for word, ending at step t (the shape word: "circle" of "red
//                          circle"); its mass is sum of a_t over the phrase's patches. Phrases the
//                          scene does not hold (a wrong colour, a wrong count) make no event.
//   <id>.on_object_chance  the same mean for uniform attention: |patches| / F (percent), the
//                          baseline to compare against (a thing covers few patches)
//   <id>.on_object_events  the number of events (how much the two means rest on)
// It measures the emitting step only: a decoder may have looked at the object a step earlier
// (at the colour word) and carry it in its state; a low value is then no error of the caption.
//
// write_outputs: for the first `pictures` scenes of the split (in item order),
// <split>.attention_image_<k>.png: the image with its generated caption as title, then one panel
// per step the attention has (each word; "<eos>" for a step past the words): the image with the
// step's weights as a white veil over each patch, opacity 0.75 * a / max_t(a) (relative to the
// step's largest weight, printed under the word). Pictures are drawn with PLplot's pngcairo driver.
// Not supported: prediction runs (nothing to draw onto), images that are not RGB patch grids,
// several attention heads.
#pragma once

#include <map>
#include <memory>
#include <set>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class AttentionImages final : public MetricStage {
public:
    static StageSchema schema();
    explicit AttentionImages(const Params& p);
    void prepare(PrepareContext& ctx) override;
    void begin(const std::string& split) override;
    void accumulate(const Inputs& in, const StepInfo& step) override;
    std::vector<MetricValue> end() override;
    void write_outputs(const OutputContext& ctx) override;

    // One named thing of a layout line: its words and the patches it covers.
    struct Thing {
        std::vector<std::string> words;
        std::vector<std::int64_t> patches;
    };
    // Parses "phrase: p p; phrase: p" (public for tests); throws on a malformed line.
    static std::vector<Thing> parse_layout(const std::string& line, std::int64_t patches);
    // Attention mass on named things: events where `words` contains a thing's words ending at
    // step t, with weights (steps, F) row-major. Returns (sum of masses, sum of chance, events).
    struct Score {
        double mass = 0, chance = 0;
        std::int64_t events = 0;
    };
    static Score score(const std::vector<std::string>& words, const std::vector<float>& weights, std::int64_t F,
                       const std::vector<Thing>& things);

private:
    struct SplitData {
        std::shared_ptr<const FrameSplit> images;
        std::shared_ptr<const TextSplit> layout;
        std::vector<std::int64_t> scene;  // pair → scene ordinal (order of first appearance)
    };
    struct Picture {
        std::vector<std::string> words;  // generated words, then "<eos>"
        std::vector<float> weights;      // (steps, F)
        std::int64_t pair = 0;
    };
    std::int64_t image_size_, patch_, pictures_count_;
    std::shared_ptr<const Vocabulary> vocab_;
    std::map<std::string, SplitData> splits_;
    // The current pass.
    std::string split_;
    const SplitData* cur_ = nullptr;
    std::set<std::int64_t> scored_;            // scenes counted already
    std::map<std::int64_t, Picture> pictures_; // scene ordinal → what to draw
    Score total_;
    bool training_ = false;

    std::int64_t grid() const { return image_size_ / patch_; }
    void check_images(const FrameSplit& f, const std::string& split) const;
    void draw(const Picture& p, const std::vector<float>& rows, const std::string& title,
              const std::filesystem::path& file) const;
};

}  // namespace rnnflow::stages
