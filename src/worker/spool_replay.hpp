// src/worker/spool_replay.hpp — the spool on the event loop: webhooks that cannot reach the database are
// appended (fsync'd by one writer thread, many webhooks per fsync) and replayed in arrival order through the
// normal receive path once the database is back (docs/worker.md#spool).
//
// While the spool holds anything not yet stored, new webhooks are spooled too, so a phone's later text never
// overtakes an earlier one. Replay stores one record at a time and moves a cursor past it only after the
// commit; receive_sms answers "duplicate" for a MessageSid it already has, so a replay repeated after a crash
// stores nothing twice. A segment file is deleted once every record in it is stored.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "log_throttle.hpp"
#include "metrics.hpp"
#include "pg_pool.hpp"
#include "spool.hpp"

namespace darkspere::worker {

// SpooledSms — what receive_sms needs of one webhook: its seven arguments (provider_account = AccountSid,
// to, from, body, message_sid, num_media, request_id) and when the worker received it.
struct SpooledSms {
    PgParams args;
    int64_t received_unix_ms = 0;
};

// spool_encode_sms / spool_decode_sms — a record's payload (JSON); decode is nullopt for anything else.
std::string spool_encode_sms(const SpooledSms &sms);
std::optional<SpooledSms> spool_decode_sms(std::string_view payload);

// spool_rejects_as_bad_input — whether a failed replay means the record itself is bad (data exceptions,
// class 22, and integrity violations, class 23): it is quarantined instead of blocking the spool. Any other
// failure (permissions, resources, a bug) is retried, so a misconfiguration never discards spooled texts.
bool spool_rejects_as_bad_input(const std::string &sqlstate);

struct SpoolSettings {
    std::string dir;
    uint64_t max_bytes = 1ull << 30;
    long replay_per_second = 0;  // 0 = as fast as the database stores them
};

class Spool {
  public:
    // submit stores one replayed message through the receive path; database_up says whether trying is worth
    // it.
    using Submit = std::function<void(PgParams args, PgCallback done)>;
    using Appended = std::function<void(bool stored, const std::string &error)>;

    Spool(boost::asio::io_context &io, Metrics &metrics, SpoolSettings settings,
          std::function<bool()> database_up, Submit submit);
    ~Spool();
    Spool(const Spool &) = delete;
    Spool &operator=(const Spool &) = delete;

    // open — takes the directory's lock, finds what an earlier run left and starts the writer thread.
    // Throws std::runtime_error (another worker holds the directory, no permission).
    void open();
    // stop — no more replay; appends already queued are still written (the drain waits for their answers).
    void stop();

    // append — spools one webhook; done(true) once it is durable, done(false, reason) when the spool is full
    // or the write failed (the webhook is then refused as before).
    void append(const SpooledSms &sms, Appended done);

    // wake — the database may be back: try replaying now.
    void wake();

    // active — something is spooled and not yet stored (or being written or replayed).
    bool active() const { return pending_appends_ > 0 || replay_in_flight_ || !segments_.empty(); }
    // full — the last append was refused for room, and no segment has been freed since.
    bool full() const { return full_; }
    uint64_t bytes() const { return bytes_ + pending_bytes_; }
    const std::string &dir() const { return settings_.dir; }
    boost::asio::io_context &io() { return io_; }

  private:
    struct Op {
        bool retire = false;
        std::string record;
        uint64_t segment = 0, size = 0;  // retire
        std::function<void(bool ok, const std::string &error, SpoolWriterFiles::Placed placed)> done;
    };
    void writer_main();
    void enqueue(Op op);
    void placed(const SpoolWriterFiles::Placed &p);
    void pump();
    void schedule(std::chrono::steady_clock::duration delay);
    void advance(uint64_t segment, uint64_t next);
    void quarantine(uint64_t segment, uint64_t offset, std::string_view bytes, const char *reason);
    void replay(uint64_t segment, uint64_t offset, uint64_t next, SpooledSms sms);
    void drop_front_segment();
    void update_gauges();

    boost::asio::io_context &io_;
    Metrics &metrics_;
    SpoolSettings settings_;
    std::function<bool()> database_up_;
    Submit submit_;

    // Writer thread: ops queued by the loop, done in order; consecutive appends share one fsync.
    std::unique_ptr<SpoolWriterFiles> files_;
    std::thread thread_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<Op> ops_;
    bool stopping_ = false;
    int lock_fd_ = -1;

    // Loop side.
    std::deque<SpoolSegment> segments_;       // segments not yet deleted, oldest first; size = durable bytes
    std::optional<uint64_t> writer_segment_;  // the segment the writer appends to (others are closed)
    SpoolCursor cursor_;
    std::string buf_;  // bytes of the cursor's segment read so far
    std::optional<uint64_t> buf_segment_;
    uint64_t bytes_ = 0, pending_bytes_ = 0;
    size_t pending_appends_ = 0;
    bool replay_in_flight_ = false;
    bool stopped_ = false;
    bool full_ = false;
    bool was_active_ = false;
    boost::asio::steady_timer timer_;
    bool timer_armed_ = false;
    std::chrono::steady_clock::time_point not_before_{};
    LogThrottle retry_log_{std::chrono::seconds(10)};
};

}  // namespace darkspere::worker
