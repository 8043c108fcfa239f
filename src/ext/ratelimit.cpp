// src/ext/ratelimit.cpp — fixed-window rate limits with blocking, per scope and subject.
//
// A subject's window opens at its first hit and allows max_hits within window_s; the hit that goes over the
// limit blocks the subject for block_s, during which nothing is counted. Rules are rows of rate_limit_rules,
// per-subject overrides rows of rate_limit_overrides. The state row of a subject is locked by the upsert, so
// concurrent hits on one subject are counted exactly (100 concurrent messages at 60/min: exactly 60 pass).
#include "ext/errors.hpp"
#include "ext/ratelimit.hpp"
#include "ext/spi_plans.hpp"
#include "ext/validate.hpp"

namespace darkspere {

// One statement per hit: the rule (an override for this subject, else the scope's rule) and the count.
// $1 scope, $2 subject, $3 cost, $4 now. No row back means the scope has no rule.
// A rule with block_s = 0 blocks nobody: hits go on counting and every hit past max_hits is refused until the
// window ends. A rule with a block period stops counting and refuses everything until blocked_until.
// The rule in force travels in the row (max_hits, window_s, block_s: EXCLUDED in the update), not in a CTE
// the update reads: on Citus the rules are reference tables, and Citus plans such a CTE apart from the ON
// CONFLICT that reads it ("could not find CTE"); read in the INSERT's own SELECT they stay one local
// statement.
// The window has passed at $now for the row s (as its rule says).
#define DS_WINDOW_OVER(now) "s.window_start + pg_catalog.make_interval(secs => EXCLUDED.window_s) <= " now
static Statement kHit = {
    "INSERT INTO darkspere.rate_limit_state AS s (scope, subject, window_start, hits, blocked_until, max_hits,"
    "                                             window_s, block_s)"
    " SELECT $1, $2, $4, $3,"
    "        CASE WHEN $3 > rl.max_hits AND rl.block_s > 0"
    "             THEN $4 + pg_catalog.make_interval(secs => rl.block_s) END,"
    "        rl.max_hits, rl.window_s, rl.block_s"
    "   FROM (" DS_LIMIT_RULE_OF("$1", "$2") ") rl"
    " ON CONFLICT (scope, subject) DO UPDATE SET"
    "   window_start = CASE WHEN s.blocked_until > $4 THEN s.window_start"
    "                       WHEN " DS_WINDOW_OVER("$4") " THEN $4 ELSE s.window_start END,"
    "   hits = CASE WHEN s.blocked_until > $4 THEN s.hits"
    "               WHEN " DS_WINDOW_OVER("$4") " THEN $3 ELSE s.hits + $3 END,"
    "   blocked_until = CASE WHEN s.blocked_until > $4 THEN s.blocked_until"
    "                        WHEN EXCLUDED.block_s > 0"
    "                         AND (CASE WHEN " DS_WINDOW_OVER("$4") " THEN $3 ELSE s.hits + $3 END)"
    "                             > EXCLUDED.max_hits"
    "                        THEN $4 + pg_catalog.make_interval(secs => EXCLUDED.block_s)"
    "                        ELSE NULL END,"
    "   max_hits = EXCLUDED.max_hits, window_s = EXCLUDED.window_s, block_s = EXCLUDED.block_s"
    " RETURNING COALESCE(s.blocked_until > $4, false) OR (s.block_s = 0 AND s.hits > s.max_hits),"
    "           COALESCE(s.blocked_until = $4 + pg_catalog.make_interval(secs => s.block_s), false)"
    "             OR (s.block_s = 0 AND s.hits > s.max_hits),"
    "           s.blocked_until",
    4,
    {TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID},
    nullptr};

LimitVerdict rate_limit_hit(const char *scope, const char *subject, int cost, TimestampTz *blocked_until) {
    // One timestamp for the whole decision, so "blocked by this hit" is recognisable in RETURNING.
    TimestampTz now = GetCurrentTimestamp();
    Datum args[4] = {text_datum(scope), text_datum(subject), Int32GetDatum(cost), TimestampTzGetDatum(now)};
    SpiResult hit = spi_run(kHit, args, nullptr, false, 1);
    if (hit.empty()) {
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("unknown rate limit scope: \"%s\"", scope),
                        errhint("Scopes are the rows of darkspere.rate_limit_rules.")));
    }
    bool blocked = hit.get_bool(0, 1);
    bool blocked_by_this_hit = hit.get_bool(0, 2);
    if (blocked_until != nullptr) {
        bool isnull;
        Datum until = hit.get_datum(0, 3, &isnull);
        *blocked_until = isnull ? 0 : DatumGetTimestampTz(until);
    }
    if (!blocked) {
        return LimitVerdict::allowed;
    }
    return blocked_by_this_hit ? LimitVerdict::limited : LimitVerdict::blocked;
}

char *tenant_subject(int64 account_id, const char *phone) {
    return psprintf("%lld:%s", static_cast<long long>(account_id), phone);
}

// Two hits in one statement, on two rows locked in the order given (the first, then the second): the same
// count as kHit, per row, under the rule the caller read (kRulesOf, or with the message's other reads: on
// Citus the rules are reference tables, and a statement that reads them is planned by Citus twice, while this
// one reads only rate_limit_state, a plain table of the node, which Citus leaves alone). A hit of cost 0 only
// locks its row and changes nothing (a new row is created with no hits and a window that is already over, so
// the next real hit opens a fresh one). $1 scope, $2 subject, $3 cost, $4 max_hits, $5 window_s, $6 block_s
// of the first hit; $7 … $12 of the second; $13 now. A hit whose scope has no rule ($4 or $10 NULL) is not
// counted. A row comes back per counted hit: its scope, whether it is refused, whether this hit blocked it.
static Statement kHitPair = {
    "INSERT INTO darkspere.rate_limit_state AS s (scope, subject, window_start, hits, blocked_until, max_hits,"
    "                                             window_s, block_s)"
    " SELECT h.scope, h.subject, CASE WHEN h.cost = 0 THEN '-infinity' ELSE $13 END, h.cost,"
    "        CASE WHEN h.cost > h.max_hits AND h.block_s > 0"
    "             THEN $13 + pg_catalog.make_interval(secs => h.block_s) END,"
    "        h.max_hits, h.window_s, h.block_s"
    "   FROM (VALUES (1, $1, $2, $3, $4, $5, $6), (2, $7, $8, $9, $10, $11, $12))"
    "        h (ord, scope, subject, cost, max_hits, window_s, block_s)"
    "  WHERE h.max_hits IS NOT NULL"
    "  ORDER BY h.ord"
    " ON CONFLICT (scope, subject) DO UPDATE SET"
    "   window_start = CASE WHEN EXCLUDED.hits = 0 OR s.blocked_until > $13 THEN s.window_start"
    "                       WHEN " DS_WINDOW_OVER("$13") " THEN $13 ELSE s.window_start END,"
    "   hits = CASE WHEN EXCLUDED.hits = 0 OR s.blocked_until > $13 THEN s.hits"
    "               WHEN " DS_WINDOW_OVER("$13") " THEN EXCLUDED.hits ELSE s.hits + EXCLUDED.hits END,"
    "   blocked_until = CASE WHEN EXCLUDED.hits = 0 OR s.blocked_until > $13 THEN s.blocked_until"
    "                        WHEN EXCLUDED.block_s > 0"
    "                         AND (CASE WHEN " DS_WINDOW_OVER("$13") " THEN EXCLUDED.hits"
    "                                   ELSE s.hits + EXCLUDED.hits END) > EXCLUDED.max_hits"
    "                        THEN $13 + pg_catalog.make_interval(secs => EXCLUDED.block_s)"
    "                        ELSE NULL END,"
    "   max_hits = EXCLUDED.max_hits, window_s = EXCLUDED.window_s, block_s = EXCLUDED.block_s"
    " RETURNING s.scope,"
    "           COALESCE(s.blocked_until > $13, false) OR (s.block_s = 0 AND s.hits > s.max_hits),"
    "           COALESCE(s.blocked_until = $13 + pg_catalog.make_interval(secs => s.block_s), false)"
    "             OR (s.block_s = 0 AND s.hits > s.max_hits)",
    13,
    {TEXTOID, TEXTOID, INT4OID, INT4OID, INT4OID, INT4OID, TEXTOID, TEXTOID, INT4OID, INT4OID, INT4OID,
     INT4OID, TIMESTAMPTZOID},
    nullptr};

// The rules of two (scope, subject) pairs ($1, $2 and $3, $4; the second may be NULL): a row per pair whose
// scope has a rule, with its place (1 or 2).
static Statement kRulesOf = {
    "SELECT h.ord, rl.max_hits, rl.window_s, rl.block_s"
    "  FROM (VALUES (1, $1, $2), (2, $3, $4)) h (ord, scope, subject)"
    " CROSS JOIN LATERAL (" DS_LIMIT_RULE_OF("h.scope", "h.subject") ") rl",
    4,
    {TEXTOID, TEXTOID, TEXTOID, TEXTOID},
    nullptr};

// Takes back a hit that was counted but did not happen (its row is already locked by this transaction).
static Statement kUnhit = {
    "UPDATE darkspere.rate_limit_state SET hits = hits - $3 WHERE scope = $1 AND subject = $2",
    3,
    {TEXTOID, TEXTOID, INT4OID},
    nullptr};

namespace {

struct PairHit {
    const char *scope;  // nullptr: no second hit
    const char *subject;
    int cost;        // 0: lock the row only
    LimitRule rule;  // known false: the scope has no rule (the hit is not counted)
    LimitVerdict verdict;
};

// read_rules — fills in both hits' rules (kRulesOf).
void read_rules(PairHit *first, PairHit *second) {
    Datum args[4] = {text_datum(first->scope), text_datum(first->subject),
                     second->scope ? text_datum(second->scope) : (Datum)0,
                     second->scope ? text_datum(second->subject) : (Datum)0};
    char nulls[4] = {' ', ' ', null_flag(second->scope == nullptr), null_flag(second->scope == nullptr)};
    SpiResult rows = spi_run(kRulesOf, args, nulls, true, 2);
    PairHit *hits[2] = {first, second};
    first->rule.known = second->rule.known = false;
    for (uint64 r = 0; r < rows.rows(); r++) {
        LimitRule &rule = hits[rows.get_int32(r, 1) - 1]->rule;
        rule = {true, rows.get_int32(r, 2), rows.get_int32(r, 3), rows.get_int32(r, 4)};
    }
}

void hit_pair(PairHit *first, PairHit *second) {
    TimestampTz now = GetCurrentTimestamp();
    PairHit *hits[2] = {first, second};
    Datum args[13];
    char nulls[13];
    for (int i = 0; i < 2; i++) {
        const PairHit &h = *hits[i];
        bool counted = h.scope != nullptr && h.rule.known;
        Datum *a = args + 6 * i;
        char *n = nulls + 6 * i;
        a[0] = counted ? text_datum(h.scope) : (Datum)0;
        a[1] = counted ? text_datum(h.subject) : (Datum)0;
        a[2] = Int32GetDatum(h.cost);
        a[3] = Int32GetDatum(h.rule.max_hits);
        a[4] = Int32GetDatum(h.rule.window_s);
        a[5] = Int32GetDatum(h.rule.block_s);
        for (int c = 0; c < 6; c++) {
            n[c] = null_flag(!counted);
        }
    }
    args[12] = TimestampTzGetDatum(now);
    nulls[12] = ' ';
    SpiResult rows = spi_run(kHitPair, args, nulls, false, 2);
    bool found[2] = {false, false};
    for (uint64 r = 0; r < rows.rows(); r++) {
        char *scope = rows.text_copy(r, 1, CurrentMemoryContext);
        int i = strcmp(scope, first->scope) == 0 ? 0 : 1;
        found[i] = true;
        hits[i]->verdict = !rows.get_bool(r, 2)  ? LimitVerdict::allowed
                           : rows.get_bool(r, 3) ? LimitVerdict::limited
                                                 : LimitVerdict::blocked;
    }
    for (int i = 0; i < 2; i++) {
        if (!found[i]) {
            hits[i]->verdict = LimitVerdict::allowed;
            if (hits[i]->scope != nullptr && hits[i]->cost > 0) {
                ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                                errmsg("unknown rate limit scope: \"%s\"", hits[i]->scope),
                                errhint("Scopes are the rows of darkspere.rate_limit_rules.")));
            }
        }
    }
}

void unhit(const PairHit &hit) {
    Datum args[3] = {text_datum(hit.scope), text_datum(hit.subject), Int32GetDatum(hit.cost)};
    spi_run(kUnhit, args, nullptr, false, 0);
}

}  // namespace

LimitVerdict phone_limit_hit(int64 account_id, const char *phone, const PhoneRules &rules) {
    // The ceiling's row first: it is the one row every message of the phone locks, so transactions that hold
    // rows of the same phone with several tenants (a batch, in phone order) queue on it instead of
    // deadlocking.
    PairHit ceiling = {kPhoneCeilingScope, phone, 1, rules.ceiling, LimitVerdict::allowed};
    PairHit tenant = {kPhoneScope, tenant_subject(account_id, phone), 1, rules.tenant, LimitVerdict::allowed};
    hit_pair(&ceiling, &tenant);
    if (ceiling.verdict == LimitVerdict::allowed && tenant.verdict == LimitVerdict::allowed) {
        return LimitVerdict::allowed;
    }
    // A message one rule refuses is not counted by the other: a tenant's refused messages (forged "from" a
    // victim, say) must not use up the phone's ceiling and so block it with every tenant, and messages the
    // ceiling refuses do not use up the phone's allowance with this tenant.
    if (ceiling.verdict == LimitVerdict::allowed) {
        unhit(ceiling);
    } else if (tenant.verdict == LimitVerdict::allowed) {
        unhit(tenant);
    }
    if (ceiling.verdict == LimitVerdict::limited || tenant.verdict == LimitVerdict::limited) {
        return LimitVerdict::limited;
    }
    return LimitVerdict::blocked;
}

bool keyword_reply_hit(int64 account_id, const char *phone, const char *keyword, bool reply_due) {
    // The phone's ceiling row is locked first, as for every message of the phone (see phone_limit_hit), but
    // not counted: keywords are honoured whatever the limits.
    PairHit ceiling = {kPhoneCeilingScope, phone, 0, {}, LimitVerdict::allowed};
    PairHit reply = {nullptr, nullptr, 1, {}, LimitVerdict::allowed};
    if (reply_due) {
        reply.scope = kKeywordReplyScope;
        reply.subject = psprintf("%lld:%s:%s", static_cast<long long>(account_id), phone, keyword);
    }
    read_rules(&ceiling, &reply);
    hit_pair(&ceiling, &reply);
    return reply_due && reply.verdict == LimitVerdict::allowed;
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
