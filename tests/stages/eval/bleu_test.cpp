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
    // No match at all: every order smoothed, still > 0 when every order has n-grams.
    CHECK(corpus_bleu({"w x y z"}, {"a b c d"}) > 0.0);
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
