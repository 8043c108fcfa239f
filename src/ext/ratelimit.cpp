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

// One statement per hit: the rule (an override for this subject, else the scope's rule) and the count.
// $1 scope, $2 subject, $3 cost, $4 now. No row back means the scope has no rule.
// A rule with block_s = 0 blocks nobody: hits go on counting and every hit past max_hits is refused until the
// window ends. A rule with a block period stops counting and refuses everything until blocked_until.
static Statement kHit = {
    "WITH rl AS ("
    "  SELECT COALESCE(o.max_hits, r.max_hits) AS max_hits, COALESCE(o.window_s, r.window_s) AS window_s,"
    "         COALESCE(o.block_s, r.block_s) AS block_s"
    "    FROM darkspere.rate_limit_rules r"
    "    LEFT JOIN darkspere.rate_limit_overrides o ON o.scope = r.scope AND o.subject = $2"
    "   WHERE r.scope = $1)"
    " INSERT INTO darkspere.rate_limit_state AS s (scope, subject, window_start, hits, blocked_until)"
    " SELECT $1, $2, $4, $3,"
    "        CASE WHEN $3 > rl.max_hits AND rl.block_s > 0 THEN $4 + pg_catalog.make_interval(secs => "
    "rl.block_s) END"
    "   FROM rl"
    " ON CONFLICT (scope, subject) DO UPDATE SET"
    "   window_start = CASE WHEN s.blocked_until > $4 THEN s.window_start"
    "                       WHEN s.window_start + pg_catalog.make_interval(secs => (SELECT window_s FROM "
    "rl)) <= $4"
    "                       THEN $4 ELSE s.window_start END,"
    "   hits = CASE WHEN s.blocked_until > $4 THEN s.hits"
    "               WHEN s.window_start + pg_catalog.make_interval(secs => (SELECT window_s FROM rl)) <= $4 "
    "THEN $3"
    "               ELSE s.hits + $3 END,"
    "   blocked_until = CASE WHEN s.blocked_until > $4 THEN s.blocked_until"
    "                        WHEN (SELECT block_s FROM rl) > 0"
    "                         AND (CASE WHEN s.window_start + pg_catalog.make_interval(secs => (SELECT "
    "window_s FROM rl))"
    "                                        <= $4 THEN $3 ELSE s.hits + $3 END) > (SELECT max_hits FROM rl)"
    "                        THEN $4 + pg_catalog.make_interval(secs => (SELECT block_s FROM rl))"
    "                        ELSE NULL END"
    " RETURNING COALESCE(s.blocked_until > $4, false)"
    "             OR ((SELECT block_s FROM rl) = 0 AND s.hits > (SELECT max_hits FROM rl)),"
    "           COALESCE(s.blocked_until = $4 + pg_catalog.make_interval(secs => (SELECT block_s FROM rl)), "
    "false)"
    "             OR ((SELECT block_s FROM rl) = 0 AND s.hits > (SELECT max_hits FROM rl)),"
    "           s.blocked_until",
    4,
    {TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID},
    nullptr};

LimitVerdict rate_limit_hit(const char *scope, const char *subject, int cost, TimestampTz *blocked_until) {
    // One timestamp for the whole decision, so "blocked by this hit" is recognisable in RETURNING.
    TimestampTz now = GetCurrentTimestamp();
    Datum args[4] = {text_datum(scope), text_datum(subject), Int32GetDatum(cost), TimestampTzGetDatum(now)};
    if (spi_run(kHit, args, nullptr, false, 1) == 0) {
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unknown rate limit scope: \"%s\"", scope),
                 errhint("Scopes are the rows of darkspere.rate_limit_rules.")));
    }
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
