// src/worker/job_runner_ack.cpp — the ack pipeline: outcomes batched tenants in turn into ack_jobs statements
// (with an express lane beside a running batch), the sends those statements hand back, the one-by-one
// fallback, refusals, and acks parked while the database is away (see job_runner.hpp).
#include "job_runner.hpp"

#include <algorithm>
#include <charconv>

#include "job_runner_internal.hpp"
#include "log.hpp"

namespace darkspere::worker {

using std::chrono::milliseconds;
using namespace job_runner_internal;

constexpr milliseconds PARK_BACKOFF_MAX{5000};

namespace {

// read_ack_answers — the (index, accepted) of each ack row of an ack_jobs result for a batch of n acks; false
// when an ord is not one of 1..n (ack_jobs numbers its rows 1..n in the order given).
bool read_ack_answers(const PgResult &r, size_t n, std::vector<std::pair<size_t, bool>> *answers) {
    for (size_t i = 0; i < r.rows.size(); ++i) {
        std::optional<std::string> text = r.value(i, "ord");
        if (!text)
            continue;  // a handed-off job, not an ack
        size_t ord = 0;
        const char *first = text->data(), *last = first + text->size();
        auto [end, ec] = std::from_chars(first, last, ord);
        if (ec != std::errc() || end != last || ord < 1 || ord > n)
            return false;
        answers->emplace_back(ord - 1, r.value(i, "accepted").value_or("f") == "t");
    }
    return true;
}

}  // namespace

bool transient_sqlstate(const std::string &s) {
    if (s.size() != 5)
        return false;
    std::string cls = s.substr(0, 2);
    return cls == "08" || cls == "40" || cls == "53" || s.compare(0, 4, "57P0") == 0 || s == "55P03" ||
           s == "57014";
}

void JobRunner::queue_ack(Ack ack) {
    std::string tenant = ack.tenant;
    ack_queue_.push(tenant, std::move(ack));
    flush_acks();
}

void JobRunner::flush_acks() {
    if (ack_queue_.empty())
        return;
    if (!ack_batch_running_) {
        std::vector<Ack> batch;
        batch.reserve(std::min(ack_queue_.size(), ACK_BATCH_MAX));
        batch_tenants_.clear();
        while (!ack_queue_.empty() && batch.size() < ACK_BATCH_MAX) {
            batch.push_back(ack_queue_.pop());
            batch_tenants_.insert(batch.back().tenant);
        }
        send_ack_batch(std::move(batch), false);
    } else if (!ack_express_running_) {
        std::vector<Ack> batch = ack_queue_.take_light(
            ACK_EXPRESS_PER_TENANT_MAX, ACK_EXPRESS_MAX,
            [this](const std::string &tenant) { return batch_tenants_.count(tenant) > 0; });
        if (!batch.empty())
            send_ack_batch(std::move(batch), true);
    }
}

// ack_rows — the JSON parameter of SQL_ACK_BATCH.
std::string JobRunner::ack_rows(const std::vector<Ack> &acks) {
    nlohmann::json rows = nlohmann::json::array();
    for (const Ack &a : acks) {
        nlohmann::json row = {{"job_id", a.job_id}, {"attempt", a.attempt}, {"complete", a.complete}};
        if (a.complete) {
            row["result"] = a.result;
        } else {
            row["error"] = a.error;
            row["retryable"] = a.retryable;
        }
        rows.push_back(std::move(row));
    }
    // Invalid UTF-8 from an agent or provider is replaced, never a reason to lose the ack.
    return rows.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<std::optional<std::string>> JobRunner::ack_params(std::string rows) const {
    RunnerSettings s = settings_();
    // Room for handed-off sends: the free in-flight slots, none while draining.
    long room = stopping_ ? 0 : std::max(0L, free_slots(s));
    return {std::move(rows), s.worker_name, std::to_string(s.lease_seconds) + " seconds",
            std::to_string(room)};
}

void JobRunner::send_ack_batch(std::vector<Ack> batch, bool express) {
    metrics_.ack_batch_size.observe(static_cast<double>(batch.size()));
    std::sort(batch.begin(), batch.end(), [](const Ack &a, const Ack &b) { return a.job_id < b.job_id; });
    (express ? ack_express_running_ : ack_batch_running_) = true;
    // Built before the call: the callback below takes `batch` by move, and argument order is unspecified.
    std::vector<std::optional<std::string>> params = ack_params(ack_rows(batch));
    auto sent = std::chrono::steady_clock::now();
    query(SQL_ACK_BATCH, std::move(params),
          [this, sent, express, batch = std::move(batch)](PgResult r) mutable {
              metrics_.ack_batch_seconds.observe(seconds_since(sent));
              (express ? ack_express_running_ : ack_batch_running_) = false;
              ack_batch_done(std::move(batch), std::move(r));
              flush_acks();
          });
}

void JobRunner::ack_batch_done(std::vector<Ack> batch, PgResult r) {
    // The hand-offs committed with the acks: run them whatever the ack rows say.
    size_t acks = r.ok ? take_handed_off(r) : 0;
    std::vector<std::pair<size_t, bool>> answers;  // (index in batch, accepted)
    if (r.ok && acks == batch.size() && read_ack_answers(r, batch.size(), &answers)) {
        for (auto [k, accepted] : answers) {
            --acks_sending_;
            ack_accepted(batch[k], accepted);
        }
        check_drained();
        return;
    }
    if (r.unavailable) {
        for (Ack &a : batch)
            park(std::move(a));
        return;
    }
    // An SQL error (a deadlock with another worker's batch, one ack the database refuses) rolled the whole
    // batch back: each ack goes again on its own, so one bad ack cannot hold the others hostage.
    ++metrics_.ack_batch_fallbacks;
    std::string error = !r.ok                  ? r.error
                        : acks != batch.size() ? "the batch returned " + std::to_string(acks) + " ack rows"
                                               : "the batch returned an ack row with a bad ord";
    log_warn("ack batch failed; acking one by one",
             {{"acks", batch.size()}, {"sqlstate", r.sqlstate}, {"error", error}});
    for (Ack &a : batch)
        send_ack(std::move(a));
}

size_t JobRunner::take_handed_off(const PgResult &r) {
    size_t acks = 0;
    for (size_t i = 0; i < r.rows.size(); ++i) {
        if (r.value(i, "ord")) {
            ++acks;
            continue;
        }
        if (std::optional<ClaimedJob> job = job_from_row(r, i))
            run_handed_off(std::move(*job));
        else
            unreadable_row("ack_jobs", r, i);
    }
    return acks;
}

void JobRunner::ack_accepted(const Ack &ack, bool accepted) {
    if (accepted) {
        metrics_.count_job(job_kind_label(ack.kind), ack.outcome);
        if (ack.complete)
            ++completed_total_;
        else
            ++failed_total_;
    } else {
        // Fenced: another attempt owns the job now (our lease expired) or it already finished.
        metrics_.count_job(job_kind_label(ack.kind), "lease_lost");
        ++lease_lost_total_;
        log_warn("ack refused: lease lost, outcome dropped",
                 {{"request_id", ack.request_id}, {"job_id", ack.job_id}, {"attempt", ack.attempt}});
    }
}

void JobRunner::send_ack(Ack ack) {
    if (ack.opt_out) {
        auto [from, to] = *ack.opt_out;
        query(SQL_OPT_OUT, {from, to}, [this, ack = std::move(ack)](PgResult r) mutable {
            if (r.ok) {
                ack.opt_out.reset();
                send_ack(std::move(ack));
            } else {
                if (!r.unavailable)
                    ++ack.sql_errors;
                log_warn("record_provider_opt_out failed",
                         {{"request_id", ack.request_id}, {"job_id", ack.job_id}, {"error", r.error}});
                park(std::move(ack));
            }
        });
        return;
    }
    // A statement of its own: an SQL error here concerns this ack only.
    std::vector<std::optional<std::string>> params = ack_params(ack_rows({ack}));
    query(SQL_ACK_BATCH, std::move(params), [this, ack = std::move(ack)](PgResult r) mutable {
        bool final_failure = !ack.complete && !ack.retryable;
        if (!r.ok && !r.unavailable && !r.sqlstate.empty() && !transient_sqlstate(r.sqlstate) &&
            !final_failure && ++ack.refusals >= ACK_REFUSALS_MAX) {
            log_error("ack refused by the database; failing the job for good",
                      {{"request_id", ack.request_id},
                       {"job_id", ack.job_id},
                       {"attempt", ack.attempt},
                       {"sqlstate", r.sqlstate},
                       {"error", r.error}});
            metrics_.count_job(job_kind_label(ack.kind), "ack_refused");
            send_ack(refused_ack(ack, r));
            return;
        }
        if (!r.ok) {
            if (!r.unavailable)
                ++ack.sql_errors;
            log_warn("ack failed; will retry", {{"request_id", ack.request_id},
                                                {"job_id", ack.job_id},
                                                {"attempt", ack.attempt},
                                                {"sqlstate", r.sqlstate},
                                                {"error", r.error}});
            park(std::move(ack));
            return;
        }
        take_handed_off(r);
        --acks_sending_;
        bool accepted = false;
        for (size_t i = 0; i < r.rows.size(); ++i) {
            if (r.value(i, "ord"))
                accepted = r.value(i, "accepted").value_or("f") == "t";
        }
        ack_accepted(ack, accepted);
        check_drained();
    });
}

JobRunner::Ack JobRunner::refused_ack(const Ack &ack, const PgResult &r) {
    Ack f = ack_of(ack);
    f.complete = false;
    f.retryable = false;
    f.outcome = "failed";
    f.error = "the database refused the job's ack (SQLSTATE " + r.sqlstate + "): " + r.error;
    return f;
}

void JobRunner::park(Ack ack) {
    if (ack.sql_errors > ACK_SQL_ERROR_RETRIES) {
        --acks_sending_;
        metrics_.count_job(job_kind_label(ack.kind), "ack_dropped");
        log_error("ack dropped after repeated SQL errors",
                  {{"request_id", ack.request_id}, {"job_id", ack.job_id}, {"attempt", ack.attempt}});
        check_drained();
        return;
    }
    --acks_sending_;
    parked_.push_back(std::move(ack));
    metrics_.acks_pending = static_cast<long>(parked_.size());
    if (park_timer_armed_)
        return;
    park_timer_armed_ = true;
    park_timer_.expires_after(park_backoff_);
    park_backoff_ = std::min(park_backoff_ * 2, PARK_BACKOFF_MAX);
    park_timer_.async_wait([this](const boost::system::error_code &ec) {
        park_timer_armed_ = false;
        if (!ec)
            retry_parked();
    });
}

void JobRunner::retry_parked() {
    if (parked_.empty()) {
        park_backoff_ = milliseconds(100);
        return;
    }
    if (pool_.connected() == 0) {
        // Still down: wait for the next backoff step or the reconnect hook.
        if (!park_timer_armed_) {
            Ack a = std::move(parked_.front());
            parked_.pop_front();
            ++acks_sending_;
            park(std::move(a));
        }
        return;
    }
    std::deque<Ack> batch;
    batch.swap(parked_);
    metrics_.acks_pending = 0;
    for (auto &a : batch) {
        ++acks_sending_;
        if (a.opt_out || a.sql_errors > 0)
            send_ack(std::move(a));  // alone: it needs a statement of its own, or failed in a batch before
        else
            queue_ack(std::move(a));
    }
}

}  // namespace darkspere::worker
