#include "midi.hpp"

#include <smf.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "error.hpp"

namespace rnnflow::midi {

std::vector<Note> notes_from_roll(const float* roll, std::int64_t T, std::int64_t P, int low, std::int64_t step_ticks,
                                  int velocity) {
    std::vector<Note> notes;
    for (std::int64_t k = 0; k < P; ++k) {
        std::int64_t t = 0;
        while (t < T) {
            if (!(roll[t * P + k] > 0.5f)) { ++t; continue; }
            const std::int64_t first = t;
            while (t < T && roll[t * P + k] > 0.5f) ++t;  // held while on
            const std::int64_t pitch = low + k;
            RNNFLOW_CHECK(pitch >= 0 && pitch <= 127, "a note at roll unit ", k, " is MIDI pitch ", pitch,
                          ", outside 0..127");
            notes.push_back(Note{static_cast<int>(pitch), first * step_ticks, t * step_ticks, velocity});
        }
    }
    std::sort(notes.begin(), notes.end(),
              [](const Note& a, const Note& b) { return std::tie(a.start, a.pitch) < std::tie(b.start, b.pitch); });
    return notes;
}

namespace {

// libsmf reports problems through GLib's log (domain "libsmf"), which prints them on stderr:
// while one of our calls runs, its messages are collected here instead, for our Error. GLib's
// handlers are global, so calls into libsmf take turns.
class SmfMessages {
public:
    SmfMessages() : lock_(mutex()) {
        id_ = g_log_set_handler("libsmf", static_cast<GLogLevelFlags>(G_LOG_LEVEL_MASK), &SmfMessages::collect, this);
    }
    ~SmfMessages() { g_log_remove_handler("libsmf", id_); }
    SmfMessages(const SmfMessages&) = delete;
    SmfMessages& operator=(const SmfMessages&) = delete;
    // ": libsmf: first; second", or "" when libsmf said nothing.
    std::string text() const {
        std::string out;
        for (const auto& m : messages_) out += (out.empty() ? ": libsmf: " : "; ") + m;
        return out;
    }

private:
    static void collect(const gchar*, GLogLevelFlags, const gchar* message, gpointer self) {
        static_cast<SmfMessages*>(self)->messages_.emplace_back(message ? message : "");
    }
    static std::mutex& mutex() {
        static std::mutex m;
        return m;
    }
    std::lock_guard<std::mutex> lock_;
    guint id_ = 0;
    std::vector<std::string> messages_;
};

struct SmfDeleter {
    void operator()(smf_t* s) const { smf_delete(s); }
};
using SmfPtr = std::unique_ptr<smf_t, SmfDeleter>;

// The song's checks, before anything is built.
void check_song(const Song& song, const std::filesystem::path& file) {
    const std::string where = "cannot write MIDI file '" + file.string() + "': ";
    if (song.ppqn < 1 || song.ppqn > 32767)
        throw Error(where + "ppqn " + std::to_string(song.ppqn) + " is outside 1..32767");
    const double us = std::round(60e6 / song.bpm);
    if (!(us >= 1 && us <= 16777215))
        throw Error(where + "tempo " + std::to_string(song.bpm) + " bpm gives no valid microseconds per quarter note",
                    "give a tempo between 4 and 60000000 bpm");
    for (const Note& n : song.notes)
        if (n.pitch < 0 || n.pitch > 127 || n.velocity < 1 || n.velocity > 127 || n.start < 0 || n.end <= n.start ||
            n.end > 0x0fffffff)
            throw Error(where + "note pitch " + std::to_string(n.pitch) + " velocity " + std::to_string(n.velocity) +
                        " ticks [" + std::to_string(n.start) + ", " + std::to_string(n.end) + ") is not a valid note");
}

}  // namespace

void write_smf(const std::filesystem::path& file, const Song& song) {
    check_song(song, file);
    SmfMessages said;
    SmfPtr smf(smf_new());
    if (!smf || smf_set_ppqn(smf.get(), song.ppqn) != 0 || smf_set_format(smf.get(), 0) != 0)
        throw Error("cannot write MIDI file '" + file.string() + "': libsmf could not start a file");
    smf_track_t* track = smf_track_new();
    if (!track) throw Error("cannot write MIDI file '" + file.string() + "': libsmf could not start a track");
    smf_add_track(smf.get(), track);  // the file owns it from here

    const auto us = static_cast<std::uint32_t>(std::round(60e6 / song.bpm));
    unsigned char tempo[6] = {0xff, 0x51, 0x03, static_cast<unsigned char>(us >> 16),
                              static_cast<unsigned char>(us >> 8), static_cast<unsigned char>(us)};
    smf_track_add_event_pulses(track, smf_event_new_from_pointer(tempo, 6), 0);
    // Every on and off in time order; at one tick offs first (kind 0), then ons (kind 1).
    struct Ev { std::int64_t tick; int kind, pitch, velocity; };
    std::vector<Ev> evs;
    std::int64_t end = 0;
    for (const Note& n : song.notes) {
        evs.push_back(Ev{n.start, 1, n.pitch, n.velocity});
        evs.push_back(Ev{n.end, 0, n.pitch, 0});
        end = std::max(end, n.end);
    }
    std::sort(evs.begin(), evs.end(), [](const Ev& a, const Ev& b) {
        return std::tie(a.tick, a.kind, a.pitch) < std::tie(b.tick, b.kind, b.pitch);
    });
    for (const Ev& e : evs) {
        smf_event_t* ev = smf_event_new_from_bytes(e.kind == 1 ? 0x90 : 0x80, e.pitch, e.velocity);
        if (!ev) throw Error("cannot write MIDI file '" + file.string() + "': libsmf refused a note event");
        smf_track_add_event_pulses(track, ev, static_cast<int>(e.tick));
    }
    if (smf_track_add_eot_pulses(track, static_cast<int>(end)) != 0)
        throw Error("cannot write MIDI file '" + file.string() + "': libsmf refused the end of track");

    // A temporary file beside the target, renamed over it when complete.
    std::filesystem::path tmp = file;
    tmp += ".tmp-" + std::to_string(::getpid());
    if (smf_save(smf.get(), tmp.c_str()) != 0) {
        std::error_code ec;
        std::filesystem::remove(tmp, ec);
        throw Error("cannot write MIDI file '" + file.string() + "'" + said.text(),
                    "check that its folder exists and is writable");
    }
    std::error_code ec;
    std::filesystem::rename(tmp, file, ec);
    if (ec) {
        std::filesystem::remove(tmp, ec);
        throw Error("cannot write MIDI file '" + file.string() + "': " + ec.message());
    }
}

Song read_smf(const std::filesystem::path& file) {
    SmfMessages said;
    SmfPtr smf(smf_load(file.c_str()));
    if (!smf)
        throw Error("cannot read MIDI file '" + file.string() + "'" + (said.text().empty() ? ": libsmf could not load it" : said.text()),
                    "is it a Standard MIDI File (it starts with MThd)?");
    if (smf->ppqn <= 0)
        throw Error("MIDI file '" + file.string() + "' counts time in SMPTE frames, not ticks per quarter note");
    Song song;
    song.ppqn = smf->ppqn;
    if (const smf_tempo_t* t = smf_get_tempo_by_number(smf.get(), 0); t && t->microseconds_per_quarter_note > 0)
        song.bpm = 60e6 / t->microseconds_per_quarter_note;
    // Per (channel, pitch): the starts and velocities of notes still sounding, oldest first.
    std::map<std::pair<int, int>, std::vector<std::pair<std::int64_t, int>>> open;
    smf_rewind(smf.get());
    while (smf_event_t* ev = smf_get_next_event(smf.get())) {
        if (smf_event_is_metadata(ev) || ev->midi_buffer_length < 3) continue;
        const int status = ev->midi_buffer[0] & 0xf0, channel = ev->midi_buffer[0] & 0x0f;
        const int pitch = ev->midi_buffer[1], velocity = ev->midi_buffer[2];
        if (status == 0x90 && velocity > 0) {
            open[{channel, pitch}].emplace_back(ev->time_pulses, velocity);
        } else if (status == 0x80 || status == 0x90) {
            auto& sounding = open[{channel, pitch}];
            if (sounding.empty()) continue;  // an off without an on: nothing to end
            song.notes.push_back(Note{pitch, sounding.front().first, ev->time_pulses, sounding.front().second});
            sounding.erase(sounding.begin());
        }
    }
    for (const auto& [key, sounding] : open)
        if (!sounding.empty())
            throw Error("MIDI file '" + file.string() + "': note " + std::to_string(key.second) + " on channel " +
                        std::to_string(key.first + 1) + " starts at tick " + std::to_string(sounding.front().first) +
                        " and never ends");
    std::sort(song.notes.begin(), song.notes.end(),
              [](const Note& a, const Note& b) { return std::tie(a.start, a.pitch) < std::tie(b.start, b.pitch); });
    return song;
}

}  // namespace rnnflow::midi
