// src/ext/delivery.cpp — Twilio status callbacks: a monotonic delivery state per outbound message.
//
// Callbacks arrive out of order, twice, or before the worker stored the message's sid. Every callback is
// recorded in delivery_events; it changes the message only when its rank is higher than the stored one (the
// first terminal status wins; `read` only follows `delivered`). delivery_events.applied marks callbacks that
// have been weighed against their message; one for a sid not stored yet waits (applied = false) until
// complete_job stores that sid.
#include "ext/darkspere.hpp"
#include "ext/errors.hpp"
#include "ext/spi_plans.hpp"

namespace darkspere {

struct StatusRank {
    const char *status;
    int rank;
};

// twilio.md §4: accepted/scheduled/queued → sending → sent → terminal → read.
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
    "INSERT INTO darkspere.delivery_events (message_sid, status, error_code) VALUES ($1, $2, $3)"
    " RETURNING event_id",
    3,
    {TEXTOID, TEXTOID, INT4OID},
    nullptr};

// Applies one status if it moves the message forward. `read` (rank 4) only after `delivered`.
static Statement kApply = {
    "UPDATE darkspere.messages SET status = $2, delivery_rank = $3, error_code = COALESCE($4, error_code),"
    "       updated_at = pg_catalog.now()"
    " WHERE message_sid = $1 AND direction = 'out' AND status <> 'suppressed' AND delivery_rank < $3"
    "   AND ($3 < 4 OR status = 'delivered')",
    4,
    {TEXTOID, TEXTOID, INT2OID, INT4OID},
    nullptr};

static Statement kKnownSid = {
    "SELECT 1 FROM darkspere.messages WHERE message_sid = $1 AND direction = 'out'", 1, {TEXTOID}, nullptr};

static Statement kMarkApplied = {
    "UPDATE darkspere.delivery_events SET applied = true WHERE message_sid = $1 AND NOT applied",
    1,
    {TEXTOID},
    nullptr};

static Statement kPendingEvents = {
    "SELECT status, error_code FROM darkspere.delivery_events WHERE message_sid = $1 AND NOT applied"
    " ORDER BY event_id",
    1,
    {TEXTOID},
    nullptr};

static void apply_status(const char *sid, const char *status, bool has_error, int32 error_code) {
    Datum args[4] = {text_datum(sid), text_datum(status), Int16GetDatum(status_rank(status)),
                     Int32GetDatum(error_code)};
    char nulls[4] = {' ', ' ', ' ', null_flag(!has_error)};
    spi_run(kApply, args, nulls, false, 0);
}

void apply_pending_delivery_events(const char *message_sid) {
    MemoryContext caller = CurrentMemoryContext;
    Datum args[1] = {text_datum(message_sid)};
    uint64 rows = spi_run(kPendingEvents, args, nullptr, false, 0);
    if (rows == 0) {
        return;
    }
    // Copy out first: applying runs statements that replace SPI_tuptable.
    char **statuses = static_cast<char **>(palloc(sizeof(char *) * rows));
    int32 *codes = static_cast<int32 *>(palloc(sizeof(int32) * rows));
    bool *has_code = static_cast<bool *>(palloc(sizeof(bool) * rows));
    for (uint64 r = 0; r < rows; r++) {
        statuses[r] = spi_text_copy(r, 1, caller);
        has_code[r] = !spi_is_null(r, 2);
        codes[r] = spi_int32(r, 2);
    }
    for (uint64 r = 0; r < rows; r++) {
        apply_status(message_sid, statuses[r], has_code[r], codes[r]);
    }
    spi_run(kMarkApplied, args, nullptr, false, 0);
}

}  // namespace darkspere

using namespace darkspere;

// darkspere_record_delivery_status — records a provider status callback and applies it when it moves the
// message's delivery state forward.
DARKSPERE_FUNCTION(darkspere_record_delivery_status) {
    char *sid = required_text(fcinfo, 0, "message_sid");
    char *status = required_text(fcinfo, 1, "status");
    bool has_error = !PG_ARGISNULL(2);
    int32 error_code = has_error ? PG_GETARG_INT32(2) : 0;
    require_non_empty(sid, "message_sid");
    if (status_rank(status) < 0) {
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid delivery status: \"%s\"", status),
                 errhint("Known statuses: accepted, scheduled, queued, sending, sent, delivered, "
                         "undelivered, failed, canceled, read.")));
    }
    SPI_connect();
    Datum event[3] = {text_datum(sid), text_datum(status), Int32GetDatum(error_code)};
    char event_nulls[3] = {' ', ' ', null_flag(!has_error)};
    spi_run(kRecordEvent, event, event_nulls, false, 1);
    Datum known[1] = {text_datum(sid)};
    if (spi_run(kKnownSid, known, nullptr, false, 1) > 0) {
        apply_status(sid, status, has_error, error_code);
        spi_run(kMarkApplied, known, nullptr, false, 0);
    }
    SPI_finish();
    PG_RETURN_VOID();
}
