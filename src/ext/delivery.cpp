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
//
// The worker also passes the callback's From, our number that sent the message: the number and the AccountSid
// name the tenant before any message is read, so every statement on messages is pinned to that account (one
// shard on Citus) and delivery_events keeps it. A From that is not a number of that AccountSid is refused
// as another account's. Without From (a caller of 0.2.0's first form) the message is found by its sid alone.
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
    "INSERT INTO darkspere.delivery_events (message_sid, status, error_code, provider_account, account_id)"
    " VALUES ($1, $2, $3, $4, $5) RETURNING event_id",
    5,
    {TEXTOID, TEXTOID, INT4OID, TEXTOID, INT8OID},
    nullptr};

// The tenant a callback speaks for: the account of its From number, if that number is one of the AccountSid's
// ($2). Global tables only (reference tables on Citus).
static Statement kSenderAccount = {
    "SELECT account_id FROM darkspere.numbers WHERE number = $1 AND provider_account = $2",
    2,
    {TEXTOID, TEXTOID},
    nullptr};

// Who may speak for the outbound message with this sid: its service number, still the account's, and that
// number's AccountSid. No row: no outbound message has this sid yet (in the callback's account: kOwnerIn).
// Read in two statements, the message's and its number's: on Citus an outer join from a tenant table to a
// reference table is not sent to one shard.
static Statement kOwner = {
    "SELECT m.service_number, m.account_id FROM darkspere.messages m"
    " WHERE m.message_sid = $1 AND m.direction = 'out'",
    1,
    {TEXTOID},
    nullptr};
static Statement kOwnerIn = {
    "SELECT m.service_number, m.account_id FROM darkspere.messages m"
    " WHERE m.message_sid = $1 AND m.direction = 'out' AND m.account_id = $2",
    2,
    {TEXTOID, INT8OID},
    nullptr};
static Statement kNumberHolder = {
    "SELECT n.provider_account FROM darkspere.numbers n WHERE n.number = $1 AND n.account_id = $2",
    2,
    {TEXTOID, INT8OID},
    nullptr};

static Statement kMarkEventApplied = {
    "UPDATE darkspere.delivery_events SET applied = true WHERE event_id = $1", 1, {INT8OID}, nullptr};

// Applies one status if it moves the message forward. `read` (rank 4) only after `delivered`. $5 the
// message's account (known once its owner was read), $6 the time: one shard's UPDATE on Citus, which takes no
// function of the clock in a distributed UPDATE, nor a non-immutable one in RETURNING, so the parts of the
// trace request (DS_TRACE_REQUEST) are returned and kTraceApplied puts them together when it traces the
// change as `delivery_status` (trace.hpp).
static Statement kApply = {
    "UPDATE darkspere.messages m SET status = $2, delivery_rank = $3, error_code = COALESCE($4, m.error_code),"
    "       updated_at = $6"
    " WHERE m.message_sid = $1 AND m.account_id = $5 AND m.direction = 'out' AND m.status <> 'suppressed'"
    "   AND m.delivery_rank < $3 AND ($3 < 4 OR m.status = 'delivered')"
    " RETURNING m.message_id, m.request_id, m.agent_id, COALESCE(m.reply_to, m.message_id)",
    6,
    {TEXTOID, TEXTOID, INT2OID, INT4OID, INT8OID, TIMESTAMPTZOID},
    nullptr};

// $2 the message's request id (NULL: keyed by $8, its inbound message, "msg-<id>").
static Statement kTraceApplied = {
    "INSERT INTO darkspere.trace_events (account_id, request_id, step, agent_id, detail)"
    " VALUES ($1, COALESCE($2, 'msg-' || $8::bigint), 'delivery_status', $3,"
    "         pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
    "             'status', $4::text, 'error_code', $5::int, 'sid', $6::text, 'message_id', $7::bigint)))",
    8,
    {INT8OID, TEXTOID, INT8OID, TEXTOID, INT4OID, TEXTOID, INT8OID, INT8OID},
    nullptr};

static Statement kMarkApplied = {
    "UPDATE darkspere.delivery_events SET applied = true WHERE message_sid = $1 AND NOT applied",
    1,
    {TEXTOID},
    nullptr};

static Statement kPendingEvents = {
    "SELECT status, error_code, provider_account, account_id FROM darkspere.delivery_events"
    " WHERE message_sid = $1 AND NOT applied ORDER BY event_id",
    1,
    {TEXTOID},
    nullptr};

struct Owner {
    bool known;              // an outbound message has this sid (in the callback's account, when known)
    int64 account_id;        // the message's account
    bool number_held;        // its service number still belongs to its account
    char *provider_account;  // that number's AccountSid (NOT NULL since 0.2.0); nullptr when not held
};

// apply_status — true when the status moved the owner's message forward; traces the change.
static bool apply_status(const Owner &owner, const char *sid, const char *status, bool has_error,
                         int32 error_code) {
    Datum args[6] = {text_datum(sid),
                     text_datum(status),
                     Int16GetDatum(status_rank(status)),
                     Int32GetDatum(error_code),
                     Int64GetDatum(owner.account_id),
                     TimestampTzGetDatum(GetCurrentTransactionStartTimestamp())};
    char nulls[6] = {' ', ' ', ' ', null_flag(!has_error), ' ', ' '};
    SpiResult applied = spi_run(kApply, args, nulls, false, 0);
    for (uint64 r = 0; r < applied.rows(); r++) {
        bool no_request = false, no_agent = false, unused = false;
        Datum trace[8] = {Int64GetDatum(owner.account_id),    applied.get_datum(r, 2, &no_request),
                          applied.get_datum(r, 3, &no_agent), text_datum(status),
                          Int32GetDatum(error_code),          text_datum(sid),
                          applied.get_datum(r, 1, &unused),   applied.get_datum(r, 4, &unused)};
        char trace_nulls[8] = {
            ' ', null_flag(no_request), null_flag(no_agent), ' ', null_flag(!has_error), ' ', ' ', ' '};
        spi_run(kTraceApplied, trace, trace_nulls, false, 0);
    }
    return applied.rows() > 0;
}

// message_owner — the outbound message with this sid, in account_id when it is known (0: any account).
static Owner message_owner(const char *sid, int64 account_id, MemoryContext context) {
    Owner owner = {false, 0, false, nullptr};
    Datum args[2] = {text_datum(sid), Int64GetDatum(account_id)};
    // Not read-only: a read-only statement would not see the sid complete_job stored a statement earlier.
    SpiResult row = spi_run(account_id != 0 ? kOwnerIn : kOwner, args, nullptr, false, 1);
    if (row.empty()) {
        return owner;
    }
    owner.known = true;
    owner.account_id = row.get_int64(0, 2);
    Datum number[2] = {text_datum(row.text_copy(0, 1, context)), Int64GetDatum(owner.account_id)};
    SpiResult holder = spi_run(kNumberHolder, number, nullptr, false, 1);
    owner.number_held = !holder.empty();
    owner.provider_account = owner.number_held ? holder.text_copy(0, 1, context) : nullptr;
    return owner;
}

// may_speak_for — whether a callback signed for provider_account may change the owner's message. nullptr: an
// event recorded before callbacks carried their AccountSid (version 0.1.0), applied as it was then.
static bool may_speak_for(const Owner &owner, const char *provider_account) {
    if (provider_account == nullptr) {
        return true;
    }
    return owner.number_held && strcmp(owner.provider_account, provider_account) == 0;
}

void apply_pending_delivery_events(const char *message_sid, int64 account_id) {
    MemoryContext caller = CurrentMemoryContext;
    Datum args[1] = {text_datum(message_sid)};
    SpiResult events = spi_run(kPendingEvents, args, nullptr, false, 0);
    if (events.empty()) {
        return;
    }
    Owner owner = message_owner(message_sid, account_id, caller);
    for (uint64 r = 0; r < events.rows(); r++) {
        // Another account's callback (by its From, or by its AccountSid) is weighed and refused.
        bool same_account = events.is_null(r, 4) || events.get_int64(r, 4) == owner.account_id;
        if (owner.known && same_account && may_speak_for(owner, events.text_copy(r, 3, caller))) {
            apply_status(owner, message_sid, events.text_copy(r, 1, caller), !events.is_null(r, 2),
                         events.get_int32(r, 2));
        }
    }
    spi_run(kMarkApplied, args, nullptr, false, 0);
}

}  // namespace darkspere

using namespace darkspere;

// darkspere_record_delivery_status — records a provider status callback, signed for provider_account and
// sent from from_number (our number; NULL: not given), and applies it when that account owns the message's
// number and the status moves its delivery state forward. Returns what became of it: 'applied'; 'unchanged'
// (an older or repeated status); 'pending' (no outbound message has this sid yet: weighed when one does);
// 'account_mismatch' (the message, or the From number, is another account's: nothing changes).
DARKSPERE_FUNCTION(darkspere_record_delivery_status_v2) {
    char *provider_account = required_text(fcinfo, 0, "provider_account");
    char *sid = required_text(fcinfo, 1, "message_sid");
    char *status = required_text(fcinfo, 2, "status");
    bool has_error = !PG_ARGISNULL(3);
    int32 error_code = has_error ? PG_GETARG_INT32(3) : 0;
    char *from_number = PG_NARGS() > 4 ? optional_text(fcinfo, 4) : nullptr;
    require_non_empty(provider_account, "provider_account");
    require_non_empty(sid, "message_sid");
    if (from_number != nullptr) {
        require_non_empty(from_number, "from_number");
    }
    if (status_rank(status) < 0) {
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid delivery status: \"%s\"", status),
                 errhint("Known statuses: accepted, scheduled, queued, sending, sent, delivered, "
                         "undelivered, failed, canceled, read.")));
    }
    SPI_connect();
    // The tenant the From number names (0: not given, or not a number of this AccountSid).
    int64 account_id = 0;
    if (from_number != nullptr) {
        Datum sender[2] = {text_datum(from_number), text_datum(provider_account)};
        SpiResult number = spi_run(kSenderAccount, sender, nullptr, true, 1);
        account_id = number.empty() ? 0 : number.get_int64(0, 1);
    }
    Datum event[5] = {text_datum(sid), text_datum(status), Int32GetDatum(error_code),
                      text_datum(provider_account), Int64GetDatum(account_id)};
    char event_nulls[5] = {' ', ' ', null_flag(!has_error), ' ', null_flag(account_id == 0)};
    int64 event_id = spi_run(kRecordEvent, event, event_nulls, false, 1).get_int64(0, 1);
    const char *outcome = "pending";
    Datum refused[1] = {Int64GetDatum(event_id)};
    if (from_number != nullptr && account_id == 0) {
        // From is no number of this AccountSid (another's, or released): it speaks for no message.
        spi_run(kMarkEventApplied, refused, nullptr, false, 0);
        outcome = "account_mismatch";
    } else {
        Owner owner = message_owner(sid, account_id, CurrentMemoryContext);
        if (owner.known && !may_speak_for(owner, provider_account)) {
            spi_run(kMarkEventApplied, refused, nullptr, false, 0);
            outcome = "account_mismatch";
        } else if (owner.known) {
            outcome = apply_status(owner, sid, status, has_error, error_code) ? "applied" : "unchanged";
            Datum known[1] = {text_datum(sid)};
            spi_run(kMarkApplied, known, nullptr, false, 0);
        }
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
