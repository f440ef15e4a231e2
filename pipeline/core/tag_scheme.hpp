// Tag schemes for chunks (named entities, phrases) tagged one label per token, and chunk
// extraction by the rules of conlleval (the CoNLL-2000 shared task's evaluation script).
//
// A tag is "O" (outside) or PREFIX-TYPE ("B-PER", "I-LOC"): the prefix before the first '-',
// the type after it (which may hold more '-'). Schemes:
//   iob1   I-X inside a chunk of type X; B-X only where a chunk of type X starts right after
//          another chunk of type X (CoNLL-2003's files): "I-PER I-PER B-PER O I-LOC".
//   iob2   B-X begins every chunk, I-X continues it (also called BIO): "B-PER I-PER B-PER O B-LOC".
//   iobes  S-X a one-token chunk, B-X / I-X / E-X begin, continue and end a longer one:
//          "B-PER E-PER S-PER O S-LOC".
//
// Chunks are found by conlleval's startOfChunk / endOfChunk rules applied to each pair of
// neighbouring tags (prev, tag), with "O" before the first and after the last token. conlleval.pl:
// a chunk ends before `tag` when prev is B or I and tag is B or O, or prev is E and tag is E, I
// or O, or prev is not O and the types differ; a chunk starts at `tag` when prev is B, I or O and
// tag is B, or prev is O or E and tag is I or E, or tag is not O and the types differ.
// conlleval.pl has no rules for S; the rules of its Python port (sighsmile/conlleval) are used,
// which add: a chunk ends after every E or S and before S, and starts at every B or S and at E or
// I after S. The additions all involve an E or S prefix, so on IOB1 and IOB2 tags the chunks are
// exactly conlleval.pl's, for any tag sequence, valid or not ("O I-PER" starts a chunk,
// "B-PER I-LOC" is two), and IOBES tags are scored as the chunks they mean.
// Converting a sentence to a scheme = its chunks by these rules, written in that scheme, so
// conversion keeps the chunks; invalid input comes out valid (as conlleval reads it).
// Not supported: conlleval's raw mode (-r, tags without prefixes), the "[" / "]" bracket tags and
// "." as an outside tag; IOE1 / IOE2.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rnnflow {

enum class TagScheme { iob1, iob2, iobes };

// "iob1", "iob2" (also "bio"), "iobes"; nullopt for other names.
std::optional<TagScheme> tag_scheme_from_name(const std::string& name);
std::string tag_scheme_name(TagScheme s);

struct TagParts {
    std::string prefix;  // "O", "B", "I", "E", "S" or whatever precedes the first '-'
    std::string type;    // "" for "O" and tags without '-'
};
// Splits at the first '-': "B-PER" → {B, PER}; "O" → {O, ""}; "I-MISC-X" → {I, MISC-X}.
TagParts parse_tag(const std::string& tag);

// A chunk covers tokens [begin, end) and has a type.
struct Chunk {
    std::int64_t begin = 0, end = 0;
    std::string type;
    bool operator==(const Chunk&) const = default;
    auto operator<=>(const Chunk&) const = default;
};

// conlleval's rules for neighbouring tags (see above); prev is "O" before the first token, tag is
// "O" after the last.
bool chunk_ends(const TagParts& prev, const TagParts& tag);
bool chunk_starts(const TagParts& prev, const TagParts& tag);

// The chunks of one sentence's tags, in order.
std::vector<Chunk> extract_chunks(const std::vector<std::string>& tags);

// `chunks` (non-overlapping, in order, within [0, n)) as n tags of `scheme`.
std::vector<std::string> encode_chunks(const std::vector<Chunk>& chunks, std::int64_t n, TagScheme scheme);

// One sentence's tags in `scheme`: encode_chunks(extract_chunks(tags), tags.size(), scheme).
std::vector<std::string> convert_tags(const std::vector<std::string>& tags, TagScheme scheme);

// Tags that are not "O" and have no type or a prefix other than B, I, E, S: the first such
// tag's text, for readers that reject them; nullopt when all are well formed.
std::optional<std::string> malformed_tag(const std::vector<std::string>& tags);

}  // namespace rnnflow
