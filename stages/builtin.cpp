// The one list of built-in stages, registered exactly as a plug-in registers its own.
#define RNNFLOW_BUILTIN
#include "pipeline/core/registry.hpp"
#include "stages/data/caption_batches.hpp"
#include "stages/data/classify_batches.hpp"
#include "stages/data/conll_columns.hpp"
#include "stages/data/conllu.hpp"
#include "stages/data/date_pairs.hpp"
#include "stages/data/features.hpp"
#include "stages/data/label_lines.hpp"
#include "stages/data/frame_batches.hpp"
#include "stages/data/lm_batches.hpp"
#include "stages/data/note_sets.hpp"
#include "stages/data/parallel_text.hpp"
#include "stages/data/seq2seq_batches.hpp"
#include "stages/data/series.hpp"
#include "stages/data/shapes.hpp"
#include "stages/data/subword.hpp"
#include "stages/data/text_file.hpp"
#include "stages/data/tokenize.hpp"
#include "stages/data/tsv_text.hpp"
#include "stages/data/vocabulary.hpp"
#include "stages/eval/attention_images.hpp"
#include "stages/eval/classification_metrics.hpp"
#include "stages/eval/entity_metrics.hpp"
#include "stages/eval/frame_metrics.hpp"
#include "stages/eval/frame_sampler.hpp"
#include "stages/eval/perplexity.hpp"
#include "stages/eval/sampler.hpp"
#include "stages/eval/series_metrics.hpp"
#include "stages/eval/series_rollout.hpp"
#include "stages/eval/translation_metrics.hpp"
#include "stages/model/activation.hpp"
#include "stages/model/attention_decoder.hpp"
#include "stages/model/char_word_encoder.hpp"
#include "stages/model/concat.hpp"
#include "stages/model/dropout.hpp"
#include "stages/model/embedding.hpp"
#include "stages/model/gru.hpp"
#include "stages/model/linear.hpp"
#include "stages/model/lstm.hpp"
#include "stages/model/pool.hpp"
#include "stages/model/rnn.hpp"
#include "stages/model/word_dropout.hpp"
#include "stages/train/adagrad.hpp"
#include "stages/train/adam.hpp"
#include "stages/train/binary_cross_entropy.hpp"
#include "stages/train/crf.hpp"
#include "stages/train/regression_loss.hpp"
#include "stages/train/rmsprop.hpp"
#include "stages/train/cross_entropy.hpp"
#include "stages/train/sgd.hpp"

namespace rnnflow::stages {

static void register_stages(Registry& r) {
    r.add<TextFile>();
    r.add<TsvText>();
    r.add<Subword>();
    r.add<ConllColumns>();
    r.add<Conllu>();
    r.add<LabelLines>();
    r.add<Tokenize>();
    r.add<Vocabulary>();
    r.add<LmBatches>();
    r.add<ParallelText>();
    r.add<DatePairs>();
    r.add<Seq2seqBatches>();
    r.add<Features>();        // captioning: dense inputs per item (issue 23)
    r.add<CaptionBatches>();
    r.add<Shapes>();          // captioning toy task: generated images and captions (issue 23)
    r.add<ClassifyBatches>();
    r.add<NoteSets>();        // polyphonic music: piano rolls and next-frame batches (issue 24)
    r.add<FrameBatches>();
    r.add<Series>();          // numeric series: CSV or Mackey-Glass, normalised spans (issue 24)
    r.add<Sampler>();
    r.add<FrameSampler>();    // music: frames sampled into MIDI and a piano roll (issue 24)
    r.add<Embedding>();
    r.add<Rnn>();
    r.add<Lstm>();
    r.add<Gru>();
    r.add<Linear>();
    r.add<Activation>();  // MLP heads between linears (issues 23, 24)
    r.add<AttentionDecoder>();
    // Many-to-one heads, character word encoder (issue 5, model side).
    r.add<Pool>();
    r.add<Concat>();
    r.add<Dropout>();
    r.add<CharWordEncoder>();
    r.add<WordDropout>();
    r.add<CrossEntropy>();
    r.add<Crf>();
    r.add<BinaryCrossEntropy>();  // multi-label frames (issue 24)
    r.add<RegressionLoss>();      // real-valued frames: mse / mae (issue 24)
    r.add<Sgd>();
    r.add<Adam>();
    r.add<Rmsprop>();  // issue 25
    r.add<Adagrad>();  // issue 25
    r.add<Perplexity>();
    r.add<TranslationMetrics>();
    r.add<AttentionImages>();  // attention over image patches, shapes task (issue 23)
    r.add<ClassificationMetrics>();
    r.add<EntityMetrics>();
    r.add<FrameMetrics>();    // music: NLL per time step, frame accuracy, repeat baseline (issue 24)
    r.add<SeriesMetrics>();   // series: RMSE / MAE in original units, repeat baseline, forecasts (issue 24)
    r.add<SeriesRollout>();   // series: autoregressive multi-step rollouts (rnnflow generate, issue 24)
}

}  // namespace rnnflow::stages

RNNFLOW_PLUGIN(builtin, "built-in stages", RNNFLOW_VERSION, rnnflow::stages::register_stages)
