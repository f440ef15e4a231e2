// pipeline/core/tag_scheme: parsing, conlleval's chunk rules (worked out by hand below from
// conlleval.pl's startOfChunk / endOfChunk) and conversion between IOB1, IOB2 and IOBES.
#include <catch2/catch.hpp>

#include "pipeline/core/tag_scheme.hpp"

using namespace rnnflow;
using Tags = std::vector<std::string>;
using Chunks = std::vector<Chunk>;

TEST_CASE("tag_scheme: names and tag parts", "[tag_scheme]") {
    CHECK(tag_scheme_from_name("bio") == TagScheme::iob2);
    CHECK(tag_scheme_from_name("iobes") == TagScheme::iobes);
    CHECK_FALSE(tag_scheme_from_name("ioe1").has_value());
    CHECK(tag_scheme_name(TagScheme::iob1) == "iob1");
    CHECK(parse_tag("O").prefix == "O");
    CHECK(parse_tag("O").type.empty());
    CHECK(parse_tag("I-MISC-X").prefix == "I");
    CHECK(parse_tag("I-MISC-X").type == "MISC-X");  // the type is everything after the first '-'
    CHECK(malformed_tag({"O", "B-PER", "S-LOC"}) == std::nullopt);
    CHECK(malformed_tag({"O", "NNP"}) == std::optional<std::string>("NNP"));
    CHECK(malformed_tag({"X-PER"}) == std::optional<std::string>("X-PER"));
    CHECK(malformed_tag({"B-"}) == std::optional<std::string>("B-"));
}

TEST_CASE("tag_scheme: IOB1 chunks by conlleval's rules", "[tag_scheme]") {
    // I- after O starts a chunk; I- after I- of the same type continues it.
    CHECK(extract_chunks({"I-PER", "I-PER", "O", "I-LOC"}) == Chunks{{0, 2, "PER"}, {3, 4, "LOC"}});
    // I- after a chunk of another type starts a new chunk (types differ: end and start).
    CHECK(extract_chunks({"I-ORG", "I-LOC"}) == Chunks{{0, 1, "ORG"}, {1, 2, "LOC"}});
    // B- between two chunks of the same type splits them: prev I, tag B ends; tag B starts.
    CHECK(extract_chunks({"I-PER", "B-PER", "I-PER"}) == Chunks{{0, 1, "PER"}, {1, 3, "PER"}});
    // A chunk runs to the end of the sentence ("O" after the last token ends it).
    CHECK(extract_chunks({"O", "I-MISC"}) == Chunks{{1, 2, "MISC"}});
    CHECK(extract_chunks({"O", "O"}).empty());
    CHECK(extract_chunks({}).empty());
}

TEST_CASE("tag_scheme: IOB2 and invalid sequences as conlleval reads them", "[tag_scheme]") {
    CHECK(extract_chunks({"B-PER", "I-PER", "B-PER", "O", "B-LOC"}) ==
          Chunks{{0, 2, "PER"}, {2, 3, "PER"}, {4, 5, "LOC"}});
    // Invalid in IOB2: "O I-PER" still starts a chunk (prev O, tag I).
    CHECK(extract_chunks({"O", "I-PER", "I-PER"}) == Chunks{{1, 3, "PER"}});
    // "B-PER I-LOC": the types differ, so PER ends and LOC starts.
    CHECK(extract_chunks({"B-PER", "I-LOC"}) == Chunks{{0, 1, "PER"}, {1, 2, "LOC"}});
}

TEST_CASE("tag_scheme: IOBES chunks", "[tag_scheme]") {
    // S is a chunk of one; two S of one type are two chunks; E closes; B after E starts anew.
    CHECK(extract_chunks({"S-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "B-LOC", "E-LOC"}) ==
          Chunks{{0, 1, "PER"}, {1, 2, "PER"}, {2, 5, "LOC"}, {5, 7, "LOC"}});
    // E after O starts a chunk of one (conlleval.pl: prev O, tag E).
    CHECK(extract_chunks({"O", "E-ORG"}) == Chunks{{1, 2, "ORG"}});
}

TEST_CASE("tag_scheme: the boundary rules one pair at a time", "[tag_scheme]") {
    auto ends = [](const char* p, const char* t) { return chunk_ends(parse_tag(p), parse_tag(t)); };
    auto starts = [](const char* p, const char* t) { return chunk_starts(parse_tag(p), parse_tag(t)); };
    CHECK(ends("B-PER", "B-PER"));
    CHECK(ends("I-PER", "O"));
    CHECK_FALSE(ends("I-PER", "I-PER"));
    CHECK_FALSE(ends("B-PER", "I-PER"));
    CHECK(ends("I-PER", "I-LOC"));
    CHECK(ends("E-PER", "I-PER"));
    CHECK_FALSE(ends("O", "O"));
    CHECK(starts("O", "I-PER"));
    CHECK(starts("I-PER", "B-PER"));
    CHECK_FALSE(starts("I-PER", "I-PER"));
    CHECK_FALSE(starts("B-PER", "E-PER"));
    CHECK(starts("E-PER", "E-PER"));
    CHECK_FALSE(starts("I-PER", "O"));
}

TEST_CASE("tag_scheme: conversion keeps the chunks", "[tag_scheme]") {
    const Tags iob1{"I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG", "O", "I-MISC"};
    const Tags iob2{"B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG", "O", "B-MISC"};
    const Tags iobes{"B-PER", "E-PER", "S-PER", "O", "S-LOC", "B-ORG", "E-ORG", "O", "S-MISC"};
    CHECK(convert_tags(iob1, TagScheme::iob2) == iob2);
    CHECK(convert_tags(iob1, TagScheme::iobes) == iobes);
    CHECK(convert_tags(iob2, TagScheme::iob1) == iob1);
    CHECK(convert_tags(iobes, TagScheme::iob1) == iob1);
    CHECK(convert_tags(iobes, TagScheme::iob2) == iob2);
    CHECK(convert_tags(iob2, TagScheme::iob2) == iob2);
    // IOB1: B- only when the previous chunk has the same type and ends right before; "I-ORG" after
    // "I-LOC" above stays I-. A longer IOBES chunk keeps its inside tokens as I-.
    CHECK(convert_tags({"B-LOC", "I-LOC", "I-LOC"}, TagScheme::iobes) == Tags{"B-LOC", "I-LOC", "E-LOC"});
    // Invalid input comes out valid with the chunks conlleval sees.
    CHECK(convert_tags({"O", "I-PER", "E-PER"}, TagScheme::iob2) == Tags{"O", "B-PER", "I-PER"});
}
