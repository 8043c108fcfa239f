// src/ext/billing.cpp — usage counters, plan quotas and the monthly usage report.
//
// Usage is counted in the transaction of the event it counts, so a retried event never counts twice. Counters
// are split over kCounterShards rows per (account, month, metric): a busy account's concurrent messages each
// write their own backend's shard instead of queueing on one row. SMS metrics count segments (what carriers
// bill); agent_messages counts answered turns. Money is integer cents.
//
// Hard caps are checked against the sum of the shards before the event is counted. Two transactions that both
// pass the check at the very edge of the cap can overshoot it by what the others count before they commit:
// one event each for single calls, up to a whole batch each for batch calls (ack_jobs, receive_sms_batch),
// which see their own pending usage but not another batch's. The overshoot is never billed (hard-capped plans
// have no overage price).
#include "ext/billing.hpp"
#include "ext/counter_batch.hpp"
#include "ext/errors.hpp"
#include "ext/settings.hpp"
#include "ext/spi_plans.hpp"
#include "ext/validate.hpp"

namespace darkspere {

static Statement kAddUsage = {
    "INSERT INTO darkspere.usage_counters AS u (account_id, period, metric, shard, used)"
    " VALUES ($1, pg_catalog.date_trunc('month', pg_catalog.now() AT TIME ZONE 'UTC')::date, $2, $3, $4)"
    " ON CONFLICT (account_id, period, metric, shard) DO UPDATE SET used = u.used + EXCLUDED.used",
    4,
    {INT8OID, TEXTOID, INT2OID, INT8OID},
    nullptr};

// Room under a hard cap, in two statements: the caps, then (only when there is one) the month's usage. Two
// because on Citus a statement that calls account_features_now beside a distributed table is sent whole to
// the tenant's node, where the function cannot read distributed tables ("cannot execute a distributed query
// from a query on a shard"); and most plans have no hard cap, so the usage is rarely read. kRoomCaps: no row
// without a hard cap; otherwise the caps of sms_inbound, sms_outbound and agent_routing of the account now
// (account_features_now: the effective plan, held to free while a payment is past its grace, with the
// account's overrides), NULL for no cap; a disabled feature has a cap of 0.
static Statement kRoomCaps = {
    "SELECT max(CASE WHEN f.enabled THEN f.monthly_limit ELSE 0 END) FILTER (WHERE f.feature = 'sms_inbound'),"
    "       max(CASE WHEN f.enabled THEN f.monthly_limit ELSE 0 END) FILTER (WHERE f.feature = 'sms_outbound'),"
    "       max(CASE WHEN f.enabled THEN f.monthly_limit ELSE 0 END) FILTER (WHERE f.feature = 'agent_routing')"
    "  FROM darkspere.account_features_now($1) f JOIN darkspere.plans p ON p.plan = f.plan"
    " WHERE p.hard_cap AND f.feature IN ('sms_inbound', 'sms_outbound', 'agent_routing')"
    " HAVING count(*) > 0",
    1,
    {INT8OID},
    nullptr};
// kRoomUsed: this month's sms_in, sms_out and agent_messages of the account (the sum of the counter shards).
static Statement kRoomUsed = {
    "SELECT COALESCE(sum(u.used) FILTER (WHERE u.metric = 'sms_in'), 0)::bigint,"
    "       COALESCE(sum(u.used) FILTER (WHERE u.metric = 'sms_out'), 0)::bigint,"
    "       COALESCE(sum(u.used) FILTER (WHERE u.metric = 'agent_messages'), 0)::bigint"
    "  FROM darkspere.usage_counters u"
    " WHERE u.account_id = $1"
    "   AND u.period = pg_catalog.date_trunc('month', pg_catalog.now() AT TIME ZONE 'UTC')::date",
    1,
    {INT8OID},
    nullptr};

// The usage report in two statements, for the reason given at kRoomCaps. kUsageTerms: per metric, in order,
// the included amount (NULL: unlimited) from the features of the account now, and price and hard_cap of its
// effective plan (the plan itself, or free while a payment is past its grace); no row for an unknown account.
static Statement kUsageTerms = {
    "SELECT m.metric, CASE WHEN f.enabled THEN f.monthly_limit ELSE 0 END AS included,"
    "       CASE m.metric WHEN 'agent_messages' THEN p.agent_overage_cents ELSE p.sms_overage_cents END"
    "         AS price,"
    "       p.hard_cap, m.ord"
    "  FROM (VALUES (1, 'sms_in', 'sms_inbound'), (2, 'sms_out', 'sms_outbound'),"
    "               (3, 'agent_messages', 'agent_routing')) m(ord, metric, feature)"
    "  JOIN darkspere.account_features_now($1) f ON f.feature = m.feature"
    "  JOIN darkspere.plans p ON p.plan = f.plan"
    " ORDER BY m.ord",
    1,
    {INT8OID},
    nullptr};
// kUsageUsed: the account's sms_in, sms_out and agent_messages (columns in kUsageTerms' m.ord order) in the
// month holding $2 (NULL: now, UTC).
static Statement kUsageUsed = {
    "SELECT COALESCE(sum(u.used) FILTER (WHERE u.metric = 'sms_in'), 0)::bigint,"
    "       COALESCE(sum(u.used) FILTER (WHERE u.metric = 'sms_out'), 0)::bigint,"
    "       COALESCE(sum(u.used) FILTER (WHERE u.metric = 'agent_messages'), 0)::bigint"
    "  FROM darkspere.usage_counters u"
    " WHERE u.account_id = $1"
    "   AND u.period = pg_catalog.date_trunc('month', COALESCE($2::timestamp,"
    "                                                         pg_catalog.now() AT TIME ZONE 'UTC'))::date",
    2,
    {INT8OID, DATEOID},
    nullptr};

void usage_add(int64 account_id, const char *metric, int64 amount) {
    if (amount == 0 || batch_defer_usage(account_id, metric, amount)) {
        return;
    }
    usage_write(account_id, metric, amount);
}

void usage_write(int64 account_id, const char *metric, int64 amount) {
    Datum args[4] = {Int64GetDatum(account_id), text_datum(metric), Int16GetDatum(counter_shard()),
                     Int64GetDatum(amount)};
    spi_run(kAddUsage, args, nullptr, false, 0);
}

// Room left under a hard cap, one statement for all three metrics (sms_in, sms_out, agent_messages). A metric
// is limited only on a hard-capped plan with a finite allowance; `left` is meaningful only when it is.
struct Room {
    bool limited[3] = {false, false, false};
    int64 left[3] = {0, 0, 0};
};

static Room room(int64 account_id) {
    Room r;
    Datum args[1] = {Int64GetDatum(account_id)};
    SpiResult caps = spi_run(kRoomCaps, args, nullptr, false, 1);
    if (caps.empty()) {
        return r;  // no hard cap
    }
    bool any = false;
    for (int i = 0; i < 3; i++) {
        r.limited[i] = !caps.is_null(0, i + 1);
        any = any || r.limited[i];
    }
    if (!any) {
        return r;  // a hard-capped plan with unlimited allowances
    }
    SpiResult used = spi_run(kRoomUsed, args, nullptr, false, 1);
    // Usage an open batch has counted but not yet written is used all the same.
    static const char *const metrics[3] = {"sms_in", "sms_out", "agent_messages"};
    for (int i = 0; i < 3; i++) {
        r.left[i] = r.limited[i] ? caps.get_int64(0, i + 1) - used.get_int64(0, i + 1) -
                                       batch_pending_usage(account_id, metrics[i])
                                 : 0;
    }
    return r;
}

bool quota_allows_inbound(int64 account_id, int segments) {
    Room r = room(account_id);
    if (r.limited[0] && r.left[0] < segments) {
        return false;
    }
    // An inbound message that no agent may answer is refused too: the plan's agent messages are used up.
    return !(r.limited[2] && r.left[2] < 1);
}

bool quota_allows_outbound(int64 account_id, int segments) {
    Room r = room(account_id);
    return !(r.limited[1] && r.left[1] < segments);
}

}  // namespace darkspere

using namespace darkspere;

// usage_report — an account's usage of the calendar month (UTC) holding period (NULL: this month), per
// metric, with overage in cents; the body of darkspere.usage(account_id) and darkspere.usage(account_id,
// period).
static Datum usage_report(FunctionCallInfo fcinfo, int64 account_id, Datum period, bool period_null) {
    ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    InitMaterializedSRF(fcinfo, 0);

    SPI_connect();
    Datum args[2] = {Int64GetDatum(account_id), period};
    char nulls_arg[2] = {' ', period_null ? 'n' : ' '};
    SpiResult report = spi_run(kUsageTerms, args, nullptr, true, 0);
    if (report.empty()) {
        raise_missing("account", account_id);
    }
    SpiResult usage = spi_run(kUsageUsed, args, nulls_arg, true, 0);
    for (uint64 r = 0; r < report.rows(); r++) {
        int64 used = usage.get_int64(0, report.get_int32(r, 5));
        bool unlimited = report.is_null(r, 2);
        int64 included = report.get_int64(r, 2);
        int64 price = report.get_int32(r, 3);
        bool hard_cap = report.get_bool(r, 4);
        // Hard-capped plans never bill overage; unlimited metrics have none.
        int64 overage = (unlimited || hard_cap || used <= included) ? 0 : used - included;
        bool isnull;
        Datum values[5] = {report.get_datum(r, 1, &isnull), Int64GetDatum(used), Int64GetDatum(included),
                           Int64GetDatum(overage), Int64GetDatum(overage * price)};
        bool nulls[5] = {false, false, unlimited, false, false};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    SPI_finish();
    return (Datum)0;
}

// darkspere_usage — this calendar month's usage of an account: 0.1.0's darkspere.usage(account_id), kept for
// a 0.1.0 database that loads this library before ALTER EXTENSION UPDATE replaces it with usage(account_id,
// period).
DARKSPERE_FUNCTION(darkspere_usage) {
    return usage_report(fcinfo, required_int64(fcinfo, 0, "account_id"), (Datum)0, true);
}

// darkspere_usage_period — the usage of the month holding period (darkspere.usage(account_id, period)); a
// NULL period is this month.
DARKSPERE_FUNCTION(darkspere_usage_period) {
    int64 account_id = required_int64(fcinfo, 0, "account_id");
    bool period_null = PG_ARGISNULL(1);
    return usage_report(fcinfo, account_id, period_null ? (Datum)0 : PG_GETARG_DATUM(1), period_null);
}
