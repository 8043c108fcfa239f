// src/ext/ratelimit.cpp — fixed-window rate limits with blocking, per scope and subject.
//
// A subject's window opens at its first hit and allows max_hits within window_s; the hit that goes over the
// limit blocks the subject for block_s, during which nothing is counted. Rules are rows of rate_limit_rules,
// per-subject overrides rows of rate_limit_overrides. The state row of a subject is locked by the upsert, so
// concurrent hits on one subject are counted exactly (100 concurrent messages at 60/min: exactly 60 pass).
#include "ext/darkspere.hpp"
#include "ext/errors.hpp"
#include "ext/spi_plans.hpp"

namespace darkspere {

static Statement kRule = {
    "SELECT COALESCE(o.max_hits, r.max_hits), COALESCE(o.window_s, r.window_s), COALESCE(o.block_s, "
    "r.block_s)"
    "  FROM darkspere.rate_limit_rules r"
    "  LEFT JOIN darkspere.rate_limit_overrides o ON o.scope = r.scope AND o.subject = $2"
    " WHERE r.scope = $1",
    2,
    {TEXTOID, TEXTOID},
    nullptr};

// $1 scope, $2 subject, $3 cost, $4 max_hits, $5 window_s, $6 block_s, $7 now.
// A rule with block_s = 0 blocks nobody: hits go on counting and every hit past max_hits is refused until the
// window ends. A rule with a block period stops counting and refuses everything until blocked_until.
static Statement kHit = {
    "INSERT INTO darkspere.rate_limit_state AS s (scope, subject, window_start, hits, blocked_until)"
    " VALUES ($1, $2, $7, $3, CASE WHEN $3 > $4 AND $6 > 0 THEN $7 + pg_catalog.make_interval(secs => $6) "
    "END)"
    " ON CONFLICT (scope, subject) DO UPDATE SET"
    "   window_start = CASE WHEN s.blocked_until > $7 THEN s.window_start"
    "                       WHEN s.window_start + pg_catalog.make_interval(secs => $5) <= $7 THEN $7"
    "                       ELSE s.window_start END,"
    "   hits = CASE WHEN s.blocked_until > $7 THEN s.hits"
    "               WHEN s.window_start + pg_catalog.make_interval(secs => $5) <= $7 THEN $3"
    "               ELSE s.hits + $3 END,"
    "   blocked_until = CASE WHEN s.blocked_until > $7 THEN s.blocked_until"
    "                        WHEN $6 > 0 AND (CASE WHEN s.window_start + pg_catalog.make_interval(secs => "
    "$5) <= $7"
    "                                              THEN $3 ELSE s.hits + $3 END) > $4"
    "                        THEN $7 + pg_catalog.make_interval(secs => $6)"
    "                        ELSE NULL END"
    " RETURNING COALESCE(s.blocked_until > $7, false) OR ($6 = 0 AND s.hits > $4),"
    "           COALESCE(s.blocked_until = $7 + pg_catalog.make_interval(secs => $6), false)"
    "             OR ($6 = 0 AND s.hits > $4),"
    "           s.blocked_until",
    7,
    {TEXTOID, TEXTOID, INT4OID, INT4OID, INT4OID, INT4OID, TIMESTAMPTZOID},
    nullptr};

LimitVerdict rate_limit_hit(const char *scope, const char *subject, int cost, TimestampTz *blocked_until) {
    Datum rule_args[2] = {text_datum(scope), text_datum(subject)};
    if (spi_run(kRule, rule_args, nullptr, false, 1) == 0) {
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unknown rate limit scope: \"%s\"", scope),
                 errhint("Scopes are the rows of darkspere.rate_limit_rules.")));
    }
    int32 max_hits = spi_int32(0, 1);
    int32 window_s = spi_int32(0, 2);
    int32 block_s = spi_int32(0, 3);

    // One timestamp for the whole decision, so "blocked by this hit" is recognisable in RETURNING.
    TimestampTz now = GetCurrentTimestamp();
    Datum args[7] = {text_datum(scope),       text_datum(subject),     Int32GetDatum(cost),
                     Int32GetDatum(max_hits), Int32GetDatum(window_s), Int32GetDatum(block_s),
                     TimestampTzGetDatum(now)};
    spi_run(kHit, args, nullptr, false, 1);
    bool blocked = spi_bool(0, 1);
    bool blocked_by_this_hit = spi_bool(0, 2);
    if (blocked_until != nullptr) {
        bool isnull;
        Datum until = spi_datum(0, 3, &isnull);
        *blocked_until = isnull ? 0 : DatumGetTimestampTz(until);
    }
    if (!blocked) {
        return LimitVerdict::allowed;
    }
    return blocked_by_this_hit ? LimitVerdict::limited : LimitVerdict::blocked;
}

}  // namespace darkspere

using namespace darkspere;

// darkspere_rate_limit — counts `cost` hits for the subject; true when allowed.
DARKSPERE_FUNCTION(darkspere_rate_limit) {
    char *scope = required_text(fcinfo, 0, "scope");
    char *subject = required_text(fcinfo, 1, "subject");
    int32 cost = required_int32(fcinfo, 2, "cost");
    require_non_empty(subject, "subject");
    if (cost <= 0) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("cost must be positive: %d", cost)));
    }
    SPI_connect();
    LimitVerdict verdict = rate_limit_hit(scope, subject, cost, nullptr);
    SPI_finish();
    PG_RETURN_BOOL(verdict == LimitVerdict::allowed);
}
