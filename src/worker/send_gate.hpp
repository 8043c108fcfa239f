// src/worker/send_gate.hpp — at most N Messages API requests open per Twilio account, the rest waiting, and
// the open slots shared fairly between DarkSpere tenants.
//
// Why: Twilio refuses (429, error 20429) an account that has too many REST requests open at once
// (docs/protocols.md#twilio-messages-api), and a burst of one tenant's replies — 2,000 slow agent answers
// arriving together — would otherwise go out as 2,000 requests at once, putting every other tenant's reply
// behind them at Twilio. Here the waiting sends queue per tenant (the job's `account_id`) and a freed slot
// goes to the tenants in turn: a reply waits for one slot per other tenant that has sends waiting, never for
// a whole burst.
//
// A send must not start so late that its lease could expire before it finishes (another worker would send it
// again): one that has waited longer than its max_wait is handed back (`expired`) instead of started.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "fair_queue.hpp"

namespace darkspere::worker {

class SendGate {
  public:
    using Clock = std::chrono::steady_clock;
    // A held slot; the slot is free again when the last copy is destroyed.
    using Permit = std::shared_ptr<void>;
    using Start = std::function<void(Permit)>;
    using Expired = std::function<void(Clock::duration waited)>;

    // limit() is read at every decision, so a reloaded configuration applies at once.
    SendGate(boost::asio::io_context &io, std::function<long()> limit);
    ~SendGate();
    SendGate(const SendGate &) = delete;
    SendGate &operator=(const SendGate &) = delete;

    // enter — runs start(permit) inside this call when `account` has a free slot; otherwise the send waits
    // and start runs from the event loop when a slot is its turn, or expired(waited) runs instead once it has
    // waited longer than max_wait. Exactly one of the two runs.
    void enter(const std::string &account, const std::string &tenant, Clock::duration max_wait, Start start,
               Expired expired);

    long waiting() const;                         // sends waiting for a slot, every account
    long open(const std::string &account) const;  // slots held for `account`

  private:
    struct Waiting {
        Clock::time_point since;
        Clock::duration max_wait;
        Start start;
        Expired expired;
    };
    struct Account {
        long open = 0;
        FairQueue<Waiting> waiting;  // by tenant
    };
    class Slot;

    Permit take_slot(const std::string &account);
    void released(const std::string &account);
    void admit(const std::string &account);

    boost::asio::io_context &io_;
    std::function<long()> limit_;
    std::map<std::string, Account> accounts_;
    long waiting_ = 0;
    // Slots may outlive the gate (held by an HTTP transfer torn down later); they check this first.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace darkspere::worker
