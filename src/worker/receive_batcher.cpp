// src/worker/receive_batcher.cpp — inbound SMS statements, alone or batched (see receive_batcher.hpp).
#include "receive_batcher.hpp"

#include <nlohmann/json.hpp>

#include "log.hpp"

namespace darkspere::worker {

namespace {

const char *const SQL_RECEIVE_SMS =
    "SELECT disposition, session_id, message_id, agent_id, reply "
    "FROM darkspere.receive_sms($1, $2, $3, $4, $5, $6, $7)";
// The same, for a worker with room: a routed message's agent call comes back leased to it.
const char *const SQL_RECEIVE_SMS_LEASED =
    "SELECT disposition, session_id, message_id, agent_id, reply, job_id, attempt, payload "
    "FROM darkspere.receive_sms_leased($1, $2, $3, $4, $5, $6, $7, $8, $9::interval, $10::bigint[])";
// Many messages in one statement; without a worker ($2 NULL) no call is leased.
const char *const SQL_RECEIVE_SMS_BATCH =
    "SELECT ord, disposition, session_id, message_id, agent_id, reply, job_id, attempt, payload "
    "FROM darkspere.receive_sms_batch($1::jsonb, $2, $3::interval, $4::bigint[]) ORDER BY ord";

// The delegated path (set_delegated): the number's account, then the message stored through the entry point
// Citus runs whole on that account's node. The FROM form is the one Citus delegates.
const char *const SQL_NUMBER_ACCOUNT = "SELECT darkspere.number_account($1, $2)";
const char *const SQL_RECEIVE_SMS_FOR =
    "SELECT disposition, session_id, message_id, agent_id, reply "
    "FROM darkspere.receive_sms_for($1::bigint, $2, $3, $4, $5, $6, $7, $8)";

// moved_number — receive_sms_for's refusal of a number that is not the given account's (22023): the number
// moved since it was looked up.
bool moved_number(const PgResult &r) {
    return !r.ok && r.sqlstate == "22023" && r.error.find("is not a number of account") != std::string::npos;
}

// number_key — the key of a message's number in the batcher's account map: its AccountSid and our number.
std::string number_key(const PgParams &args) {
    return args[0].value_or("") + '\0' + args[1].value_or("");
}

const char *const ARG_NAMES[] = {"provider_account", "to_number", "from_number", "body",
                                 "message_sid",      "num_media", "request_id"};

// append_offer — the hand-off arguments (worker, lease, busy agents) a reserved call slot offers.
void append_offer(PgParams &params, const CallSlot &slot) {
    params.push_back(slot.offer().worker);
    params.push_back(slot.offer().lease);
    params.push_back(slot.offer().busy_agents);
}

// one_row — row `row` of a batch result as a result of its own (the columns but ord).
PgResult one_row(const PgResult &batch, size_t row) {
    PgResult r;
    r.ok = true;
    r.columns.assign(batch.columns.begin() + 1, batch.columns.end());
    r.rows.emplace_back(batch.rows[row].begin() + 1, batch.rows[row].end());
    return r;
}

}  // namespace

std::optional<std::string> receive_batch_json(const std::vector<const InboundSms *> &messages) {
    nlohmann::json out = nlohmann::json::array();
    for (const InboundSms *m : messages) {
        nlohmann::json item = nlohmann::json::object();
        for (size_t i = 0; i < std::size(ARG_NAMES) && i < m->args.size(); ++i) {
            // As text, like the parameters of the single statement: the database parses num_media.
            if (m->args[i])
                item[ARG_NAMES[i]] = *m->args[i];
        }
        item["take_call"] = m->slot != nullptr;
        out.push_back(std::move(item));
    }
    try {
        return out.dump();
    } catch (const nlohmann::json::type_error &) {
        return std::nullopt;  // text that is not UTF-8: stored alone, the database refuses it with a 400
    }
}

void ReceiveBatcher::submit(InboundSms sms, PgCallback done) {
    if (has_turn()) {
        run_alone({std::move(sms), std::move(done)}, true);
        return;
    }
    if (waiting_.size() >= RECEIVE_WAITING_MAX) {
        PgResult r;
        r.unavailable = true;
        r.error = "too many messages waiting for the database";
        done(std::move(r));
        return;
    }
    waiting_.push_back({std::move(sms), std::move(done)});
}

void ReceiveBatcher::pump() {
    while (!waiting_.empty() && has_turn()) {
        if (waiting_.size() == 1 || delegated_) {
            Waiting w = std::move(waiting_.front());
            waiting_.pop_front();
            run_alone(std::move(w), true);
            continue;
        }
        std::vector<Waiting> batch;
        while (!waiting_.empty() && batch.size() < RECEIVE_BATCH_MAX) {
            batch.push_back(std::move(waiting_.front()));
            waiting_.pop_front();
        }
        run_batch(std::move(batch));
    }
}

// run_alone — one message, one statement, in a turn of its own (`counted`) or in its batch's.
void ReceiveBatcher::run_alone(Waiting w, bool counted) {
    if (counted)
        ++running_;
    store_alone(std::make_shared<Waiting>(std::move(w)), counted, 1);
}

// store_alone — runs the message's statement; one that lost a lock conflict runs again (a webhook answered
// 500 is not retried by Twilio without a fallback URL, so giving up here would lose the text).
void ReceiveBatcher::store_alone(std::shared_ptr<Waiting> w, bool counted, int attempt) {
    if (delegated_) {
        store_delegated(std::move(w), counted, attempt);
        return;
    }
    const InboundSms &sms = w->sms;
    PgParams params = sms.args;
    if (sms.slot)
        append_offer(params, *sms.slot);
    pool_.query(
        sms.slot ? SQL_RECEIVE_SMS_LEASED : SQL_RECEIVE_SMS, std::move(params),
        [this, counted, attempt, w](PgResult r) {
            if (!r.ok && !r.unavailable && sqlstate_is_lock_conflict(r.sqlstate) &&
                attempt < RECEIVE_CONFLICT_ATTEMPTS) {
                log_warn("receive_sms lost a lock conflict; storing the message again",
                         {{"sqlstate", r.sqlstate},
                          {"attempt", attempt},
                          {"message_sid", w->sms.args[4].value_or("")}});
                store_alone(w, counted, attempt + 1);
                return;
            }
            w->done(std::move(r));
            if (counted) {
                --running_;
                pump();
            }
        },
        PgPriority::interactive);
}

void ReceiveBatcher::finish(const std::shared_ptr<Waiting> &w, bool counted, PgResult r) {
    w->done(std::move(r));
    if (counted) {
        --running_;
        pump();
    }
}

void ReceiveBatcher::remember_account(const std::string &key, const std::string &account) {
    if (accounts_.size() >= NUMBER_ACCOUNTS_MAX)
        accounts_.clear();
    accounts_[key] = {account, std::chrono::steady_clock::now() + NUMBER_ACCOUNT_TTL};
}

// store_delegated — the message through receive_sms_for with its number's account (known, or looked up); a
// number that is no AccountSid's goes to receive_sms, which answers unknown_number as it always does.
void ReceiveBatcher::store_delegated(std::shared_ptr<Waiting> w, bool counted, int attempt) {
    w->sms.slot.reset();  // no hand-off: the call is queued on the tenant's node
    const PgParams &args = w->sms.args;
    std::string key = number_key(args);
    auto known = accounts_.find(key);
    if (known != accounts_.end() && known->second.until > std::chrono::steady_clock::now()) {
        store_for_account(std::move(w), counted, attempt, known->second.account);
        return;
    }
    pool_.query(
        SQL_NUMBER_ACCOUNT, {args[0], args[1]},
        [this, w, counted, attempt, key](PgResult r) {
            if (!r.ok) {
                finish(w, counted, std::move(r));
                return;
            }
            std::optional<std::string> account = r.rows.empty() ? std::nullopt : r.value(0, "number_account");
            if (!account) {
                // Not a number of this AccountSid: receive_sms answers for it (unknown_number), storing
                // nothing.
                pool_.query(
                    SQL_RECEIVE_SMS, w->sms.args,
                    [this, w, counted](PgResult unknown) { finish(w, counted, std::move(unknown)); },
                    PgPriority::interactive);
                return;
            }
            remember_account(key, *account);
            store_for_account(w, counted, attempt, *account);
        },
        PgPriority::interactive);
}

void ReceiveBatcher::store_for_account(std::shared_ptr<Waiting> w, bool counted, int attempt,
                                       const std::string &account) {
    PgParams params{account};
    params.insert(params.end(), w->sms.args.begin(), w->sms.args.end());
    pool_.query(
        SQL_RECEIVE_SMS_FOR, std::move(params),
        [this, w, counted, attempt](PgResult r) {
            bool again = !r.ok && !r.unavailable && attempt < RECEIVE_CONFLICT_ATTEMPTS &&
                         (sqlstate_is_lock_conflict(r.sqlstate) || moved_number(r));
            if (again) {
                log_warn("receive_sms_for did not store the message; storing it again",
                         {{"sqlstate", r.sqlstate},
                          {"error", r.error},
                          {"attempt", attempt},
                          {"message_sid", w->sms.args[4].value_or("")}});
                if (moved_number(r))
                    accounts_.erase(number_key(w->sms.args));
                store_delegated(w, counted, attempt + 1);
                return;
            }
            finish(w, counted, std::move(r));
        },
        PgPriority::interactive);
}

void ReceiveBatcher::run_batch(std::vector<Waiting> batch) {
    auto shared = std::make_shared<std::vector<Waiting>>(std::move(batch));
    std::vector<const InboundSms *> messages;
    const CallSlot *offering = nullptr;  // the newest reservation's offer speaks for the batch
    for (const Waiting &w : *shared) {
        messages.push_back(&w.sms);
        if (w.sms.slot)
            offering = w.sms.slot.get();
    }
    ++running_;
    std::optional<std::string> json = receive_batch_json(messages);
    if (!json) {
        run_one_by_one(shared, 0);
        return;
    }
    PgParams params{std::move(*json)};
    if (offering)
        append_offer(params, *offering);
    else
        params.insert(params.end(), {std::nullopt, std::nullopt, std::nullopt});
    metrics_.receive_batch_size.observe(static_cast<double>(shared->size()));
    pool_.query(
        SQL_RECEIVE_SMS_BATCH, std::move(params),
        [this, shared](PgResult r) {
            std::vector<Waiting> &batch = *shared;
            if (r.ok && r.rows.size() == batch.size()) {
                for (size_t i = 0; i < batch.size(); ++i)
                    batch[i].done(one_row(r, i));
            } else if (r.ok || r.unavailable) {
                // Committed but not answered row for row (cannot happen), or the database is unreachable:
                // storing again would not help, so every webhook gets the failure.
                if (r.ok) {
                    r.ok = false;
                    r.error = "receive_sms_batch returned " + std::to_string(r.rows.size()) + " rows for " +
                              std::to_string(batch.size()) + " messages";
                    log_error("receive_sms_batch answered the wrong number of rows", {{"error", r.error}});
                }
                for (Waiting &w : batch)
                    w.done(r);
            } else {
                // One bad message (or a deadlock with another batch) must not fail the others.
                ++metrics_.receive_batch_fallbacks;
                std::string sids;
                for (const Waiting &w : batch)
                    sids += (sids.empty() ? "" : ",") + w.sms.args[4].value_or("");
                log_warn("receive_sms_batch failed; storing its messages one by one",
                         {{"messages", static_cast<unsigned long long>(batch.size())},
                          {"message_sids", sids},
                          {"sqlstate", r.sqlstate},
                          {"error", r.error}});
                run_one_by_one(shared, 0);
                return;
            }
            --running_;
            pump();
        },
        PgPriority::interactive);
}

// run_one_by_one — the batch's messages from `next` on, each alone and after the one before (in the batch's
// own turn, so the statements at once stay within concurrency and one phone's messages keep their order).
void ReceiveBatcher::run_one_by_one(std::shared_ptr<std::vector<Waiting>> batch, size_t next) {
    if (next == batch->size()) {
        --running_;
        pump();
        return;
    }
    Waiting w = std::move((*batch)[next]);
    w.done = [this, batch, next, answer = std::move(w.done)](PgResult r) {
        answer(std::move(r));
        run_one_by_one(batch, next + 1);
    };
    run_alone(std::move(w), false);
}

}  // namespace darkspere::worker
