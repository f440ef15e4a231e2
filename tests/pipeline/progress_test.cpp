// pipeline/exec/progress: what the bar, the plain lines and the JSON lines contain.
#include "pipeline/exec/progress.hpp"

#include "pipeline/exec/engine.hpp"

#include <catch2/catch.hpp>

#include <pty.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmath>
#include <sstream>

using namespace rnnflow;

namespace {
// The visible lines of terminal output: split at \r and \n, erase sequences removed.
std::vector<std::string> screen_lines(std::string s) {
    for (std::size_t at; (at = s.find("\x1b[K")) != std::string::npos;) s.erase(at, 3);
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == '\r' || c == '\n') {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}
}  // namespace

TEST_CASE("progress: plain lines every log_every steps, with epoch, loss, rate and ETA", "[progress]") {
    std::ostringstream os;
    Progress p(&os, false, 2, "text");
    p.set_epochs(3);
    p.begin_pass("train", 0, 5);
    for (int i = 1; i <= 5; ++i) p.step(i, 2.5, i * 100);
    p.end_pass();
    const std::string s = os.str();
    CHECK(s.find("train epoch 1/3 batch 2/5 loss 2.5000") != std::string::npos);
    CHECK(s.find("batch 4/5") != std::string::npos);
    CHECK(s.find("batch 5/5") != std::string::npos);  // the last step always
    CHECK(s.find("batch 3/5") == std::string::npos);
    CHECK(s.find("tok/s eta ") != std::string::npos);
    CHECK(s.find('\r') == std::string::npos);

    SECTION("a phase without epoch, loss or known length") {
        std::ostringstream o2;
        Progress q(&o2, false, 1, "text");
        q.begin_pass("translate", -1, 0, "sent");
        q.step(1, NAN, 3);
        CHECK(o2.str().rfind("translate 1 | ", 0) == 0);
        CHECK(o2.str().find("sent/s") != std::string::npos);
        CHECK(o2.str().find("loss") == std::string::npos);
        CHECK(o2.str().find("eta") == std::string::npos);
    }
}

TEST_CASE("progress: plain metric lines count per-class values instead of listing them", "[progress]") {
    std::ostringstream os;
    Progress p(&os, false, 1, "text");
    p.metrics(MetricsRow{3, "valid", {{"acc", 0.9375}, {"acc.macro_f1", 0.875}, {"acc.f1.NOUN", 0.5},
                                      {"acc.recall.VERB", 0.25}, {"loss", 0.5}}});
    const std::string s = os.str();
    CHECK(s == "epoch 3 valid acc=0.9375 acc.macro_f1=0.875 loss=0.5 (+2 per-class values in metrics.jsonl)\n");

    // With the engine's labels the main metric says what it is; values have 4 significant digits.
    std::ostringstream o1;
    Progress l(&o1, false, 1, "text");
    l.set_metric_labels({{"acc", "acc.accuracy"}});
    l.metrics(MetricsRow{1, "valid", {{"acc", 0.912345}, {"loss", 0.30000000000000004}, {"seconds", 12.3456}}});
    CHECK(o1.str() == "epoch 1 valid acc.accuracy=0.9123 loss=0.3 seconds=12.35\n");

    std::ostringstream o2;
    Progress q(&o2, false, 1, "json");  // JSON lines keep every value
    q.metrics(MetricsRow{3, "valid", {{"acc", 0.5}, {"acc.f1.NOUN", 0.25}}});
    CHECK(o2.str().find("\"acc.f1.NOUN\":0.25") != std::string::npos);
}

TEST_CASE("progress: JSON lines", "[progress]") {
    std::ostringstream os;
    Progress p(&os, false, 1, "json");
    p.begin_pass("valid", 1, 2);
    p.step(1, 1.25, 10);
    p.note("a \"quoted\"\nnote");
    p.metrics(MetricsRow{2, "valid", {{"loss", 1.5}, {"ppl", NAN}}});
    const std::string s = os.str();
    CHECK(s.find("{\"event\":\"progress\",\"phase\":\"valid\",\"epoch\":2,\"batch\":1,\"batches\":2,\"loss\":1.25,"
                 "\"unit\":\"tok\",") != std::string::npos);
    CHECK(s.find("{\"event\":\"note\",\"text\":\"a \\\"quoted\\\"\\nnote\"}\n") != std::string::npos);
    CHECK(s.find("{\"event\":\"metrics\",\"epoch\":2,\"split\":\"valid\",\"loss\":1.5,\"ppl\":\"NaN\"}\n") != std::string::npos);
}

TEST_CASE("progress: the bar fits a narrow terminal and survives notes", "[progress]") {
    int master = -1, slave = -1;
    REQUIRE(::openpty(&master, &slave, nullptr, nullptr, nullptr) == 0);
    for (const int cols : {160, 50, 30}) {
        winsize ws{};
        ws.ws_row = 24;
        ws.ws_col = static_cast<unsigned short>(cols);
        REQUIRE(::ioctl(slave, TIOCSWINSZ, &ws) == 0);
        std::ostringstream os;
        ProgressStyle style;
        style.out = &os;
        style.bar = true;
        style.tty_fd = slave;
        Progress p(style);
        p.set_epochs(12);
        p.metrics(MetricsRow{1, "valid", {{"loss", 1.0}, {"ppl", 2.718}, {"seconds", 3}}});
        p.begin_pass("train", 1, 400);
        p.step(400, 1.8342, 35000);  // the last step is always drawn
        p.note("wrote something");
        p.end_pass();
        INFO("columns " << cols << ": " << os.str());
        for (const auto& line : screen_lines(os.str()))  // bars, not the metrics lines (those may wrap)
            if (line.rfind("train", 0) == 0) CHECK(line.size() < static_cast<std::size_t>(cols));
        const std::string s = os.str();
        CHECK(s.find("\rtrain epoch 2/12") != std::string::npos);
        // The note is a line of its own, the bar is drawn again after it, then cleared.
        CHECK(s.find("\r\x1b[Kwrote something\n\rtrain epoch 2/12") != std::string::npos);
        CHECK(s.size() >= 4);
        CHECK(s.substr(s.size() - 4) == "\r\x1b[K");
        if (cols == 160) {
            CHECK(s.find("[====================] 400/400 loss 1.8342 | ppl.valid 2.718 |") != std::string::npos);
            CHECK(s.find("tok/s ETA 0:00") != std::string::npos);
        }
        if (cols == 50) CHECK(s.find("[====================]") == std::string::npos);  // a shorter bar
    }
    ::close(master);
    ::close(slave);
}

TEST_CASE("progress: styles", "[progress]") {
    CHECK(progress_style(true, "text").out == nullptr);
    CHECK_THROWS_WITH(progress_style(false, "xml"), Catch::Contains("--log-format must be text or json, got 'xml'"));
    const auto json = progress_style(false, "json");
    CHECK_FALSE(json.bar);  // JSON is never redrawn in place
    RunOptions o;
    apply_progress_style(json, o);
    CHECK(o.log_format == "json");
    CHECK(o.log == json.out);
}
