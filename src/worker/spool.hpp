// src/worker/spool.hpp — the spool's files: append-only segments of CRC-checked records, the replay cursor,
// the quarantine and the lock that keeps a second worker out (docs/worker.md#spool).
//
// A segment (`<20-digit id>.seg`) starts with the 8 bytes "DSSPOOL1" and holds records back to back:
//
//   magic "DSR1" (4 bytes) | payload length (u32 LE) | CRC-32C over length and payload (u32 LE) | payload
//
// Segments are only ever appended to, by one writer, and each append is made durable with fdatasync before
// the webhooks it holds are answered. Nothing here knows about the event loop: the writer side runs on the
// spool's writer thread, the reading side on the loop (spool_replay.hpp), and both are plain file I/O for
// tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace darkspere::worker {

constexpr char SPOOL_SEGMENT_MAGIC[] = "DSSPOOL1";
constexpr size_t SPOOL_SEGMENT_HEADER = 8;
constexpr uint32_t SPOOL_RECORD_MAGIC = 0x31525344;  // "DSR1" in little-endian byte order
constexpr size_t SPOOL_RECORD_HEADER = 12;
// A webhook's form is bounded by the HTTP server's body limit; a header claiming more is corrupt.
constexpr uint32_t SPOOL_RECORD_MAX = 1u << 20;
// Segments rotate at this size (or at a quarter of spool-max-bytes, if smaller), so a drained one can be
// deleted while the spool still holds newer texts.
constexpr uint64_t SPOOL_SEGMENT_BYTES_MAX = 16u << 20;

// spool_crc32c — CRC-32C (Castagnoli, as in iSCSI and ext4) of bytes, continuing from crc.
uint32_t spool_crc32c(std::string_view bytes, uint32_t crc = 0);

// spool_encode_record — one record (header and payload) ready to append.
std::string spool_encode_record(std::string_view payload);

// SpoolParse — what a segment holds at an offset.
struct SpoolParse {
    enum class Kind {
        record,     // a whole record with a good CRC: payload
        corrupt,    // bytes that are no record (a bad CRC or header) up to the next good record or the end
        torn_tail,  // the last record of a closed segment, cut short by a crash during its write
        more,       // the bytes so far end inside a record that is still being written (an open segment)
        end,        // nothing after offset
    };
    Kind kind = Kind::end;
    std::string payload;
    std::string_view skipped;  // corrupt / torn_tail: the bytes left out (quarantined)
    uint64_t next = 0;         // where the next read starts
};

// spool_parse — reads at `offset` of a segment's bytes `data` (the header included). closed: no more bytes
// will be appended, so an incomplete last record is a torn tail rather than one still being written.
SpoolParse spool_parse(std::string_view data, uint64_t offset, bool closed);

struct SpoolSegment {
    uint64_t id;
    uint64_t size;
};

// spool_segment_path — dir/<id, 20 digits>.seg
std::string spool_segment_path(const std::string &dir, uint64_t id);

// spool_list_segments — the segments in dir, oldest (lowest id) first.
std::vector<SpoolSegment> spool_list_segments(const std::string &dir);

// spool_prepare_dir — creates dir and dir/quarantine (mode 0700) if missing and takes an exclusive flock on
// dir/lock, kept until the process exits. Throws std::runtime_error naming the problem (another worker holds
// the lock, no permission).
int spool_prepare_dir(const std::string &dir);

// SpoolCursor — where replay resumes: the first byte not yet known stored.
struct SpoolCursor {
    uint64_t segment = 0;
    uint64_t offset = 0;
};

// spool_load_cursor / spool_save_cursor — dir/cursor: 16 bytes and their CRC-32C. A missing or damaged
// cursor is nullopt (replay then starts at the oldest segment; receive_sms answers "duplicate" for texts
// already stored). Saved without fsync for the same reason: a lost update only repeats some replay.
std::optional<SpoolCursor> spool_load_cursor(const std::string &dir);
void spool_save_cursor(const std::string &dir, const SpoolCursor &cursor);

// spool_quarantine — writes bytes to dir/quarantine/name (fsync'd: the segment they came from is deleted
// later); returns the path. Throws std::system_error.
std::string spool_quarantine(const std::string &dir, const std::string &name, std::string_view bytes);

// spool_read_segment — the segment's bytes from `from` to its current end, appended to *out.
void spool_read_segment(const std::string &dir, uint64_t id, uint64_t from, std::string *out);

// SpoolWriterFiles — the writer's side: appends records to the newest segment, rotating at segment_bytes.
// One thread only.
class SpoolWriterFiles {
  public:
    struct Placed {
        uint64_t segment;
        uint64_t end;  // the segment's size after this record
    };

    // next_id: the id the first new segment gets (one past every existing segment: old segments are
    // never appended to, so a torn record in them stays the last one).
    SpoolWriterFiles(std::string dir, uint64_t segment_bytes, uint64_t next_id);
    ~SpoolWriterFiles();
    SpoolWriterFiles(const SpoolWriterFiles &) = delete;
    SpoolWriterFiles &operator=(const SpoolWriterFiles &) = delete;

    // append — writes the records in order and fdatasyncs every segment it wrote to once (a new segment's
    // directory entry too), so one call makes all of them durable. Throws std::system_error; the segment it
    // failed in is cut back to its last durable size and closed, and the next append starts a new one.
    std::vector<Placed> append(const std::vector<std::string> &records);

    // retire — deletes the open segment if it is `id` and still `size` bytes (every record in it stored);
    // the next append starts a new segment.
    void retire(uint64_t id, uint64_t size);

  private:
    void open_next();
    void close_current();

    std::string dir_;
    uint64_t segment_bytes_;
    uint64_t next_id_;
    int fd_ = -1;
    uint64_t id_ = 0;
    uint64_t size_ = 0;
};

}  // namespace darkspere::worker
