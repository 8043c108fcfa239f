// src/ext/trace.hpp — the steps of a message recorded in darkspere.trace_events (issue #14); most are written
// by the statements that take the step (inbound.cpp, enqueue.cpp, claim.cpp, ack.cpp, delivery.cpp), these
// helpers cover the steps no existing statement writes.
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

// DS_TRACE_REQUEST — a message's request id as traces key it (alias m): the worker's, else one made from the
// inbound message's id (the claim payload's fallback; a reply points at its inbound message).
// The explicit ::text keeps it immutable (text || bigint is only stable), which Citus requires in a
// distributed statement's RETURNING.
#define DS_TRACE_REQUEST "COALESCE(m.request_id, 'msg-' || COALESCE(m.reply_to, m.message_id)::text)"

// trace_received — `received` for a message that was not stored (duplicate, rate_limited, blocked,
// over_quota); nothing without a request id.
void trace_received(int64 account_id, const char *request_id, int64 message_id, const char *disposition);
// trace_stored — `received` for an inbound message stored but not routed at once (queued, opted_out, a
// keyword, mcp_not_in_plan), keyed by request_id or, without one, by the message ("msg-<id>").
void trace_stored(int64 account_id, const char *request_id, int64 message_id, const char *disposition,
                  int32 segments);
// trace_request — the request id a message's trace rows are keyed by (DS_TRACE_REQUEST), allocated in the
// current memory context; nullptr when the message is gone.
char *trace_request(int64 account_id, int64 message_id);
// trace_job_failed — a failed attempt (<kind>_finished with ok false) and what follows it: `failover` (to
// next_agent), `retry` or `dead_lettered`; nothing when the message is gone. reason: why, when the worker did
// not report the failure itself (tick()'s "lease_expired").
void trace_job_failed(int64 account_id, int64 message_id, int64 job_id, int32 attempt, const char *kind,
                      int64 agent_id, const char *error, bool retryable, const char *next_step,
                      int64 next_agent, double delay_s, const char *reason = nullptr);
// trace_no_reply — `no_reply` for an answered turn that sends nothing (the agent's reply was empty, or
// missing with no fallback text): without it the timeline would stop at agent_call_finished with no reason.
void trace_no_reply(int64 account_id, const char *request_id, int64 message_id, int64 agent_id,
                    const char *reason);
// trace_prune — one retention batch (darkspere.trace_retention); returns the rows deleted.
int64 trace_prune(int retention_s, int batch);

}  // namespace darkspere
