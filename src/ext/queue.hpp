// src/ext/queue.hpp — the durable job queue: enqueue and replies (enqueue.cpp), claim (claim.cpp), fenced
// acks (ack.cpp).
#pragma once

#include "ext/pg.hpp"
#include "ext/plan_gate.hpp"
#include "ext/spi_plans.hpp"

namespace darkspere {

// DS_PRIORITY_OF_ACCOUNT — the priority of the account's jobs (an SQL expression of the account, $1): -1 with
// the priority_routing feature (issue #15), else 0. claim_jobs takes jobs in priority, then id order, so
// under contention its calls and replies run before other accounts'.
#define DS_PRIORITY_OF_ACCOUNT "CASE WHEN " DS_FEATURE_NOW("$1", "'priority_routing'") " THEN -1 ELSE 0 END"

// ReceivedTurn — what receive_sms knows of a message it routes at once, so the job's trace row can also be
// the message's `received` row: its segments and its trace request id (the worker's, or msg-<message_id>);
// and the account's job priority (DS_PRIORITY_OF_ACCOUNT), read with its plan.
struct ReceivedTurn {
    int32 segments;
    const char *request_id;
    int32 priority;
};
// enqueue_agent_call — queues the turn's call (or hands it off, see handoff.cpp) and counts it on the agent.
// received: set by receive_sms (the trace row is `received` with the routing), nullptr elsewhere (`queued`).
int64 enqueue_agent_call(int64 account_id, int64 session_id, int64 message_id, int64 agent_id,
                         const ReceivedTurn *received = nullptr);
// ReplyChecks — what the caller already read about the recipient in this transaction, so enqueue_reply need
// not read it again: whether the phone opted out, whether the plan has a hard cap.
struct ReplyChecks {
    bool known;
    bool opted_out;
    bool hard_cap;
};
// enqueue_reply — stores an outbound reply (split into ≤1600-character messages, cut after
// darkspere.max_reply_segments SMS segments) and queues its sms_send jobs, unless the phone opted out or the
// plan cap is reached (then the message is stored as suppressed). body need not end with a NUL.
void enqueue_reply(int64 account_id, int64 session_id, int64 reply_to, const char *service_number,
                   const char *phone, const char *body, size_t body_len, int64 agent_id,
                   const char *request_id, const ReplyChecks *checks);
inline void enqueue_reply(int64 account_id, int64 session_id, int64 reply_to, const char *service_number,
                          const char *phone, const char *body, int64 agent_id, const char *request_id,
                          const ReplyChecks *checks = nullptr) {
    enqueue_reply(account_id, session_id, reply_to, service_number, phone, body, strlen(body), agent_id,
                  request_id, checks);
}
// DS_FAILED_MESSAGE_COLUMNS — what a statement that marks a message (alias m) failed returns, for
// enqueue_fallback_reply: the one description of a turn no agent answered (ack.cpp's dead letters, tick()'s
// expired leases in maintenance.cpp).
#define DS_FAILED_MESSAGE_COLUMNS                                                                      \
    " m.message_id, m.account_id, m.session_id, m.service_number, m.phone, m.request_id, m.direction," \
    " (SELECT a.fallback_text FROM darkspere.accounts a WHERE a.account_id = m.account_id)"
// enqueue_fallback_reply — given the row of such a statement, queues the account's fallback text as the reply
// when the message was an inbound turn and the account has one; no agent wrote it, so the reply carries no
// agent id.
void enqueue_fallback_reply(const SpiResult &failed);
// build_agent_payload — the agent_call payload of (message, agent) with the agent's signing secrets, or 0
// when the message or the agent is gone (claim.cpp).
Datum build_agent_payload(int64 account_id, int64 message_id, int64 agent_id);
// route_queued — tick()'s routing of waiting messages, accounts in turns (route_waiting.cpp); returns how
// many were routed.
int64 route_queued();
// route_message — binds a stored inbound message to an agent and queues its agent_call; returns the agent or
// 0.
int64 route_message(int64 account_id, int64 session_id, int64 message_id, int64 agent_id);

// job_complete / job_fail — the fenced acks of complete_job / fail_job: false, changing nothing, when
// (job_id, attempt) no longer holds the lease.
bool job_complete(int64 job_id, int32 attempt, Jsonb *result);
bool job_fail(int64 job_id, int32 attempt, const char *error, bool retryable);

}  // namespace darkspere
