// src/worker/call_handoff.hpp — the link between the inbound webhook and the job runner that lets a webhook
// take its message's agent call in the transaction that stores the message (darkspere.receive_sms_leased, or
// receive_sms_batch with take_call).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "pg_client.hpp"

namespace darkspere::worker {

// HandoffOffer — what receive_sms_leased needs to lease a call to this worker.
struct HandoffOffer {
    std::string worker;
    std::string lease;        // an interval literal
    std::string busy_agents;  // a bigint[] literal: agents whose calls must wait for a claim
};

// CallSlot — room for one agent call, reserved by an inbound webhook before its statement runs (so that many
// webhooks at once cannot overfill the worker or push one agent past its share) and given back when the last
// copy is destroyed, whether the database leased a call into it or not.
class CallSlot {
  public:
    virtual ~CallSlot() = default;
    virtual const HandoffOffer &offer() const = 0;
    // take — runs the call the statement leased to this worker (row 0 of the message's result).
    virtual void take(const PgResult &result) = 0;
};

// CallHandoff — the inbound webhook's way to the job runner; reserve returns nullptr when there is no room
// (the message's call then waits for a claim). Unset: plain receive_sms.
struct CallHandoff {
    std::function<std::shared_ptr<CallSlot>()> reserve;
};

}  // namespace darkspere::worker
