// src/ext/trace.cpp — trace rows no existing statement writes: unstored dispositions, failed attempts, and
// the retention of darkspere.trace_events (see trace.hpp; SQL functions trace/trace_message/latency are in
// the upgrade script).
#include "ext/trace.hpp"
#include "ext/settings.hpp"
#include "ext/spi_plans.hpp"

namespace darkspere {

// `received` for one inbound text: $1 account, $2 request id (NULL: keyed by the message, "msg-<id>"),
// $3 message (NULL: not stored), $4 disposition, $5 segments (NULL: not counted, -1 in C). A
// statement of its own, not part of the message's INSERT: Citus turns the rows of a data-modifying CTE into
// an intermediate result sent to every node, which made each text a transaction over all of them.
static Statement kTraceReceived = {
    "INSERT INTO darkspere.trace_events (account_id, request_id, step, detail)"
    " VALUES ($1, COALESCE($2, 'msg-' || $3::bigint), 'received',"
    "         pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
    "             'disposition', $4::text, 'message_id', $3::bigint, 'segments', $5::int)))",
    5,
    {INT8OID, TEXTOID, INT8OID, TEXTOID, INT4OID},
    nullptr};

static void trace_received_row(int64 account_id, const char *request_id, int64 message_id,
                               const char *disposition, int32 segments) {
    Datum args[5] = {Int64GetDatum(account_id), request_id != nullptr ? text_datum(request_id) : (Datum)0,
                     Int64GetDatum(message_id), text_datum(disposition), Int32GetDatum(segments)};
    char nulls[5] = {' ', null_flag(request_id == nullptr), null_flag(message_id == 0), ' ',
                     null_flag(segments < 0)};
    spi_run(kTraceReceived, args, nulls, false, 0);
}

void trace_received(int64 account_id, const char *request_id, int64 message_id, const char *disposition) {
    if (request_id == nullptr || account_id == 0) {
        return;
    }
    trace_received_row(account_id, request_id, message_id, disposition, -1);
}

void trace_stored(int64 account_id, const char *request_id, int64 message_id, const char *disposition,
                  int32 segments) {
    trace_received_row(account_id, request_id, message_id, disposition, segments);
}

// The request id a message's trace rows are keyed by; no row when the message is gone.
static Statement kTraceRequest = {"SELECT " DS_TRACE_REQUEST
                                  " FROM darkspere.messages m WHERE m.message_id = $1 AND m.account_id = $2",
                                  2,
                                  {INT8OID, INT8OID},
                                  nullptr};

char *trace_request(int64 account_id, int64 message_id) {
    Datum key[2] = {Int64GetDatum(message_id), Int64GetDatum(account_id)};
    SpiResult request = spi_run(kTraceRequest, key, nullptr, true, 1);
    return request.empty() ? nullptr : request.text_copy(0, 1, CurrentMemoryContext);
}

// $1 message, $2 job, $3 attempt, $4 kind, $5 agent, $6 error (first 500 characters kept), $7 retryable,
// $8 next step, $9 next agent, $10 delay in seconds, $11 account, $12 request id, $13 the agent the job moves
// from (NULL when it does not move), $14 why (NULL: the worker reported the failure). Plain VALUES: Citus
// pushes no INSERT … SELECT whose source has a VALUES list with non-immutable functions (jsonb_build_object).
static Statement kTraceJobFailed = {
    "INSERT INTO darkspere.trace_events (account_id, request_id, step, agent_id, detail) VALUES"
    "  ($11, $12, $4 || '_finished', $5, pg_catalog.jsonb_build_object('ok', false, 'job_id', $2,"
    "      'attempt', $3, 'error', pg_catalog.left($6, 500), 'retryable', $7, 'message_id', $1)),"
    "  ($11, $12, $8, $9, pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('job_id', $2,"
    "      'from_agent', $13, 'to_agent', $9, 'delay_s', pg_catalog.round($10::numeric, 3), 'reason', $14)))",
    14,
    {INT8OID, INT8OID, INT4OID, TEXTOID, INT8OID, TEXTOID, BOOLOID, TEXTOID, INT8OID, FLOAT8OID, INT8OID,
     TEXTOID, INT8OID, TEXTOID},
    nullptr};

void trace_job_failed(int64 account_id, int64 message_id, int64 job_id, int32 attempt, const char *kind,
                      int64 agent_id, const char *error, bool retryable, const char *next_step,
                      int64 next_agent, double delay_s, const char *reason) {
    if (message_id == 0) {
        return;
    }
    char *request_id = trace_request(account_id, message_id);
    if (request_id == nullptr) {
        return;
    }
    Datum args[14] = {Int64GetDatum(message_id), Int64GetDatum(job_id),
                      Int32GetDatum(attempt),    text_datum(kind),
                      Int64GetDatum(agent_id),   text_datum(error),
                      BoolGetDatum(retryable),   text_datum(next_step),
                      Int64GetDatum(next_agent), Float8GetDatum(delay_s),
                      Int64GetDatum(account_id), text_datum(request_id),
                      Int64GetDatum(agent_id),   reason != nullptr ? text_datum(reason) : (Datum)0};
    // from_agent only for a failure the worker reported: a reclaimed lease (reason given) says why instead.
    char nulls[14] = {' ',
                      ' ',
                      ' ',
                      ' ',
                      null_flag(agent_id == 0),
                      ' ',
                      ' ',
                      ' ',
                      null_flag(next_agent == 0),
                      null_flag(delay_s <= 0),
                      ' ',
                      ' ',
                      null_flag(agent_id == 0 || reason != nullptr),
                      null_flag(reason == nullptr)};
    spi_run(kTraceJobFailed, args, nulls, false, 0);
}

static Statement kTraceNoReply = {
    "INSERT INTO darkspere.trace_events (account_id, request_id, step, agent_id, detail)"
    " VALUES ($1, COALESCE($2, 'msg-' || $3), 'no_reply', $4,"
    "         pg_catalog.jsonb_build_object('reason', $5::text, 'message_id', $3::bigint))",
    5,
    {INT8OID, TEXTOID, INT8OID, INT8OID, TEXTOID},
    nullptr};

void trace_no_reply(int64 account_id, const char *request_id, int64 message_id, int64 agent_id,
                    const char *reason) {
    Datum args[5] = {Int64GetDatum(account_id), request_id ? text_datum(request_id) : (Datum)0,
                     Int64GetDatum(message_id), Int64GetDatum(agent_id), text_datum(reason)};
    char nulls[5] = {' ', null_flag(request_id == nullptr), ' ', null_flag(agent_id == 0), ' '};
    spi_run(kTraceNoReply, args, nulls, false, 0);
}

static Statement kPruneTraceEvents = {
    "DELETE FROM darkspere.trace_events t USING ("
    "  SELECT account_id, request_id, event_id FROM darkspere.trace_events WHERE at < $1 LIMIT $2) old"
    " WHERE t.account_id = old.account_id AND t.request_id = old.request_id AND t.event_id = old.event_id"
    "   AND t.at < $1",
    2,
    {TIMESTAMPTZOID, INT4OID},
    nullptr};

int64 trace_prune(int retention_s, int batch) {
    if (retention_s <= 0) {
        return 0;
    }
    Datum args[2] = {TimestampTzGetDatum(retention_cutoff(retention_s)), Int32GetDatum(batch)};
    return static_cast<int64>(spi_run(kPruneTraceEvents, args, nullptr, false, 0).rows());
}

}  // namespace darkspere
