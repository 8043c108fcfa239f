// src/worker/pg_pool.cpp — non-blocking libpq on the Asio loop (see pg_pool.hpp).
#include "pg_pool.hpp"

#include <boost/asio/post.hpp>

#include "log.hpp"

namespace darkspere::worker {

namespace asio = boost::asio;

namespace {

std::string clean_message(const char *text) {
    // libpq messages span lines with tabs; a log field wants one line with single spaces.
    std::string s;
    for (const char *p = text ? text : ""; *p; ++p) {
        bool space = *p == '\n' || *p == '\t' || *p == ' ';
        if (space && (s.empty() || s.back() == ' '))
            continue;
        s.push_back(space ? ' ' : *p);
    }
    while (!s.empty() && s.back() == ' ')
        s.pop_back();
    return s.empty() ? "connection lost" : s;
}

PgResult unavailable(const std::string &reason) {
    PgResult r;
    r.unavailable = true;
    r.error = reason;
    return r;
}

}  // namespace

bool sqlstate_is_connection_error(const std::string &sqlstate) {
    return sqlstate.rfind("08", 0) == 0 || sqlstate.rfind("57P0", 0) == 0;
}

bool sqlstate_is_lock_conflict(const std::string &sqlstate) {
    return sqlstate == "40P01" || sqlstate == "40001";
}

// ---- PgConnection ----

PgConnection::PgConnection(asio::io_context &io, std::string conninfo, std::string name)
    : io_(io), conninfo_(std::move(conninfo)), name_(std::move(name)), retry_timer_(io) {}

PgConnection::~PgConnection() {
    reset_descriptor();
    if (conn_)
        PQfinish(conn_);
}

void PgConnection::start() {
    stopped_ = false;
    begin_connect();
}

void PgConnection::stop() {
    stopped_ = true;
    retry_timer_.cancel();
    reset_descriptor();
    if (conn_) {
        PQfinish(conn_);
        conn_ = nullptr;
    }
    state_ = State::disconnected;
    if (pending_) {
        auto cb = std::move(pending_);
        pending_ = nullptr;
        asio::post(io_, [cb = std::move(cb)] { cb(unavailable("worker shutting down")); });
    }
}

void PgConnection::reset_descriptor() {
    ++generation_;
    reading_ = writing_ = false;
    if (socket_) {
        // libpq owns the descriptor; Asio must let go of it before PQfinish closes it.
        boost::system::error_code ignored;
        socket_->cancel(ignored);
        socket_->release();
        socket_.reset();
    }
    socket_fd_ = -1;
}

void PgConnection::begin_connect() {
    if (stopped_)
        return;
    conn_ = PQconnectStart(conninfo_.c_str());
    if (!conn_) {
        lose("out of memory");
        return;
    }
    if (PQstatus(conn_) == CONNECTION_BAD) {
        lose(clean_message(PQerrorMessage(conn_)));
        return;
    }
    // libpq prints notices (and the server's goodbye on shutdown) to stderr; route them through the one log.
    PQsetNoticeProcessor(
        conn_,
        [](void *arg, const char *message) {
            auto *self = static_cast<PgConnection *>(arg);
            log_info("database notice", {{"connection", self->name_}, {"notice", clean_message(message)}});
        },
        this);
    state_ = State::connecting;
    poll_connect(PGRES_POLLING_WRITING);
}

void PgConnection::poll_connect(PostgresPollingStatusType status) {
    switch (status) {
        case PGRES_POLLING_FAILED:
            lose(clean_message(PQerrorMessage(conn_)));
            return;
        case PGRES_POLLING_OK:
            PQsetnonblocking(conn_, 1);
            state_ = State::idle;
            backoff_ = RECONNECT_BACKOFF_MIN;
            if (PQsocket(conn_) != socket_fd_)
                reset_descriptor();
            if (!socket_) {
                socket_fd_ = PQsocket(conn_);
                socket_ = std::make_unique<asio::posix::stream_descriptor>(io_, socket_fd_);
            }
            watch_socket(false);  // idle connections still read: notifications, and the server going away
            if (on_connected)
                on_connected();
            return;
        default:
            break;
    }
    // libpq may switch sockets while trying several hosts or SSL modes.
    if (PQsocket(conn_) != socket_fd_) {
        reset_descriptor();
        socket_fd_ = PQsocket(conn_);
        if (socket_fd_ < 0) {
            lose("no socket");
            return;
        }
        socket_ = std::make_unique<asio::posix::stream_descriptor>(io_, socket_fd_);
    }
    polling_write_ = status == PGRES_POLLING_WRITING;
    watch_socket(polling_write_);
}

void PgConnection::watch_socket(bool write) {
    if (!socket_)
        return;
    auto self = shared_from_this();
    unsigned gen = generation_;
    if (write) {
        if (writing_)
            return;
        writing_ = true;
        socket_->async_wait(asio::posix::descriptor_base::wait_write,
                            [self, gen](const boost::system::error_code &ec) {
                                if (gen != self->generation_)
                                    return;
                                self->writing_ = false;
                                if (ec == asio::error::operation_aborted)
                                    return;
                                self->on_writable();
                            });
    } else {
        if (reading_)
            return;
        reading_ = true;
        socket_->async_wait(asio::posix::descriptor_base::wait_read,
                            [self, gen](const boost::system::error_code &ec) {
                                if (gen != self->generation_)
                                    return;
                                self->reading_ = false;
                                if (ec == asio::error::operation_aborted)
                                    return;
                                self->on_readable();
                            });
    }
}

void PgConnection::on_writable() {
    if (state_ == State::connecting) {
        if (polling_write_)
            poll_connect(PQconnectPoll(conn_));
    } else if (state_ == State::busy) {
        flush();
    }
}

void PgConnection::on_readable() {
    if (state_ == State::connecting) {
        if (!polling_write_)
            poll_connect(PQconnectPoll(conn_));
        return;
    }
    if (!conn_)
        return;
    if (!PQconsumeInput(conn_)) {
        lose(clean_message(PQerrorMessage(conn_)));
        return;
    }
    drain_notifies();
    if (state_ == State::busy) {
        collect();
        return;
    }
    if (PQstatus(conn_) == CONNECTION_BAD) {
        lose(clean_message(PQerrorMessage(conn_)));
        return;
    }
    watch_socket(false);
}

void PgConnection::drain_notifies() {
    while (PGnotify *n = PQnotifies(conn_)) {
        std::string channel = n->relname ? n->relname : "";
        PQfreemem(n);
        if (on_notify)
            on_notify(channel);
        if (!conn_)
            return;
    }
}

void PgConnection::query(const std::string &sql, const PgParams &params, PgCallback on_done) {
    if (state_ != State::idle || !conn_) {
        asio::post(io_, [on_done = std::move(on_done)] { on_done(unavailable("connection not ready")); });
        return;
    }
    std::vector<const char *> values;
    values.reserve(params.size());
    for (const auto &p : params)
        values.push_back(p ? p->c_str() : nullptr);
    pending_ = std::move(on_done);
    result_ = PgResult{};
    have_error_result_ = false;
    state_ = State::busy;
    // Parameter types are left to the server: it infers them from the function signature.
    if (!PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                           nullptr, nullptr, 0)) {
        lose(clean_message(PQerrorMessage(conn_)));
        return;
    }
    flush();
}

void PgConnection::flush() {
    int r = PQflush(conn_);
    if (r < 0) {
        lose(clean_message(PQerrorMessage(conn_)));
        return;
    }
    if (r == 1)
        watch_socket(true);
    watch_socket(false);
}

void PgConnection::collect() {
    while (!PQisBusy(conn_)) {
        PGresult *res = PQgetResult(conn_);
        if (!res) {
            // Statement finished: hand the result over and take the next query.
            state_ = State::idle;
            PgResult out = std::move(result_);
            result_ = PgResult{};
            out.ok = !have_error_result_;
            auto cb = std::move(pending_);
            pending_ = nullptr;
            watch_socket(false);
            if (cb)
                asio::post(io_, [cb = std::move(cb), out = std::move(out)]() mutable { cb(std::move(out)); });
            if (on_idle)
                on_idle();
            return;
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            if (!have_error_result_) {
                int ncols = PQnfields(res), nrows = PQntuples(res);
                result_.columns.clear();
                for (int c = 0; c < ncols; ++c)
                    result_.columns.emplace_back(PQfname(res, c));
                result_.rows.clear();
                for (int r = 0; r < nrows; ++r) {
                    std::vector<std::optional<std::string>> row;
                    row.reserve(ncols);
                    for (int c = 0; c < ncols; ++c) {
                        if (PQgetisnull(res, r, c))
                            row.emplace_back(std::nullopt);
                        else
                            row.emplace_back(std::string(PQgetvalue(res, r, c), PQgetlength(res, r, c)));
                    }
                    result_.rows.push_back(std::move(row));
                }
            }
        } else if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_BAD_RESPONSE) {
            have_error_result_ = true;
            const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
            result_.sqlstate = state ? state : "";
            result_.error = clean_message(primary ? primary : PQresultErrorMessage(res));
            if (sqlstate_is_connection_error(result_.sqlstate))
                result_.unavailable = true;
        }
        PQclear(res);
    }
    if (PQstatus(conn_) == CONNECTION_BAD) {
        lose(clean_message(PQerrorMessage(conn_)));
        return;
    }
    watch_socket(false);
}

void PgConnection::lose(const std::string &reason) {
    reset_descriptor();
    if (conn_) {
        PQfinish(conn_);
        conn_ = nullptr;
    }
    bool was_up = state_ == State::idle || state_ == State::busy;
    state_ = State::disconnected;
    if (pending_) {
        auto cb = std::move(pending_);
        pending_ = nullptr;
        PgResult r = unavailable(reason);
        asio::post(io_, [cb = std::move(cb), r = std::move(r)]() mutable { cb(std::move(r)); });
    }
    if (was_up)
        log_warn("database connection lost", {{"connection", name_}, {"error", reason}});
    else
        log_debug("database connection failed", {{"connection", name_}, {"error", reason}});
    if (on_lost)
        on_lost(reason);
    schedule_reconnect();
}

void PgConnection::schedule_reconnect() {
    if (stopped_)
        return;
    auto delay = backoff_;
    backoff_ = std::min(backoff_ * 2, RECONNECT_BACKOFF_MAX);
    retry_timer_.expires_after(delay);
    auto self = shared_from_this();
    retry_timer_.async_wait([self](const boost::system::error_code &ec) {
        if (!ec)
            self->begin_connect();
    });
}

// ---- PgPool ----

PgPool::PgPool(asio::io_context &io, std::string conninfo, size_t size) : io_(io) {
    for (size_t i = 0; i < size; ++i) {
        auto c = std::make_shared<PgConnection>(io, conninfo, "pool-" + std::to_string(i));
        c->on_connected = [this] {
            dispatch();
            if (on_connected)
                on_connected();
        };
        c->on_idle = [this] { dispatch(); };
        c->on_lost = [this](const std::string &) { fail_queue_if_down(); };
        connections_.push_back(std::move(c));
    }
}

void PgPool::start() {
    for (auto &c : connections_)
        c->start();
}

void PgPool::stop() {
    for (auto &c : connections_)
        c->stop();
    fail_queue_if_down();
}

size_t PgPool::connected() const {
    size_t n = 0;
    for (const auto &c : connections_) {
        if (c->state() == PgConnection::State::idle || c->state() == PgConnection::State::busy)
            ++n;
    }
    return n;
}

void PgPool::query(std::string sql, PgParams params, PgCallback on_done, PgPriority priority) {
    if (connected() == 0 || queued() >= POOL_QUEUE_MAX) {
        asio::post(io_, [on_done = std::move(on_done)] { on_done(unavailable("database unavailable")); });
        return;
    }
    auto &line = priority == PgPriority::interactive ? interactive_ : background_;
    line.push_back(Pending{std::move(sql), std::move(params), std::move(on_done)});
    dispatch();
}

void PgPool::dispatch() {
    for (auto &c : connections_) {
        bool background_may_run = !background_.empty() && background_running_ < background_limit();
        if (interactive_.empty() && !background_may_run)
            return;
        if (c->state() != PgConnection::State::idle)
            continue;
        // Webhooks go first, except that waiting background work always gets one connection: under a flood of
        // webhooks the claims and acks that turn accepted messages into replies would otherwise starve, and
        // the backlog (and every reply's latency) would grow for as long as the flood lasts.
        bool background_starved = background_may_run && background_running_ == 0;
        if (!interactive_.empty() && !background_starved) {
            Pending p = std::move(interactive_.front());
            interactive_.pop_front();
            c->query(p.sql, p.params, std::move(p.on_done));
            continue;
        }
        Pending p = std::move(background_.front());
        background_.pop_front();
        ++background_running_;
        // The connection reports idle before this callback runs, so the slot is given back here and the
        // background line is looked at again.
        c->query(p.sql, p.params, [this, done = std::move(p.on_done)](PgResult r) {
            --background_running_;
            done(std::move(r));
            dispatch();
        });
    }
}

void PgPool::fail_queue_if_down() {
    if (connected() > 0)
        return;
    for (auto *line : {&interactive_, &background_}) {
        while (!line->empty()) {
            auto cb = std::move(line->front().on_done);
            line->pop_front();
            asio::post(io_, [cb = std::move(cb)] { cb(unavailable("database unavailable")); });
        }
    }
}

}  // namespace darkspere::worker
