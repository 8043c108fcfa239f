// test/unit/worker_spool_test.cpp — the spool's segment format (spool.hpp) and its size bound
// (spool_replay.hpp): what is written reads back, damage is found and skipped, segments rotate.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "config.hpp"
#include "spool.hpp"
#include "spool_replay.hpp"

using namespace darkspere::worker;

namespace {

// A fresh directory under TMPDIR, removed with everything in it at the end of the test.
class TempDir {
  public:
    TempDir() {
        std::string pattern = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") +
                              "/darkspere-spool-test-XXXXXX";
        std::vector<char> buf(pattern.begin(), pattern.end());
        buf.push_back('\0');
        if (!::mkdtemp(buf.data()))
            throw std::runtime_error("mkdtemp failed");
        path = buf.data();
    }
    ~TempDir() { (void)std::system(("rm -rf '" + path + "'").c_str()); }
    std::string path;
};

std::string read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const std::string &path, const std::string &bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
}

// records — every record's payload in a closed segment, and what was skipped, in order.
std::vector<std::string> read_all(const std::string &data, std::vector<SpoolParse::Kind> *skipped = nullptr) {
    std::vector<std::string> out;
    uint64_t at = 0;
    for (;;) {
        SpoolParse p = spool_parse(data, at, true);
        if (p.kind == SpoolParse::Kind::end)
            return out;
        if (p.kind == SpoolParse::Kind::record)
            out.push_back(p.payload);
        else if (skipped)
            skipped->push_back(p.kind);
        EXPECT_GT(p.next, at);
        at = p.next;
    }
}

}  // namespace

TEST(SpoolCrc, IsCrc32c) {
    // The check value of CRC-32C (RFC 3720, appendix B.4): "123456789" → 0xE3069283.
    EXPECT_EQ(spool_crc32c("123456789"), 0xE3069283u);
    // Computed in two pieces, the same.
    EXPECT_EQ(spool_crc32c("6789", spool_crc32c("12345")), 0xE3069283u);
}

TEST(SpoolSegment, WrittenRecordsReadBackInOrder) {
    TempDir dir;
    SpoolWriterFiles w(dir.path, 1 << 20, 1);
    auto placed = w.append({spool_encode_record("first"), spool_encode_record("second")});
    placed.push_back(w.append({spool_encode_record(std::string(1000, 'x'))}).at(0));
    ASSERT_EQ(placed.size(), 3u);
    EXPECT_EQ(placed[0].segment, 1u);
    EXPECT_EQ(placed[2].segment, 1u);
    std::string data = read_file(spool_segment_path(dir.path, 1));
    EXPECT_EQ(data.substr(0, 8), "DSSPOOL1");
    EXPECT_EQ(placed[2].end, data.size());
    EXPECT_EQ(read_all(data), (std::vector<std::string>{"first", "second", std::string(1000, 'x')}));
    auto segments = spool_list_segments(dir.path);
    ASSERT_EQ(segments.size(), 1u);
    EXPECT_EQ(segments[0].size, data.size());
}

TEST(SpoolSegment, ABadCrcIsSkippedAndTheNextRecordsRead) {
    TempDir dir;
    SpoolWriterFiles w(dir.path, 1 << 20, 1);
    w.append({spool_encode_record("one"), spool_encode_record("two-damaged"), spool_encode_record("three")});
    std::string data = read_file(spool_segment_path(dir.path, 1));
    size_t pos = data.find("two-damaged");
    ASSERT_NE(pos, std::string::npos);
    data[pos + 2] ^= 0x20;  // one flipped bit in the payload
    std::vector<SpoolParse::Kind> skipped;
    EXPECT_EQ(read_all(data, &skipped), (std::vector<std::string>{"one", "three"}));
    EXPECT_EQ(skipped, (std::vector<SpoolParse::Kind>{SpoolParse::Kind::corrupt}));

    // The skipped bytes are exactly the damaged record.
    SpoolParse p = spool_parse(data, SPOOL_SEGMENT_HEADER + spool_encode_record("one").size(), true);
    EXPECT_EQ(p.kind, SpoolParse::Kind::corrupt);
    EXPECT_EQ(p.skipped.size(), spool_encode_record("two-damaged").size());
}

TEST(SpoolSegment, ADamagedLengthDoesNotSwallowTheRecordsAfterIt) {
    std::string data = std::string("DSSPOOL1") + spool_encode_record("a") + spool_encode_record("b") +
                       spool_encode_record("c");
    data[SPOOL_SEGMENT_HEADER + spool_encode_record("a").size() + 5] = '\x7f';  // b's length: ~8 MB
    std::vector<SpoolParse::Kind> skipped;
    EXPECT_EQ(read_all(data, &skipped), (std::vector<std::string>{"a", "c"}));
    EXPECT_EQ(skipped.size(), 1u);
}

TEST(SpoolSegment, ATornTailOfAClosedSegmentIsReportedOnce) {
    std::string whole =
        std::string("DSSPOOL1") + spool_encode_record("kept") + spool_encode_record("cut short");
    for (size_t cut : {whole.size() - 1, whole.size() - 9, whole.size() - 20}) {
        std::string data = whole.substr(0, cut);
        std::vector<SpoolParse::Kind> skipped;
        EXPECT_EQ(read_all(data, &skipped), (std::vector<std::string>{"kept"})) << cut;
        EXPECT_EQ(skipped, (std::vector<SpoolParse::Kind>{SpoolParse::Kind::torn_tail})) << cut;
    }
}

TEST(SpoolSegment, AnIncompleteRecordOfAnOpenSegmentIsWaitedFor) {
    std::string whole = std::string("DSSPOOL1") + spool_encode_record("being written");
    SpoolParse p = spool_parse(whole.substr(0, whole.size() - 3), SPOOL_SEGMENT_HEADER, false);
    EXPECT_EQ(p.kind, SpoolParse::Kind::more);
    EXPECT_EQ(p.next, SPOOL_SEGMENT_HEADER);
    p = spool_parse(whole.substr(0, 10), SPOOL_SEGMENT_HEADER, false);
    EXPECT_EQ(p.kind, SpoolParse::Kind::more);
    p = spool_parse(whole, SPOOL_SEGMENT_HEADER, false);
    EXPECT_EQ(p.kind, SpoolParse::Kind::record);
    EXPECT_EQ(p.payload, "being written");
}

TEST(SpoolSegment, SegmentsRotateAtTheirSizeAndNeverReopen) {
    TempDir dir;
    std::string rec = spool_encode_record(std::string(1000, 'r'));
    std::vector<SpoolWriterFiles::Placed> placed;
    {
        SpoolWriterFiles w(dir.path, 4096, 7);
        for (int i = 0; i < 10; ++i) {
            auto p = w.append({rec});
            placed.push_back(p.at(0));
        }
    }
    auto segments = spool_list_segments(dir.path);
    ASSERT_GE(segments.size(), 3u);
    EXPECT_EQ(segments.front().id, 7u);
    size_t records = 0;
    for (const auto &s : segments) {
        EXPECT_LE(s.size, 4096u);
        records += read_all(read_file(spool_segment_path(dir.path, s.id))).size();
    }
    EXPECT_EQ(records, 10u);
    // A later writer starts a new segment after the last one rather than appending to it.
    SpoolWriterFiles again(dir.path, 4096, segments.back().id + 1);
    EXPECT_EQ(again.append({rec}).at(0).segment, segments.back().id + 1);
}

TEST(SpoolSegment, RetireDeletesTheOpenSegmentOnlyAtTheSizeGiven) {
    TempDir dir;
    SpoolWriterFiles w(dir.path, 1 << 20, 1);
    auto p = w.append({spool_encode_record("x")}).at(0);
    w.retire(p.segment, p.end - 1);  // a record came after what the caller saw: kept
    EXPECT_EQ(spool_list_segments(dir.path).size(), 1u);
    w.retire(p.segment, p.end);
    EXPECT_TRUE(spool_list_segments(dir.path).empty());
    EXPECT_EQ(w.append({spool_encode_record("y")}).at(0).segment, 2u);
}

TEST(SpoolCursorFile, RoundTripsAndADamagedOneIsIgnored) {
    TempDir dir;
    EXPECT_FALSE(spool_load_cursor(dir.path));
    spool_save_cursor(dir.path, {0x100000002ull, 12345});
    auto c = spool_load_cursor(dir.path);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->segment, 0x100000002ull);
    EXPECT_EQ(c->offset, 12345u);
    std::string bytes = read_file(dir.path + "/cursor");
    bytes[9] ^= 1;
    write_file(dir.path + "/cursor", bytes);
    EXPECT_FALSE(spool_load_cursor(dir.path));
}

TEST(SpoolDir, ASecondOpenerIsRefusedWhileTheFirstHoldsTheLock) {
    TempDir dir;
    std::string spool = dir.path + "/spool";
    int fd = spool_prepare_dir(spool);
    struct stat st {};
    ASSERT_EQ(::stat((spool + "/quarantine").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    try {
        spool_prepare_dir(spool);
        ADD_FAILURE() << "a second lock on one spool-dir was granted";
    } catch (const std::runtime_error &e) {
        EXPECT_NE(std::string(e.what()).find("in use by another worker"), std::string::npos) << e.what();
    }
    ::close(fd);
    ::close(spool_prepare_dir(spool));  // free again once the holder is gone
}

TEST(SpooledSmsPayload, RoundTripsAndRefusesOtherShapes) {
    SpooledSms sms{{"AC1", "+14155550199", "+14155551001", "hé \"quoted\"", "SM1", "0", std::nullopt}, 1234};
    auto back = spool_decode_sms(spool_encode_sms(sms));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->args, sms.args);
    EXPECT_EQ(back->received_unix_ms, 1234);
    EXPECT_FALSE(spool_decode_sms("not json"));
    EXPECT_FALSE(spool_decode_sms(R"({"v":1,"args":["a"],"received_ms":1})"));
    EXPECT_FALSE(spool_decode_sms(R"({"v":2,"args":["a","b","c","d","e","f","g"],"received_ms":1})"));
}

TEST(SpoolBound, AppendsPastMaxBytesAreRefusedAndNothingIsWrittenForThem) {
    TempDir dir;
    boost::asio::io_context io;
    // The writer thread posts its answers: the loop must wait for them rather than run out of work.
    auto work = boost::asio::make_work_guard(io);
    Metrics metrics;
    SpoolSettings settings{dir.path + "/spool", SPOOL_MAX_BYTES_MIN, 0};
    Spool spool(
        io, metrics, settings, [] { return false; }, [](PgParams, PgCallback) {});
    spool.open();
    SpooledSms sms{{"AC1", "+14155550199", "+14155551001", std::string(900, 'b'), "SM", "0", "r"}, 1};
    size_t stored = 0, refused = 0;
    for (int i = 0; i < 40; ++i) {
        sms.args[4] = "SM" + std::to_string(i);
        spool.append(sms, [&](bool ok, const std::string &error) {
            if (ok) {
                ++stored;
            } else {
                ++refused;
                EXPECT_EQ(error, "spool full");
            }
        });
    }
    while (stored + refused < 40)
        io.run_one();
    EXPECT_GT(stored, 0u);
    EXPECT_GT(refused, 0u);
    EXPECT_TRUE(spool.full());
    EXPECT_TRUE(spool.active());
    EXPECT_LE(spool.bytes(), static_cast<uint64_t>(SPOOL_MAX_BYTES_MIN));
    EXPECT_EQ(metrics.spool_spooled, stored);
    EXPECT_EQ(metrics.spool_refused, refused);
    uint64_t on_disk = 0;
    size_t records = 0;
    for (const auto &s : spool_list_segments(settings.dir)) {
        on_disk += s.size;
        records += read_all(read_file(spool_segment_path(settings.dir, s.id))).size();
    }
    EXPECT_EQ(on_disk, spool.bytes());
    EXPECT_EQ(records, stored);
}
