#include "note_sets.hpp"

#include <algorithm>
#include <iostream>

#include "pipeline/core/text.hpp"

namespace rnnflow::stages {

StageSchema NoteSets::schema() {
    return StageSchema("note_sets", "reads polyphonic music (JSON note sets per time step) into piano rolls",
                       Role::data)
        .output("frames", PortType::frames, "f32 (T, P) piano roll per piece: 1 where a note sounds, else 0")
        .required_string("file", "the JSON file {\"train\": [piece, ...], ...}, relative to the graph file's folder")
        .param_list("splits", {"train", "valid", "test"}, OneOf{"train", "valid", "test"},
                    "the keys of the file to read, each into the split of that name")
        .param_int("low", 21, Range{0, 127}, "the lowest MIDI note of the roll (21 = A0, the piano's lowest key)")
        .param_int("high", 108, Range{0, 127}, "the highest MIDI note of the roll (108 = C8); P = high - low + 1")
        .param_choice("on_error", "error", {"error", "skip"},
                      "a note outside [low, high] or an empty piece: error stops with file:line:column; "
                      "skip drops it and warns with a count")
        .value("pitches", "P = high - low + 1, the width of a roll")
        .value("low", "the MIDI note of unit 0 (the low parameter), for a frame sampler's low: notes.low")
        .value("skipped_notes", "notes outside [low, high] dropped (on_error: skip)")
        .value("empty_pieces", "pieces without time steps dropped (on_error: skip)")
        .details("The format of Boulanger-Lewandowski et al. 2012's JSB Chorales, Nottingham, MuseData and "
                 "Piano-midi.de files: a JSON object of splits, a split a list of pieces, a piece a list "
                 "of time steps, a step a list of MIDI note numbers ([] = rest). Strict JSON; malformed "
                 "input is reported as file:line:column, a bad note or empty piece also as "
                 "split[piece][step] (0-based). Notes must be integers; durations and velocities are "
                 "not represented.");
}

NoteSets::NoteSets(const Params& p)
    : file_(p.get_string("file")), splits_(p.get_list("splits")), low_(p.get_int("low")), high_(p.get_int("high")),
      skip_(p.get_string("on_error") == "skip") {
    if (low_ > high_)
        throw Error(detail::concat("low (", low_, ") is above high (", high_, ")"),
                    "the roll covers MIDI notes low..high; 21..108 are the 88 piano keys");
    if (splits_.empty()) throw Error("splits is empty", "name the keys to read, e.g. [train, valid, test]");
}

std::int64_t NoteSets::value(const std::string& name) const {
    if (name == "pitches") return high_ - low_ + 1;
    if (name == "low") return low_;
    if (name == "skipped_notes") return skipped_notes_;
    if (name == "empty_pieces") return empty_pieces_;
    return Stage::value(name);
}

void NoteSets::prepare(PrepareContext& ctx) {
    ctx.set_output_info("frames", PortInfo{PortType::frames, high_ - low_ + 1, -1, nullptr});
    if (ctx.mode() == PrepareMode::restore) return;
    const std::string text = read_text_file(ctx.base_dir(), file_, "note sets");
    NoteSetRolls rolls = parse_note_sets(text, file_, splits_, low_, high_, skip_);
    skipped_notes_ = rolls.skipped_notes;
    empty_pieces_ = rolls.empty_pieces;
    if (skipped_notes_ + empty_pieces_ > 0)
        std::cerr << "warning: stage '" << ctx.stage_id() << "': skipped " << skipped_notes_ << " note"
                  << (skipped_notes_ == 1 ? "" : "s") << " outside [" << low_ << ", " << high_ << "] and "
                  << empty_pieces_ << " empty piece" << (empty_pieces_ == 1 ? "" : "s") << " of " << file_
                  << "; first: " << rolls.first_skipped << "\n";
    for (auto& [split, frames] : rolls.splits) {
        if (frames.items.empty())
            throw Error(detail::concat(file_, ": split '", split, "' has no piece", empty_pieces_ > 0 ? " left" : ""),
                        "give the split at least one piece, or leave it out of splits");
        ctx.put_output("frames", split, std::move(frames));
    }
}

namespace {

// A strict JSON reader over the whole text, positioned by byte offset; line and column are
// worked out only for a message.
class JsonCursor {
public:
    JsonCursor(const std::string& text, const std::string& file) : s_(text), file_(file) {}

    std::string where(std::size_t at) const {
        const std::size_t line_start = at == 0 ? 0 : s_.rfind('\n', at - 1);
        const auto line = std::count(s_.begin(), s_.begin() + static_cast<std::ptrdiff_t>(at), '\n') + 1;
        const std::size_t col = line_start == std::string::npos || at == 0 ? at + 1 : at - line_start;
        return detail::concat(file_, ":", line, ":", col);
    }
    [[noreturn]] void fail(std::size_t at, const std::string& what, const std::string& hint) const {
        throw Error(where(at) + ": " + what, hint);
    }
    std::string found() const {
        if (i_ >= s_.size()) return "the end of the file";
        const auto c = static_cast<unsigned char>(s_[i_]);
        if (c < 0x20 || c >= 0x7f) return detail::concat("byte 0x", "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]);
        return std::string("'") + s_[i_] + "'";
    }
    void ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
    }
    // The next character after white space, not consumed ('\0' at the end).
    char peek() {
        ws();
        return i_ < s_.size() ? s_[i_] : '\0';
    }
    void expect(char c, const std::string& what) {
        if (peek() != c) fail(i_, detail::concat("expected '", c, "' (", what, "), found ", found()), "the file must be strict JSON");
        ++i_;
    }
    // After an element of a list or object: true when a ',' follows (another element must),
    // false at `close` (consumed).
    bool more(char close, const std::string& what) {
        const char c = peek();
        if (c == close) {
            ++i_;
            return false;
        }
        if (c != ',') fail(i_, detail::concat("expected ',' or '", close, "' after ", what, ", found ", found()),
                           "the file must be strict JSON");
        ++i_;
        if (peek() == close) fail(i_, detail::concat("'", close, "' after a ','"), "JSON allows no trailing comma");
        return true;
    }
    std::size_t pos() const { return i_; }
    bool at_end() {
        ws();
        return i_ >= s_.size();
    }

    std::string string();
    std::int64_t integer(const std::string& what);
    void skip_value(int depth);

private:
    void hex4(unsigned& v);
    const std::string& s_;
    const std::string& file_;
    std::size_t i_ = 0;
};

void JsonCursor::hex4(unsigned& v) {
    v = 0;
    for (int k = 0; k < 4; ++k, ++i_) {
        const char c = i_ < s_.size() ? s_[i_] : '\0';
        const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) fail(i_, "expected 4 hex digits after \\u, found " + found(), "write \\uXXXX");
        v = v * 16 + static_cast<unsigned>(d);
    }
}

// A JSON string, escapes decoded (\uXXXX into UTF-8, surrogate pairs joined).
std::string JsonCursor::string() {
    expect('"', "a string");
    std::string out;
    for (;;) {
        if (i_ >= s_.size()) fail(i_, "unterminated string", "close the string with '\"'");
        const char c = s_[i_];
        if (c == '"') {
            ++i_;
            return out;
        }
        if (static_cast<unsigned char>(c) < 0x20) fail(i_, "control character " + found() + " in a string", "escape it (\\n, \\t, \\u00XX)");
        if (c != '\\') {
            out += c;
            ++i_;
            continue;
        }
        const std::size_t at = i_++;
        const char e = i_ < s_.size() ? s_[i_++] : '\0';
        const std::string simple = "\"\\/bfnrt", value = "\"\\/\b\f\n\r\t";
        if (const auto k = simple.find(e); e != '\0' && k != std::string::npos) {
            out += value[k];
            continue;
        }
        if (e != 'u') fail(at, "unknown escape in a string", "JSON escapes: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX");
        unsigned cp = 0;
        hex4(cp);
        if (cp >= 0xd800 && cp < 0xdc00) {  // a high surrogate: its low half must follow
            unsigned lo = 0;
            if (s_.compare(i_, 2, "\\u") != 0) fail(at, "a lone UTF-16 surrogate in \\u escapes", "pair it with a low surrogate");
            i_ += 2;
            hex4(lo);
            if (lo < 0xdc00 || lo >= 0xe000) fail(at, "a lone UTF-16 surrogate in \\u escapes", "pair it with a low surrogate");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp < 0xe000) {
            fail(at, "a lone UTF-16 surrogate in \\u escapes", "pair it with a high surrogate");
        }
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xc0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xe0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        } else {
            out += static_cast<char>(0xf0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        }
    }
}

// A JSON number that must be an integer: -?(0|[1-9][0-9]*), no fraction or exponent. Values
// beyond ±10^15 saturate there (they are out of any note range anyway).
std::int64_t JsonCursor::integer(const std::string& what) {
    ws();
    const std::size_t start = i_;
    const bool neg = i_ < s_.size() && s_[i_] == '-';
    if (neg) ++i_;
    auto digit = [&] { return i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9'; };
    if (!digit()) {
        i_ = start;
        fail(start, detail::concat("expected ", what, " (an integer), found ", found()), "notes are MIDI note numbers, e.g. 60");
    }
    std::int64_t v = 0;
    const bool leading_zero = s_[i_] == '0';
    while (digit()) v = std::min<std::int64_t>(v * 10 + (s_[i_++] - '0'), 1'000'000'000'000'000);
    if (leading_zero && i_ - start - (neg ? 1 : 0) > 1) fail(start, "a number with a leading zero", "JSON numbers have none");
    if (i_ < s_.size() && (s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E'))
        fail(start, detail::concat(what, " ", s_.substr(start, std::min<std::size_t>(s_.find_first_of(",] \n", start) - start, 20)),
                                   " is not an integer"),
             "notes are MIDI note numbers, e.g. 60");
    return neg ? -v : v;
}

// Any JSON value, checked and passed over (keys the stage does not read).
void JsonCursor::skip_value(int depth) {
    if (depth > 256) fail(i_, "nesting deeper than 256", "note-set files nest 4 deep");
    const char c = peek();
    if (c == '"') {
        (void)string();
    } else if (c == '[' || c == '{') {
        ++i_;
        const char close = c == '[' ? ']' : '}';
        if (peek() == close) {
            ++i_;
            return;
        }
        do {
            if (close == '}') {
                (void)string();
                expect(':', "after an object key");
            }
            skip_value(depth + 1);
        } while (more(close, close == ']' ? "a list element" : "an object member"));
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        const std::size_t start = i_;
        ++i_;
        while (i_ < s_.size() && std::string_view("0123456789.eE+-").find(s_[i_]) != std::string_view::npos) ++i_;
        const std::string num = s_.substr(start, i_ - start);
        std::size_t used = 0;
        try {
            (void)std::stod(num, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != num.size()) fail(start, "malformed number '" + num + "'", "JSON numbers look like -1.5e3");
    } else {
        for (const char* word : {"true", "false", "null"})
            if (s_.compare(i_, std::char_traits<char>::length(word), word) == 0) {
                i_ += std::char_traits<char>::length(word);
                return;
            }
        fail(i_, "expected a JSON value, found " + found(), "the file must be strict JSON");
    }
}

struct RollReader {
    JsonCursor& in;
    std::int64_t low, high;
    bool skip;
    NoteSetRolls& out;

    void note_outside(std::size_t at, const std::string& where, std::int64_t note) {
        const std::string what = detail::concat(in.where(at), ": ", where, ": note ", note, " is outside [", low, ", ", high, "]");
        if (!skip) throw Error(what, "widen low / high, or set on_error: skip to drop such notes");
        if (out.first_skipped.empty()) out.first_skipped = what;
        ++out.skipped_notes;
    }
    void empty_piece(std::size_t at, const std::string& where) {
        const std::string what = detail::concat(in.where(at), ": ", where, ": empty piece (no time steps)");
        if (!skip) throw Error(what, "remove the piece, or set on_error: skip to drop empty pieces");
        if (out.first_skipped.empty()) out.first_skipped = what;
        ++out.empty_pieces;
    }
    // One piece, [step, ...], into a roll (T, P).
    void piece(const std::string& split, std::size_t index, FrameSplit& frames) {
        const std::int64_t P = high - low + 1;
        const std::size_t at = in.pos();
        in.expect('[', detail::concat(split, "[", index, "]: a piece, a list of time steps"));
        FrameSplit::Item item;
        if (in.peek() != ']') {
            do {
                const std::string step = detail::concat(split, "[", index, "][", item.rows, "]");
                in.expect('[', step + ": a time step, a list of notes");
                item.values.resize(item.values.size() + static_cast<std::size_t>(P), 0.f);
                float* row = item.values.data() + item.rows * P;
                if (in.peek() != ']') {
                    do {
                        in.ws();
                        const std::size_t note_at = in.pos();
                        const std::int64_t n = in.integer("a MIDI note number in " + step);
                        if (n < low || n > high) note_outside(note_at, step, n);
                        else row[n - low] = 1.f;
                    } while (in.more(']', "a note in " + step));
                } else {
                    in.expect(']', step);
                }
                ++item.rows;
            } while (in.more(']', detail::concat("a time step of ", split, "[", index, "]")));
        } else {
            in.expect(']', "an empty piece");
        }
        if (item.rows == 0) return empty_piece(at, detail::concat(split, "[", index, "]"));
        frames.items.push_back(std::move(item));
    }
    void split(const std::string& name, FrameSplit& frames) {
        in.expect('[', "split '" + name + "': a list of pieces");
        if (in.peek() == ']') return in.expect(']', "an empty split");
        std::size_t index = 0;
        do piece(name, index++, frames);
        while (in.more(']', "a piece of split '" + name + "'"));
    }
};

}  // namespace

NoteSetRolls parse_note_sets(const std::string& text, const std::string& file, const std::vector<std::string>& keys,
                             std::int64_t low, std::int64_t high, bool skip) {
    NoteSetRolls out;
    for (const auto& k : keys) {
        FrameSplit fs;
        fs.dim = high - low + 1;
        fs.origin = file + " (" + k + ")";
        out.splits.emplace_back(k, std::move(fs));
    }
    JsonCursor in(text, file);
    RollReader reader{in, low, high, skip, out};
    std::vector<std::string> present;
    in.expect('{', "the file is one JSON object of splits");
    if (in.peek() != '}') {
        do {
            in.ws();
            const std::size_t at = in.pos();
            const std::string key = in.string();
            if (std::find(present.begin(), present.end(), key) != present.end())
                in.fail(at, "key '" + key + "' appears again", "give each split once");
            present.push_back(key);
            in.expect(':', "after the key '" + key + "'");
            const auto it = std::find(keys.begin(), keys.end(), key);
            if (it == keys.end()) in.skip_value(0);
            else reader.split(key, out.splits[static_cast<std::size_t>(it - keys.begin())].second);
        } while (in.more('}', "a split"));
    } else {
        in.expect('}', "an empty object");
    }
    if (!in.at_end()) in.fail(in.pos(), "text after the JSON object: " + in.found(), "the file holds one object");
    for (const auto& k : keys)
        if (std::find(present.begin(), present.end(), k) == present.end()) {
            std::string have;
            for (const auto& p : present) have += (have.empty() ? "'" : ", '") + p + "'";
            throw Error(detail::concat(file, ": no split '", k, "'"),
                        present.empty() ? "the file's object is empty" : "its keys: " + have + "; set splits to those to read");
        }
    return out;
}

}  // namespace rnnflow::stages
