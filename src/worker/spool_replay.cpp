// src/worker/spool_replay.cpp — spooling and replaying webhooks (see spool_replay.hpp).
#include "spool_replay.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "log.hpp"

namespace darkspere::worker {

namespace asio = boost::asio;

namespace {

constexpr size_t SMS_ARGS = 7;
constexpr size_t ARG_MESSAGE_SID = 4;
constexpr size_t ARG_REQUEST_ID = 6;
// How often replay looks again while the database is down, and after a failure it retries.
constexpr std::chrono::milliseconds REPLAY_RETRY{500};
constexpr std::chrono::seconds REPLAY_ERROR_RETRY{5};

uint64_t segment_bytes_for(uint64_t max_bytes) {
    return std::min<uint64_t>(SPOOL_SEGMENT_BYTES_MAX, std::max<uint64_t>(max_bytes / 4, 64 * 1024));
}

}  // namespace

std::string spool_encode_sms(const SpooledSms &sms) {
    nlohmann::json args = nlohmann::json::array();
    for (const auto &a : sms.args)
        args.push_back(a ? nlohmann::json(*a) : nlohmann::json(nullptr));
    return nlohmann::json{{"v", 1}, {"args", std::move(args)}, {"received_ms", sms.received_unix_ms}}.dump();
}

std::optional<SpooledSms> spool_decode_sms(std::string_view payload) {
    auto j = nlohmann::json::parse(payload, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("v", 0) != 1)
        return std::nullopt;
    auto args = j.find("args");
    auto received = j.find("received_ms");
    if (args == j.end() || !args->is_array() || args->size() != SMS_ARGS || received == j.end() ||
        !received->is_number_integer())
        return std::nullopt;
    SpooledSms sms;
    for (const auto &a : *args) {
        if (a.is_null())
            sms.args.emplace_back(std::nullopt);
        else if (a.is_string())
            sms.args.emplace_back(a.get<std::string>());
        else
            return std::nullopt;
    }
    sms.received_unix_ms = received->get<int64_t>();
    return sms;
}

bool spool_rejects_as_bad_input(const std::string &sqlstate) {
    return sqlstate.rfind("22", 0) == 0 || sqlstate.rfind("23", 0) == 0;
}

Spool::Spool(asio::io_context &io, Metrics &metrics, SpoolSettings settings,
             std::function<bool()> database_up, Submit submit)
    : io_(io),
      metrics_(metrics),
      settings_(std::move(settings)),
      database_up_(std::move(database_up)),
      submit_(std::move(submit)),
      timer_(io) {}

Spool::~Spool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable())
        thread_.join();
    if (lock_fd_ >= 0)
        ::close(lock_fd_);
}

void Spool::open() {
    lock_fd_ = spool_prepare_dir(settings_.dir);
    std::vector<SpoolSegment> found = spool_list_segments(settings_.dir);
    std::optional<SpoolCursor> cursor = spool_load_cursor(settings_.dir);
    uint64_t next_id = cursor ? cursor->segment + 1 : 1;
    for (const SpoolSegment &s : found) {
        next_id = std::max(next_id, s.id + 1);
        if (cursor && s.id < cursor->segment) {
            // Every record in it was stored before the last run ended; only its deletion was lost.
            ::unlink(spool_segment_path(settings_.dir, s.id).c_str());
            continue;
        }
        segments_.push_back(s);
        bytes_ += s.size;
    }
    if (!segments_.empty()) {
        bool resume = cursor && cursor->segment == segments_.front().id;
        cursor_ = {segments_.front().id, resume ? cursor->offset : SPOOL_SEGMENT_HEADER};
    }
    files_ =
        std::make_unique<SpoolWriterFiles>(settings_.dir, segment_bytes_for(settings_.max_bytes), next_id);
    thread_ = std::thread([this] { writer_main(); });
    update_gauges();
    log_info("spool opened", {{"spool_dir", settings_.dir},
                              {"segments", static_cast<unsigned long long>(segments_.size())},
                              {"bytes", static_cast<unsigned long long>(bytes_)},
                              {"max_bytes", static_cast<unsigned long long>(settings_.max_bytes)}});
    if (!segments_.empty())
        asio::post(io_, [this] { pump(); });
}

void Spool::stop() {
    stopped_ = true;
    timer_.cancel();
}

void Spool::writer_main() {
    for (;;) {
        std::deque<Op> ops;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            cv_.wait(lock, [this] { return stopping_ || !ops_.empty(); });
            if (ops_.empty())
                return;
            ops.swap(ops_);
        }
        // Every append that queued while the previous fsync ran goes in the next one: an outage costs the
        // webhooks one fsync each at most, however many arrive at once.
        size_t i = 0;
        while (i < ops.size()) {
            if (ops[i].retire) {
                std::string error;
                try {
                    files_->retire(ops[i].segment, ops[i].size);
                } catch (const std::exception &e) {
                    error = e.what();
                }
                if (!error.empty())
                    asio::post(io_, [error] {
                        log_warn("could not delete a drained spool segment", {{"error", error}});
                    });
                ++i;
                continue;
            }
            size_t j = i;
            std::vector<std::string> records;
            while (j < ops.size() && !ops[j].retire)
                records.push_back(std::move(ops[j++].record));
            std::vector<SpoolWriterFiles::Placed> placed;
            std::string error;
            try {
                placed = files_->append(records);
            } catch (const std::exception &e) {
                error = e.what();
            }
            for (size_t k = i; k < j; ++k) {
                SpoolWriterFiles::Placed p = error.empty() ? placed[k - i] : SpoolWriterFiles::Placed{0, 0};
                asio::post(io_, [done = std::move(ops[k].done), error, p] { done(error.empty(), error, p); });
            }
            i = j;
        }
    }
}

void Spool::enqueue(Op op) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        ops_.push_back(std::move(op));
    }
    cv_.notify_one();
}

void Spool::update_gauges() {
    metrics_.spool_bytes = static_cast<long>(bytes());
    metrics_.spool_active = active() ? 1 : 0;
}

void Spool::append(const SpooledSms &sms, Appended done) {
    std::string record = spool_encode_record(spool_encode_sms(sms));
    // A record may open a new segment, whose header counts too.
    if (bytes() + record.size() + SPOOL_SEGMENT_HEADER > settings_.max_bytes) {
        if (!full_)
            log_error("spool full: webhooks are refused until replay frees room",
                      {{"spool_dir", settings_.dir},
                       {"bytes", static_cast<unsigned long long>(bytes())},
                       {"max_bytes", static_cast<unsigned long long>(settings_.max_bytes)}});
        full_ = true;
        ++metrics_.spool_refused;
        done(false, "spool full");
        return;
    }
    if (!active() && !was_active_) {
        log_warn("spooling webhooks until the database stores them again", {{"spool_dir", settings_.dir}});
    }
    was_active_ = true;
    uint64_t size = record.size();
    ++pending_appends_;
    pending_bytes_ += size;
    update_gauges();
    Op op;
    op.record = std::move(record);
    op.done = [this, size, done = std::move(done)](bool ok, const std::string &error,
                                                   SpoolWriterFiles::Placed p) {
        --pending_appends_;
        pending_bytes_ -= size;
        if (ok) {
            placed(p);
            ++metrics_.spool_spooled;
            done(true, "");
        } else {
            log_error("spool write failed", {{"spool_dir", settings_.dir}, {"error", error}});
            ++metrics_.spool_refused;
            done(false, "spool write failed");
        }
        update_gauges();
        pump();
    };
    enqueue(std::move(op));
}

void Spool::placed(const SpoolWriterFiles::Placed &p) {
    if (segments_.empty() || segments_.back().id < p.segment) {
        if (segments_.empty())
            cursor_ = {p.segment, SPOOL_SEGMENT_HEADER};
        segments_.push_back({p.segment, SPOOL_SEGMENT_HEADER});
        bytes_ += SPOOL_SEGMENT_HEADER;
        writer_segment_ = p.segment;
    }
    SpoolSegment &s = segments_.back();
    if (s.id == p.segment && p.end > s.size) {
        bytes_ += p.end - s.size;
        s.size = p.end;
    }
}

void Spool::wake() {
    if (!stopped_)
        pump();
}

void Spool::schedule(std::chrono::steady_clock::duration delay) {
    if (timer_armed_ || stopped_)
        return;
    timer_armed_ = true;
    timer_.expires_after(delay);
    timer_.async_wait([this](const boost::system::error_code &ec) {
        timer_armed_ = false;
        if (!ec)
            pump();
    });
}

void Spool::drop_front_segment() {
    const SpoolSegment s = segments_.front();
    segments_.pop_front();
    bytes_ -= std::min(bytes_, s.size);
    buf_.clear();
    buf_segment_.reset();
    full_ = false;
    if (writer_segment_ && *writer_segment_ == s.id) {
        // The writer's own segment: it deletes it, in order with appends queued meanwhile.
        writer_segment_.reset();
        Op op;
        op.retire = true;
        op.segment = s.id;
        op.size = s.size;
        enqueue(std::move(op));
    } else if (::unlink(spool_segment_path(settings_.dir, s.id).c_str()) != 0) {
        log_warn("could not delete a replayed spool segment",
                 {{"segment", s.id}, {"error", std::string(std::strerror(errno))}});
    }
    cursor_ = segments_.empty() ? SpoolCursor{s.id + 1, SPOOL_SEGMENT_HEADER}
                                : SpoolCursor{segments_.front().id, SPOOL_SEGMENT_HEADER};
    try {
        spool_save_cursor(settings_.dir, cursor_);
    } catch (const std::exception &e) {
        log_warn("could not save the spool cursor", {{"error", e.what()}});
    }
}

void Spool::advance(uint64_t segment, uint64_t next) {
    cursor_ = {segment, next};
    try {
        spool_save_cursor(settings_.dir, cursor_);
    } catch (const std::exception &e) {
        // Replay goes on; after a crash it would only repeat records, which receive_sms recognizes.
        log_warn("could not save the spool cursor", {{"error", e.what()}});
    }
}

void Spool::quarantine(uint64_t segment, uint64_t offset, std::string_view bytes, const char *reason) {
    char name[64];
    std::snprintf(name, sizeof name, "%020llu-%llu.%s", static_cast<unsigned long long>(segment),
                  static_cast<unsigned long long>(offset), reason);
    std::string path;
    try {
        path = spool_quarantine(settings_.dir, name, bytes);
    } catch (const std::exception &e) {
        path = std::string("(not written: ") + e.what() + ")";
    }
    ++metrics_.spool_quarantined[reason];
    // The bytes may hold a text: the log names only where they went.
    log_error("spool record quarantined", {{"reason", reason},
                                           {"segment", static_cast<unsigned long long>(segment)},
                                           {"offset", static_cast<unsigned long long>(offset)},
                                           {"bytes", static_cast<unsigned long long>(bytes.size())},
                                           {"quarantine_file", path}});
}

void Spool::pump() {
    update_gauges();
    if (stopped_ || replay_in_flight_)
        return;
    while (!segments_.empty()) {
        SpoolSegment &s = segments_.front();
        if (cursor_.segment != s.id)
            cursor_ = {s.id, SPOOL_SEGMENT_HEADER};
        bool open = writer_segment_ && *writer_segment_ == s.id;
        if (!buf_segment_ || *buf_segment_ != s.id) {
            buf_.clear();
            buf_segment_ = s.id;
        }
        if (buf_.size() < s.size) {
            try {
                spool_read_segment(settings_.dir, s.id, buf_.size(), &buf_);
            } catch (const std::exception &e) {
                log_error("could not read a spool segment; retrying", {{"error", e.what()}});
                schedule(REPLAY_ERROR_RETRY);
                return;
            }
        }
        // Only what the writer reported durable, which ends on a whole record: a record written but not yet
        // fsync'd has not been answered yet. So an incomplete record here is damage even in the open segment.
        std::string_view data = std::string_view(buf_).substr(0, std::min<uint64_t>(buf_.size(), s.size));
        SpoolParse p = spool_parse(data, cursor_.offset, true);
        switch (p.kind) {
            case SpoolParse::Kind::end:
            case SpoolParse::Kind::more:
                if (open && pending_appends_ > 0) {
                    update_gauges();
                    return;  // the writer's answer comes back here
                }
                drop_front_segment();
                continue;
            case SpoolParse::Kind::corrupt:
            case SpoolParse::Kind::torn_tail: {
                uint64_t at = cursor_.offset;
                quarantine(s.id, at, p.skipped, p.kind == SpoolParse::Kind::corrupt ? "corrupt" : "torn");
                advance(s.id, p.next);
                continue;
            }
            case SpoolParse::Kind::record:
                break;
        }
        std::optional<SpooledSms> sms = spool_decode_sms(p.payload);
        if (!sms) {
            quarantine(s.id, cursor_.offset, p.payload, "corrupt");
            advance(s.id, p.next);
            continue;
        }
        auto now = std::chrono::steady_clock::now();
        if (!database_up_()) {
            schedule(REPLAY_RETRY);
            return;
        }
        if (now < not_before_) {
            schedule(not_before_ - now);
            return;
        }
        if (settings_.replay_per_second > 0)
            not_before_ = now + std::chrono::microseconds(1000000 / settings_.replay_per_second);
        replay(s.id, cursor_.offset, p.next, std::move(*sms));
        return;
    }
    if (was_active_ && !active()) {
        was_active_ = false;
        log_info("spool drained: every spooled webhook is stored",
                 {{"replayed_total", metrics_.spool_replayed}});
    }
    update_gauges();
}

void Spool::replay(uint64_t segment, uint64_t offset, uint64_t next, SpooledSms sms) {
    replay_in_flight_ = true;
    was_active_ = true;
    std::string message_sid = sms.args[ARG_MESSAGE_SID].value_or("");
    std::string request_id = sms.args[ARG_REQUEST_ID].value_or("");
    std::string payload = spool_encode_sms(sms);
    submit_(std::move(sms.args), [this, segment, offset, next, message_sid, request_id,
                                  payload = std::move(payload)](PgResult r) {
        replay_in_flight_ = false;
        if (r.ok) {
            ++metrics_.spool_replayed;
            nlohmann::json fields{{"request_id", request_id},
                                  {"message_sid", message_sid},
                                  {"disposition", r.value(0, "disposition").value_or("")},
                                  {"message_id", r.value(0, "message_id").value_or("")}};
            // A TwiML reply (a keyword's answer) went with the webhook's own answer, which was sent long ago.
            if (r.value(0, "reply"))
                fields["inline_reply_not_sent"] = true;
            log_info("spooled sms stored", fields);
            advance(segment, next);
        } else if (r.unavailable) {
            schedule(REPLAY_RETRY);
            return;
        } else if (spool_rejects_as_bad_input(r.sqlstate)) {
            nlohmann::json record{
                {"sqlstate", r.sqlstate}, {"error", r.error}, {"record", nlohmann::json::parse(payload)}};
            quarantine(segment, offset, record.dump(), "rejected");
            log_warn("spooled sms rejected by the database",
                     {{"request_id", request_id}, {"message_sid", message_sid}, {"sqlstate", r.sqlstate}});
            advance(segment, next);
        } else {
            if (auto suppressed = retry_log_.admit(r.sqlstate))
                log_error("spooled sms could not be stored; retrying", {{"request_id", request_id},
                                                                        {"message_sid", message_sid},
                                                                        {"sqlstate", r.sqlstate},
                                                                        {"error", r.error},
                                                                        {"suppressed", *suppressed}});
            not_before_ = std::chrono::steady_clock::now() + REPLAY_ERROR_RETRY;
            schedule(REPLAY_ERROR_RETRY);
            return;
        }
        pump();
    });
}

}  // namespace darkspere::worker
