// src/worker/receive_batcher.hpp — inbound SMS statements: one by one while the database keeps up, together
// when they have to wait.
//
// Every inbound webhook needs one statement that stores its message (receive_sms, or receive_sms_leased when
// the worker has room to take the message's agent call). A webhook statement is mostly per-transaction cost
// (begin, locks on a dozen tables, commit, a round trip), so under load the batcher runs at most
// `concurrency` of them at once and lets the messages that arrive meanwhile wait here; the next statement
// takes every message that waited (up to RECEIVE_BATCH_MAX) in one darkspere.receive_sms_batch call. A
// message that finds a statement free goes at once, alone, so an idle worker answers exactly as fast as
// before. If a batch fails for any reason but an unavailable database (a bad message, a deadlock), its
// messages are sent again one by one, so one bad message fails only its own webhook.
#pragma once

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "call_handoff.hpp"
#include "metrics.hpp"
#include "pg_pool.hpp"

namespace darkspere::worker {

// Messages per receive_sms_batch statement at most.
constexpr size_t RECEIVE_BATCH_MAX = 100;
// Messages that may wait for a statement; beyond this a webhook is answered "unavailable" at once. (Each
// waits on an open HTTP connection, so max-connections, 1024 by default, bounds the waiting first.)
constexpr size_t RECEIVE_WAITING_MAX = 20000;
// A message's single statement aborted by a lock conflict (deadlock, serialization failure) is run again, at
// most this many times in all: the aborted transaction changed nothing and the statement is idempotent by
// MessageSid.
constexpr int RECEIVE_CONFLICT_ATTEMPTS = 3;
// How long a number's account is kept by a delegating batcher (set_delegated), and for how many numbers at
// most (beyond, the map starts afresh). A number moved to another account meanwhile is refused by
// receive_sms_for (22023) and looked up again at once, so a stale entry costs one statement, never a
// misplaced text.
constexpr std::chrono::seconds NUMBER_ACCOUNT_TTL{30};
constexpr size_t NUMBER_ACCOUNTS_MAX = 100000;

// InboundSms — receive_sms's seven arguments (provider_account, to_number, from_number, body, message_sid,
// num_media, request_id) and the call slot reserved for the message, if any.
struct InboundSms {
    PgParams args;
    std::shared_ptr<CallSlot> slot;
};

// receive_batch_json — the messages argument of receive_sms_batch (take_call true where a slot is reserved);
// nullopt when a field is not valid UTF-8 (those messages are stored one by one, and the database refuses the
// bad one exactly as alone).
std::optional<std::string> receive_batch_json(const std::vector<const InboundSms *> &messages);

class ReceiveBatcher {
  public:
    // concurrency — receive statements at most in flight at once (read at every decision).
    ReceiveBatcher(PgClient &pool, Metrics &metrics, std::function<size_t()> concurrency)
        : pool_(pool), metrics_(metrics), concurrency_(std::move(concurrency)) {}

    // submit — stores the message; done gets a one-row result with receive_sms_leased's columns (job_id,
    // attempt and payload only when the slot was given a call), or the failure.
    void submit(InboundSms sms, PgCallback done);

    size_t waiting() const { return waiting_.size(); }

    // set_delegated — on Citus with one queue per node (docs/scaling.md): each message is stored alone
    // through darkspere.receive_sms_for with its number's account, which Citus runs whole on that account's
    // node; no batches and no hand-offs (a reserved call slot is released). The account comes from
    // darkspere.number_account, kept for NUMBER_ACCOUNT_TTL.
    void set_delegated(bool delegated) { delegated_ = delegated; }
    bool delegated() const { return delegated_; }

  private:
    struct Waiting {
        InboundSms sms;
        PgCallback done;
    };
    bool has_turn() const { return running_ < std::max<size_t>(1, concurrency_()); }
    void pump();
    void run_alone(Waiting w, bool counted);
    void store_alone(std::shared_ptr<Waiting> w, bool counted, int attempt);
    void run_batch(std::vector<Waiting> batch);
    void run_one_by_one(std::shared_ptr<std::vector<Waiting>> batch, size_t next);
    // The delegated path (set_delegated): the number's account, then receive_sms_for.
    void store_delegated(std::shared_ptr<Waiting> w, bool counted, int attempt);
    void store_for_account(std::shared_ptr<Waiting> w, bool counted, int attempt, const std::string &account);
    void finish(const std::shared_ptr<Waiting> &w, bool counted, PgResult r);
    void remember_account(const std::string &key, const std::string &account);

    PgClient &pool_;
    Metrics &metrics_;
    std::function<size_t()> concurrency_;
    std::deque<Waiting> waiting_;
    size_t running_ = 0;
    bool delegated_ = false;
    struct KnownAccount {
        std::string account;
        std::chrono::steady_clock::time_point until;
    };
    std::map<std::string, KnownAccount> accounts_;  // key: AccountSid, NUL, our number
};

}  // namespace darkspere::worker
