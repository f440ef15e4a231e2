#include "tag_scheme.hpp"

namespace rnnflow {

std::optional<TagScheme> tag_scheme_from_name(const std::string& name) {
    if (name == "iob1") return TagScheme::iob1;
    if (name == "iob2" || name == "bio") return TagScheme::iob2;
    if (name == "iobes") return TagScheme::iobes;
    return std::nullopt;
}

std::string tag_scheme_name(TagScheme s) {
    switch (s) {
        case TagScheme::iob1: return "iob1";
        case TagScheme::iob2: return "iob2";
        case TagScheme::iobes: return "iobes";
    }
    return "iob2";
}

TagParts parse_tag(const std::string& tag) {
    const std::size_t dash = tag.find('-');
    if (dash == std::string::npos) return {tag, ""};
    return {tag.substr(0, dash), tag.substr(dash + 1)};
}

bool chunk_ends(const TagParts& prev, const TagParts& tag) {
    const std::string &p = prev.prefix, &t = tag.prefix;
    if (p == "E" || p == "S") return true;  // E-E, E-I, E-O are conlleval.pl's; the rest the port's
    if ((p == "B" || p == "I") && (t == "B" || t == "O" || t == "S")) return true;
    return p != "O" && prev.type != tag.type;
}

bool chunk_starts(const TagParts& prev, const TagParts& tag) {
    const std::string &p = prev.prefix, &t = tag.prefix;
    if (t == "S") return true;
    if (t == "B") return true;  // pl: after B, I, O; the port: after E, S too
    if ((t == "I" || t == "E") && (p == "O" || p == "E" || p == "S")) return true;
    return t != "O" && prev.type != tag.type;
}

std::vector<Chunk> extract_chunks(const std::vector<std::string>& tags) {
    std::vector<Chunk> out;
    TagParts prev{"O", ""};
    std::int64_t begin = -1;  // start of the open chunk, -1 when none
    const auto n = static_cast<std::int64_t>(tags.size());
    for (std::int64_t i = 0; i <= n; ++i) {
        const TagParts tag = i < n ? parse_tag(tags[static_cast<std::size_t>(i)]) : TagParts{"O", ""};
        if (begin >= 0 && chunk_ends(prev, tag)) {
            out.push_back({begin, i, prev.type});
            begin = -1;
        }
        if (chunk_starts(prev, tag)) begin = i;
        prev = tag;
    }
    return out;
}

std::vector<std::string> encode_chunks(const std::vector<Chunk>& chunks, std::int64_t n, TagScheme scheme) {
    std::vector<std::string> tags(static_cast<std::size_t>(n), "O");
    std::int64_t prev_end = -1;
    std::string prev_type;
    for (const Chunk& c : chunks) {
        for (std::int64_t i = c.begin; i < c.end; ++i) {
            std::string prefix = "I";
            const bool first = i == c.begin, last = i + 1 == c.end;
            if (scheme == TagScheme::iob1) {
                // B only where the chunk touches a previous one of the same type.
                if (first && prev_end == c.begin && prev_type == c.type) prefix = "B";
            } else if (scheme == TagScheme::iob2) {
                if (first) prefix = "B";
            } else {
                prefix = first && last ? "S" : first ? "B" : last ? "E" : "I";
            }
            tags[static_cast<std::size_t>(i)] = prefix + "-" + c.type;
        }
        prev_end = c.end;
        prev_type = c.type;
    }
    return tags;
}

std::vector<std::string> convert_tags(const std::vector<std::string>& tags, TagScheme scheme) {
    return encode_chunks(extract_chunks(tags), static_cast<std::int64_t>(tags.size()), scheme);
}

std::optional<std::string> malformed_tag(const std::vector<std::string>& tags) {
    for (const auto& t : tags) {
        if (t == "O") continue;
        const TagParts p = parse_tag(t);
        if (p.type.empty() || (p.prefix != "B" && p.prefix != "I" && p.prefix != "E" && p.prefix != "S"))
            return t;
    }
    return std::nullopt;
}

}  // namespace rnnflow
