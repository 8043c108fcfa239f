// src/ext/sessions.cpp — one conversation per (account, service number, phone), created atomically.
//
// The partial unique index sessions_one_active is the arbiter: two first messages from one phone at the same
// instant both run the upsert below; one inserts, the other waits for it and then updates the same row. An
// idle session is left untouched by the upsert (and locked), marked expired, and then the upsert inserts the
// new one; a concurrent message waits on the old row and joins the new session (one_session.spec).
#include "ext/accounts.hpp"
#include "ext/errors.hpp"
#include "ext/sessions.hpp"
#include "ext/settings.hpp"
#include "ext/spi_plans.hpp"
#include "ext/validate.hpp"

namespace darkspere {

// An idle session ends (marked expired) and the messages of it still waiting for an agent end with it, as
// tick() ends them (maintenance.cpp). $5 is the transaction's now(): a parameter, because Citus takes no
// volatile function in a distributed UPDATE. Run only when kUpsertSession found the active session idle.
static Statement kExpireIdleSession = {
    "WITH s AS (UPDATE darkspere.sessions SET state = 'expired', ended_at = $5"
    "            WHERE account_id = $1 AND service_number = $2 AND phone = $3 AND state = 'active'"
    "              AND last_activity_at < $5 - pg_catalog.make_interval(secs => $4)"
    "            RETURNING session_id)"
    " UPDATE darkspere.messages m SET status = 'expired', updated_at = $5 FROM s"
    "  WHERE m.session_id = s.session_id AND m.account_id = $1 AND m.status = 'waiting'",
    5,
    {INT8OID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID},
    nullptr};

// The upsert of the active session: a new one, or the active one touched ($4, the transaction's now()) —
// unless it has been idle since before $5 (now minus darkspere.session_idle_timeout). Then no row comes back
// and the conflicting row stays locked by this transaction, which expires it (kExpireIdleSession) and runs
// the upsert again. One plain INSERT in the common case: on Citus a "fast path" statement, planned straight
// against the tenant's shard. The times are parameters: Citus takes no volatile function in DO UPDATE.
static Statement kUpsertSession = {
    "INSERT INTO darkspere.sessions AS s (account_id, service_number, phone) VALUES ($1, $2, $3)"
    " ON CONFLICT (account_id, service_number, phone) WHERE state = 'active'"
    " DO UPDATE SET last_activity_at = $4 WHERE s.last_activity_at >= $5"
    " RETURNING s.session_id, s.agent_id",
    5,
    {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID},
    nullptr};

// Sticky routing: the bound agent ($2) keeps the session if it is active, closed and healthy (capacity is not
// checked, the session already counts against it), carries the number's agent tag ($4, as it may have
// changed since) and passes the plan's mcp_protocol gate ($5: whether the account has it now, read by the
// caller). No row: the agent is gone. One table, pinned to the account: a fast-path statement on Citus.
static Statement kAgentKeepsSession = {
    "SELECT a.status = 'active' AND a.circuit = 'closed' AND a.health_score >= $3"
    "       AND ($4::text IS NULL OR $4 = ANY (a.tags)) AND (a.protocol <> 'mcp' OR $5)"
    "  FROM darkspere.agents a WHERE a.account_id = $1 AND a.agent_id = $2",
    5,
    {INT8OID, INT8OID, INT4OID, TEXTOID, BOOLOID},
    nullptr};

// Whether earlier messages of the session ($2) still wait for an agent. One table, pinned to the account.
static Statement kSessionHasWaiting = {
    "SELECT 1 FROM darkspere.messages q WHERE q.account_id = $1 AND q.session_id = $2 AND q.status = 'waiting'"
    " LIMIT 1",
    2,
    {INT8OID, INT8OID},
    nullptr};

static Statement kBindAgent = {
    "UPDATE darkspere.sessions SET agent_id = $2 WHERE session_id = $1 AND account_id = $3",
    3,
    {INT8OID, INT8OID, INT8OID},
    nullptr};

static Statement kSessionRow = {
    "SELECT s.* FROM darkspere.sessions s WHERE s.session_id = $1 AND s.account_id = $2",
    2,
    {INT8OID, INT8OID},
    nullptr};

SessionRef session_get_or_create(int64 account_id, const char *service_number, const char *phone) {
    TimestampTz now = GetCurrentTransactionStartTimestamp();
    Datum args[5] = {
        Int64GetDatum(account_id), text_datum(service_number), text_datum(phone), TimestampTzGetDatum(now),
        TimestampTzGetDatum(now - static_cast<TimestampTz>(session_idle_timeout_s) * USECS_PER_SEC)};
    SpiResult row = spi_run(kUpsertSession, args, nullptr, false, 1);
    if (row.empty()) {
        Datum expire_args[5] = {args[0], args[1], args[2], Int32GetDatum(session_idle_timeout_s),
                                TimestampTzGetDatum(now)};
        spi_run(kExpireIdleSession, expire_args, nullptr, false, 0);
        row = spi_run(kUpsertSession, args, nullptr, false, 1);
        if (row.empty()) {
            ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
                            errmsg("the idle session of %s with %s did not end", phone, service_number)));
        }
    }
    SessionRef ref;
    ref.session_id = row.get_int64(0, 1);
    ref.agent_id = row.get_int64(0, 2);
    ref.agent_eligible = false;
    ref.has_queued_messages = false;
    return ref;
}

void session_routing_state(int64 account_id, const char *agent_tag, bool mcp_allowed, SessionRef *ref) {
    ref->agent_eligible = false;
    if (ref->agent_id != 0) {
        Datum args[5] = {Int64GetDatum(account_id), Int64GetDatum(ref->agent_id),
                         Int32GetDatum(min_health_score),
                         agent_tag != nullptr ? text_datum(agent_tag) : (Datum)0, BoolGetDatum(mcp_allowed)};
        char nulls[5] = {' ', ' ', ' ', null_flag(agent_tag == nullptr), ' '};
        SpiResult keeps = spi_run(kAgentKeepsSession, args, nulls, false, 1);
        ref->agent_eligible = !keeps.empty() && keeps.get_bool(0, 1);
    }
    Datum waiting_args[2] = {Int64GetDatum(account_id), Int64GetDatum(ref->session_id)};
    ref->has_queued_messages = !spi_run(kSessionHasWaiting, waiting_args, nullptr, false, 1).empty();
}

void session_bind_agent(int64 account_id, int64 session_id, int64 agent_id) {
    Datum args[3] = {Int64GetDatum(session_id), Int64GetDatum(agent_id), Int64GetDatum(account_id)};
    spi_run(kBindAgent, args, nullptr, false, 0);
}

}  // namespace darkspere

using namespace darkspere;

// darkspere_get_or_create_session — the active session of (account, service number, phone), created if
// needed.
DARKSPERE_FUNCTION(darkspere_get_or_create_session) {
    int64 account_id = required_int64(fcinfo, 0, "account_id");
    char *service_number = required_text(fcinfo, 1, "service_number");
    char *phone = required_text(fcinfo, 2, "phone");
    require_e164(service_number, "service_number");
    require_non_empty(phone, "phone");

    SPI_connect();
    require_account(account_id);
    // The session row only: whether its agent may keep it (the tag) is not part of the answer.
    SessionRef ref = session_get_or_create(account_id, service_number, phone);
    Datum args[2] = {Int64GetDatum(ref.session_id), Int64GetDatum(account_id)};
    SpiResult session = spi_run(kSessionRow, args, nullptr, false, 1);
    HeapTupleHeader row = SPI_returntuple(session.tuple(0), session.tupdesc());
    SPI_finish();
    PG_RETURN_HEAPTUPLEHEADER(row);
}

static Statement kSessionExists = {
    "SELECT 1 FROM darkspere.sessions WHERE session_id = $1", 1, {INT8OID}, nullptr};
static Statement kHistory = {
    "SELECT direction, body, created_at FROM ("
    "   SELECT direction, body, created_at, message_id FROM darkspere.messages"
    "    WHERE session_id = $1 ORDER BY message_id DESC LIMIT $2) h"
    " ORDER BY message_id",
    2,
    {INT8OID, INT4OID},
    nullptr};

// darkspere_history — the last max_messages messages of a session, oldest first.
DARKSPERE_FUNCTION(darkspere_history) {
    int64 session_id = required_int64(fcinfo, 0, "session_id");
    int32 max_messages = required_int32(fcinfo, 1, "max_messages");
    if (max_messages < 0) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("max_messages must not be negative: %d", max_messages)));
    }
    ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    InitMaterializedSRF(fcinfo, 0);
    SPI_connect();
    Datum find[1] = {Int64GetDatum(session_id)};
    if (spi_run(kSessionExists, find, nullptr, true, 1).empty()) {
        raise_missing("session", session_id);
    }
    Datum args[2] = {Int64GetDatum(session_id), Int32GetDatum(max_messages)};
    SpiResult history = spi_run(kHistory, args, nullptr, true, 0);
    for (uint64 r = 0; r < history.rows(); r++) {
        Datum values[3];
        bool nulls[3];
        for (int c = 0; c < 3; c++) {
            values[c] = history.get_datum(r, c + 1, &nulls[c]);
        }
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    SPI_finish();
    return (Datum)0;
}
