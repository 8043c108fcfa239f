// src/ext/delivery.cpp — Twilio status callbacks: a monotonic delivery state per outbound message.
//
// Callbacks arrive out of order, twice, or before the worker stored the message's sid. Every callback is
// recorded in delivery_events; it changes the message only when its rank is higher than the stored one (the
// first terminal status wins; `read` only follows `delivered`). delivery_events.applied marks callbacks that
// have been weighed against their message; one for a sid not stored yet waits (applied = false) until
// complete_job stores that sid.
//
// A callback speaks for a message only when the AccountSid it was signed for (the worker verified the
// signature with that account's token) owns the message's service number: otherwise one tenant with its own
// Twilio account could mark another tenant's messages delivered or failed. A callback of another account is
// recorded with its AccountSid and changes nothing.
#include "ext/delivery.hpp"
#include "ext/errors.hpp"
#include "ext/spi_plans.hpp"
#include "ext/trace.hpp"
#include "ext/validate.hpp"

namespace darkspere {

struct StatusRank {
    const char *status;
    int rank;
};

// docs/protocols.md#twilio-status-callbacks: accepted/scheduled/queued → sending → sent → terminal → read.
static const StatusRank kRanks[] = {
    {"accepted", 0},  {"scheduled", 0},   {"queued", 0}, {"sending", 1},  {"sent", 2},
    {"delivered", 3}, {"undelivered", 3}, {"failed", 3}, {"canceled", 3}, {"read", 4},
};

static int status_rank(const char *status) {
    for (const StatusRank &r : kRanks) {
        if (strcmp(r.status, status) == 0) {
            return r.rank;
        }
    }
    return -1;
}

static Statement kRecordEvent = {
    "INSERT INTO darkspere.delivery_events (message_sid, status, error_code, provider_account)"
    " VALUES ($1, $2, $3, $4) RETURNING event_id",
    4,
    {TEXTOID, TEXTOID, INT4OID, TEXTOID},
    nullptr};

// Who may speak for the outbound message with this sid: its service number, still the account's, and that
// number's AccountSid (NULL: a number registered without one, which any configured account may speak for
// until provider_account is required). No row: no outbound message has this sid yet.
static Statement kOwner = {
    "SELECT n.number IS NOT NULL, n.provider_account"
    "  FROM darkspere.messages m"
    "  LEFT JOIN darkspere.numbers n ON n.number = m.service_number AND n.account_id = m.account_id"
    " WHERE m.message_sid = $1 AND m.direction = 'out'",
    1,
    {TEXTOID},
    nullptr};

static Statement kMarkEventApplied = {
    "UPDATE darkspere.delivery_events SET applied = true WHERE event_id = $1", 1, {INT8OID}, nullptr};

// Applies one status if it moves the message forward. `read` (rank 4) only after `delivered`.
// The same statement traces the change as `delivery_status` (trace.hpp).
static Statement kApply = {
    "WITH m AS ("
    "UPDATE darkspere.messages SET status = $2, delivery_rank = $3, error_code = COALESCE($4, error_code),"
    "       updated_at = pg_catalog.now()"
    " WHERE message_sid = $1 AND direction = 'out' AND status <> 'suppressed' AND delivery_rank < $3"
    "   AND ($3 < 4 OR status = 'delivered')"
    " RETURNING account_id, message_id, request_id, reply_to, agent_id),"
    " t AS (INSERT INTO darkspere.trace_events (account_id, request_id, step, agent_id, detail)"
    "       SELECT m.account_id, " DS_TRACE_REQUEST
    ", 'delivery_status', m.agent_id,"
    "              pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('status', $2::text,"
    "                  'error_code', $4::int, 'sid', $1::text, 'message_id', m.message_id))"
    "         FROM m)"
    " SELECT 1 FROM m",
    4,
    {TEXTOID, TEXTOID, INT2OID, INT4OID},
    nullptr};

static Statement kMarkApplied = {
    "UPDATE darkspere.delivery_events SET applied = true WHERE message_sid = $1 AND NOT applied",
    1,
    {TEXTOID},
    nullptr};

static Statement kPendingEvents = {
    "SELECT status, error_code, provider_account FROM darkspere.delivery_events"
    " WHERE message_sid = $1 AND NOT applied ORDER BY event_id",
    1,
    {TEXTOID},
    nullptr};

// apply_status — true when the status moved the message forward.
static bool apply_status(const char *sid, const char *status, bool has_error, int32 error_code) {
    Datum args[4] = {text_datum(sid), text_datum(status), Int16GetDatum(status_rank(status)),
                     Int32GetDatum(error_code)};
    char nulls[4] = {' ', ' ', ' ', null_flag(!has_error)};
    return !spi_run(kApply, args, nulls, false, 0).empty();
}

struct Owner {
    bool known;              // an outbound message has this sid
    bool number_held;        // its service number still belongs to its account
    char *provider_account;  // that number's AccountSid; nullptr when registered without one
};

static Owner message_owner(const char *sid, MemoryContext context) {
    Datum args[1] = {text_datum(sid)};
    Owner owner = {false, false, nullptr};
    SpiResult row = spi_run(kOwner, args, nullptr, false, 1);
    if (!row.empty()) {
        owner.known = true;
        owner.number_held = row.get_bool(0, 1);
        owner.provider_account = row.text_copy(0, 2, context);
    }
    return owner;
}

// may_speak_for — whether a callback signed for provider_account may change the owner's message. nullptr: an
// event recorded before callbacks carried their AccountSid (version 0.1.0), applied as it was then.
static bool may_speak_for(const Owner &owner, const char *provider_account) {
    if (provider_account == nullptr) {
        return true;
    }
    return owner.number_held &&
           (owner.provider_account == nullptr || strcmp(owner.provider_account, provider_account) == 0);
}

void apply_pending_delivery_events(const char *message_sid) {
    MemoryContext caller = CurrentMemoryContext;
    Datum args[1] = {text_datum(message_sid)};
    SpiResult events = spi_run(kPendingEvents, args, nullptr, false, 0);
    if (events.empty()) {
        return;
    }
    Owner owner = message_owner(message_sid, caller);
    for (uint64 r = 0; r < events.rows(); r++) {
        // Another account's callback is weighed and refused.
        if (may_speak_for(owner, events.text_copy(r, 3, caller))) {
            apply_status(message_sid, events.text_copy(r, 1, caller), !events.is_null(r, 2),
                         events.get_int32(r, 2));
        }
    }
    spi_run(kMarkApplied, args, nullptr, false, 0);
}

}  // namespace darkspere

using namespace darkspere;

// darkspere_record_delivery_status — records a provider status callback, signed for provider_account, and
// applies it when that account owns the message's number and the status moves its delivery state forward.
// Returns what became of it: 'applied'; 'unchanged' (an older or repeated status); 'pending' (no outbound
// message has this sid yet: weighed when one does); 'account_mismatch' (the message is another account's:
// nothing changes).
DARKSPERE_FUNCTION(darkspere_record_delivery_status_v2) {
    char *provider_account = required_text(fcinfo, 0, "provider_account");
    char *sid = required_text(fcinfo, 1, "message_sid");
    char *status = required_text(fcinfo, 2, "status");
    bool has_error = !PG_ARGISNULL(3);
    int32 error_code = has_error ? PG_GETARG_INT32(3) : 0;
    require_non_empty(provider_account, "provider_account");
    require_non_empty(sid, "message_sid");
    if (status_rank(status) < 0) {
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid delivery status: \"%s\"", status),
                 errhint("Known statuses: accepted, scheduled, queued, sending, sent, delivered, "
                         "undelivered, failed, canceled, read.")));
    }
    SPI_connect();
    Datum event[4] = {text_datum(sid), text_datum(status), Int32GetDatum(error_code),
                      text_datum(provider_account)};
    char event_nulls[4] = {' ', ' ', null_flag(!has_error), ' '};
    int64 event_id = spi_run(kRecordEvent, event, event_nulls, false, 1).get_int64(0, 1);
    const char *outcome = "pending";
    Owner owner = message_owner(sid, CurrentMemoryContext);
    if (owner.known && !may_speak_for(owner, provider_account)) {
        Datum refused[1] = {Int64GetDatum(event_id)};
        spi_run(kMarkEventApplied, refused, nullptr, false, 0);
        outcome = "account_mismatch";
    } else if (owner.known) {
        outcome = apply_status(sid, status, has_error, error_code) ? "applied" : "unchanged";
        Datum known[1] = {text_datum(sid)};
        spi_run(kMarkApplied, known, nullptr, false, 0);
    }
    SPI_finish();
    PG_RETURN_TEXT_P(cstring_to_text(outcome));
}

// darkspere_record_delivery_status — what 0.1.0's record_delivery_status(message_sid, status, error_code)
// still calls in a database not yet updated to 0.2.0: its callbacks carried no AccountSid, so it refuses
// rather than let any account's callback change any message.
DARKSPERE_FUNCTION(darkspere_record_delivery_status) {
    ereport(
        ERROR,
        (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
         errmsg("record_delivery_status(message_sid, status, error_code) was replaced in darkspere 0.2.0"),
         errhint("Run ALTER EXTENSION darkspere UPDATE; the new function takes the callback's AccountSid "
                 "first.")));
}
