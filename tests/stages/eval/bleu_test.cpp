#include <catch2/catch.hpp>

#include <cmath>

#include "stages/eval/bleu.hpp"

using namespace rnnflow::stages;
using Toks = std::vector<std::string>;

// Scores are checked against values worked out by hand in the comments (to 1e-9 relative).
TEST_CASE("bleu: perfect match is 100", "[eval][bleu]") {
    CHECK(corpus_bleu({"The cat sat on the mat."}, {"The cat sat on the mat."}) == Approx(100.0));
    CHECK(corpus_bleu({"a b c d e", "f g h i"}, {"a b c d e", "f g h i"}) == Approx(100.0));
}

TEST_CASE("bleu: a partial match, by hand", "[eval][bleu]") {
    // hyp: the cat sat on the mat   ref: the cat sat on a mat   (6 tokens each, BP = 1)
    //  1-grams: the(2, clipped to 1) cat sat on mat      -> 5/6
    //  2-grams: the cat, cat sat, sat on | on the, the mat -> 3/5
    //  3-grams: the cat sat, cat sat on | sat on the, on the mat -> 2/4
    //  4-grams: the cat sat on | cat sat on the, sat on the mat -> 1/3
    //  BLEU = 100 * (5/6 * 3/5 * 2/4 * 1/3)^(1/4) = 100 * (1/12)^(1/4) = 53.7284965911771
    BleuStats s;
    s.add_text("the cat sat on the mat", "the cat sat on a mat");
    CHECK(s.correct == std::array<std::int64_t, 4>{5, 3, 2, 1});
    CHECK(s.total == std::array<std::int64_t, 4>{6, 5, 4, 3});
    CHECK(s.brevity_penalty() == 1.0);
    CHECK(s.score() == Approx(53.7284965911771).epsilon(1e-9));
}

TEST_CASE("bleu: brevity penalty", "[eval][bleu]") {
    // hyp: the cat sat on the (5)  ref: the cat sat on the mat (6): every n-gram matches,
    // BP = exp(1 - 6/5) = exp(-0.2), BLEU = 100 * exp(-0.2) = 81.87307530779819
    CHECK(corpus_bleu({"the cat sat on the"}, {"the cat sat on the mat"}) == Approx(81.87307530779819).epsilon(1e-9));
    // A longer hypothesis has no penalty (BP = 1): only precisions drop.
    BleuStats s;
    s.add_text("the cat sat on the mat today", "the cat sat on the mat");
    CHECK(s.brevity_penalty() == 1.0);
    // Corpus level: statistics add up before the score. Segment 1 = the partial case above,
    // segment 2 = the short one: matches 10/11, 7/9, 5/7, 3/5; c = 11, r = 12;
    // BLEU = 100 * exp(1 - 12/11) * (10/11 * 7/9 * 5/7 * 3/5)^(1/4) = 67.74702029865007
    CHECK(corpus_bleu({"the cat sat on the mat", "the cat sat on the"},
                      {"the cat sat on a mat", "the cat sat on the mat"}) == Approx(67.74702029865007).epsilon(1e-9));
    CHECK(corpus_bleu({""}, {"a b c d"}) == 0.0);
}

TEST_CASE("bleu: zero n-gram matches use sacreBLEU's exp smoothing", "[eval][bleu]") {
    // hyp: a b c d  ref: a b c e: 3/4, 2/3, 1/2, and 0/1 4-grams. The first zero order gets
    // 100 / (2 * 1) = 50%: BLEU = 100 * (3/4 * 2/3 * 1/2 * 1/2)^(1/4) = 100 * (1/8)^(1/4)
    CHECK(corpus_bleu({"a b c d"}, {"a b c e"}) == Approx(59.46035575013605).epsilon(1e-9));
    // hyp: a b c d  ref: a b e f: 2/4, 1/3, 0/2 -> 100/(2*2) = 25%, 0/1 -> 100/(4*1) = 25%:
    // BLEU = 100 * (1/2 * 1/3 * 1/4 * 1/4)^(1/4) = 31.94715521231362
    BleuStats s;
    s.add_text("a b c d", "a b e f");
    const auto p = s.precisions();
    CHECK(p[2] == Approx(25.0));
    CHECK(p[3] == Approx(25.0));
    CHECK(s.score() == Approx(31.94715521231362).epsilon(1e-9));
    // Fewer than 4 hypothesis tokens in the whole corpus: no 4-grams at all, BLEU 0 (as sacreBLEU).
    CHECK(corpus_bleu({"a b c"}, {"a b c"}) == 0.0);
    // No match at all: 0, and no smoothed precisions (sacreBLEU 2 stops early, its issue #141).
    CHECK(corpus_bleu({"w x y z"}, {"a b c d"}) == 0.0);
    BleuStats none;
    none.add_text("w x y z", "a b c d");
    CHECK(none.precisions() == std::array<double, 4>{});
}

TEST_CASE("bleu: 13a tokenisation", "[eval][bleu]") {
    CHECK(tokenize_13a("Hello, world!") == Toks{"Hello", ",", "world", "!"});
    // Commas and periods between digits stay; a final period splits.
    CHECK(tokenize_13a("It costs $1,000.50.") == Toks{"It", "costs", "$", "1,000.50", "."});
    CHECK(tokenize_13a("3.5 a.b e.g. 5. .5") == Toks{"3.5", "a", ".", "b", "e", ".", "g", ".", "5", ".", ".", "5"});
    // A dash splits only after a digit; "--" and hyphenated words stay.
    CHECK(tokenize_13a("a -- b well-known 1990-2000") == Toks{"a", "--", "b", "well-known", "1990", "-", "2000"});
    // Double quotes split, apostrophes do not; HTML entities are unescaped first.
    CHECK(tokenize_13a("\"Hi\", she said. Don't.") == Toks{"\"", "Hi", "\"", ",", "she", "said", ".", "Don't", "."});
    CHECK(tokenize_13a("&quot;x&quot; &amp; y &lt;b&gt;") == Toks{"\"", "x", "\"", "&", "y", "<", "b", ">"});
    CHECK(tokenize_13a("(a) [b] {c} x/y a:b;c?") == Toks{"(", "a", ")", "[", "b", "]", "{", "c", "}", "x", "/", "y",
                                                          "a", ":", "b", ";", "c", "?"});
    CHECK(tokenize_13a("<skipped> hy-\nphen\tend  ") == Toks{"hyphen", "end"});
    // Non-ASCII letters are plain characters; Unicode spaces separate (Python's str.split).
    CHECK(tokenize_13a("Grüße,\xC2\xA0Welt.") == Toks{"Grüße", ",", "Welt", "."});
    CHECK(tokenize_13a("").empty());
}

TEST_CASE("bleu: lower-cased BLEU", "[eval][bleu]") {
    CHECK(lowercase_utf8("ÄÖÜ ÀÞ × ß Ŀ Ł ŸABC") == "äöü àþ × ß ŀ ł ÿabc");
    CHECK(corpus_bleu({"THE CAT SAT ON THE MAT"}, {"the cat sat on the mat"}, true) == Approx(100.0));
    BleuStats cased;
    cased.add_text("THE CAT SAT ON THE MAT", "the cat sat on the mat");
    CHECK(cased.correct == std::array<std::int64_t, 4>{0, 0, 0, 0});
}

TEST_CASE("bleu: several references per segment, by hand", "[eval][bleu]") {
    // hyp: the cat is on the mat (6)   refs: the cat sat on the mat (6) | there is a cat on the mat (7)
    //  1-grams: the(2; r1 has 2) cat is(r2) on mat              -> 6/6
    //  2-grams: the cat(r1), on the, the mat | cat is, is on   -> 3/5
    //  3-grams: on the mat | the cat is, cat is on, is on the   -> 1/4
    //  4-grams: none of 3 -> smoothed 100 / (2 * 3)
    //  closest reference length 6 (= |hyp|): BP = 1
    //  BLEU = 100 * (1 * 3/5 * 1/4 * 1/6)^(1/4) = 100 * 0.025^(1/4)
    BleuStats s;
    s.add_text_multi("the cat is on the mat", std::vector<std::string>{"the cat sat on the mat", "there is a cat on the mat"});
    CHECK(s.correct == std::array<std::int64_t, 4>{6, 3, 1, 0});
    CHECK(s.total == std::array<std::int64_t, 4>{6, 5, 4, 3});
    CHECK(s.ref_len == 6);
    CHECK(s.score() == Approx(100.0 * std::pow(0.025, 0.25)).epsilon(1e-12));
    // Clipping takes the largest count in ONE reference, not the sum over references:
    // hyp "the the the" against "the cat" | "the dog": 'the' counts min(3, max(1, 1)) = 1.
    BleuStats clip;
    clip.add_text_multi("the the the", std::vector<std::string>{"the cat", "the dog"});
    CHECK(clip.correct[0] == 1);
    // ... and "the the" in one reference allows 2.
    BleuStats clip2;
    clip2.add_text_multi("the the the", std::vector<std::string>{"the cat", "the the dog"});
    CHECK(clip2.correct[0] == 2);
}

TEST_CASE("bleu: the closest reference length, ties to the shorter", "[eval][bleu]") {
    // Segment 1: |hyp| 5, references 4 and 6 tokens: both 1 away, the shorter (4) counts.
    // Segment 2: |hyp| 3, references 6 and 8: 6. c = 8, r = 10; every n-gram matches:
    // BLEU = 100 * exp(1 - 10/8) = 100 * exp(-0.25) = 77.8800783071...
    BleuStats s;
    s.add_text_multi("one two three four five", std::vector<std::string>{"one two three four", "one two three four five six"});
    CHECK(s.ref_len == 4);
    s.add_text_multi("six seven eight", std::vector<std::string>{"six seven eight nine ten eleven",
                                                                 "six seven eight nine ten eleven twelve thirteen"});
    CHECK(s.ref_len == 10);
    CHECK(s.brevity_penalty() == Approx(std::exp(-0.25)).epsilon(1e-12));
    CHECK(s.score() == Approx(100.0 * std::exp(-0.25)).epsilon(1e-12));
    // An exact-length reference wins over a shorter one; an empty reference has length 0.
    BleuStats e;
    e.add_text_multi("a b", std::vector<std::string>{"", "a b", "a"});
    CHECK(e.ref_len == 2);
    BleuStats z;
    z.add_text_multi("", std::vector<std::string>{"a b c", ""});
    CHECK(z.ref_len == 0);
}

TEST_CASE("bleu: one reference in a list is the single-reference result, bit for bit", "[eval][bleu]") {
    const std::vector<std::string> hyps{"the cat sat on the mat", "the cat sat on the", "a b c d", "Grüße, Welt."};
    const std::vector<std::string> refs{"the cat sat on a mat", "the cat sat on the mat", "a b e f", "grüße welt !"};
    std::vector<std::vector<std::string>> lists;
    for (const auto& r : refs) lists.push_back({r});
    for (bool lc : {false, true}) CHECK(corpus_bleu_multi(hyps, lists, lc) == corpus_bleu(hyps, refs, lc));
    CHECK_THROWS_WITH(corpus_bleu_multi(hyps, {{"x"}}), "corpus_bleu_multi: 4 hypotheses but 1 reference lists");
    BleuStats s;
    CHECK_THROWS_WITH(s.add_text_multi("a", std::vector<std::string>{}), "BLEU: a segment without a reference");
}

// Expected numbers from sacreBLEU 2.6.0 itself (pip install sacrebleu in a venv, Python 3.11):
//   import sacrebleu
//   sacrebleu.corpus_bleu(hyps, ref_streams).score                  # cased
//   sacrebleu.corpus_bleu(hyps, ref_streams, lowercase=True).score  # -lc
// printed with repr(); ref_streams are the reference lists below transposed, a missing
// reference as None. Our numbers agree to the last bit (the same integer statistics and the
// same floating-point steps); the tolerance only allows for another libm's exp/log.
TEST_CASE("bleu: multi-reference corpora agree with sacreBLEU", "[eval][bleu]") {
    constexpr double libm_tolerance = 1e-13;
    struct Case {
        const char* name;
        std::vector<std::string> hyps;
        std::vector<std::vector<std::string>> refs;
        double bleu, bleu_lc;
    };
    const std::vector<Case> cases{
        {"two references, no 4-gram match", {"the cat is on the mat"},
         {{"the cat sat on the mat", "there is a cat on the mat"}}, 39.76353643835254, 39.76353643835254},
        {"3- and 4-grams without a match (exp smoothing)", {"a b c d e f"}, {{"a b x d e y", "z b c q e f"}},
         30.213753973567677, 30.213753973567677},
        {"reference lengths: a tie and a short hypothesis", {"one two three four five", "six seven eight"},
         {{"one two three four", "one two three four five six"},
          {"six seven eight nine ten eleven", "six seven eight nine ten eleven twelve thirteen"}},
         77.88007830714052, 77.88007830714052},
        {"unicode, case, punctuation, an entity, a no-break space",
         {"Die Straße ist naß, sagte Jürgen.", "ÜBER 1,000 Grüße\u00a0aus Łódź!"},
         {{"Die Straße war nass, sagte Jürgen.", "Jürgen sagte: die Straße ist naß."},
          {"über 1,000 grüße aus łódź !", "Über 1.000 Grüße aus Łódź&amp;Köln!"}},
         41.94435452325489, 82.28020420406905},
        {"3, 1 and 3 references per segment", {"a man rides a horse .", "two dogs play in the snow", "a child"},
         {{"a man is riding a horse .", "a man rides a brown horse"},
          {"two dogs are playing in snow"},
          {"a small child smiles", "a child is sitting", "the child"}},
         42.96943523820147, 42.96943523820147},
        {"no match at all", {"w x y z"}, {{"a b c d", "e f g h"}}, 0.0, 0.0},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        CHECK(corpus_bleu_multi(c.hyps, c.refs, false) == Approx(c.bleu).epsilon(libm_tolerance).margin(1e-12));
        CHECK(corpus_bleu_multi(c.hyps, c.refs, true) == Approx(c.bleu_lc).epsilon(libm_tolerance).margin(1e-12));
    }
}
