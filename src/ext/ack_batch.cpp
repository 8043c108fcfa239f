// src/ext/ack_batch.cpp — darkspere.ack_jobs: many fenced acks in one call, their counter updates written
// once, and the SMS sends they create handed straight to the acking worker.
//
// A worker acks together what finished while its previous ack statement ran, often dozens of jobs. Acked one
// by one, every agent answer would upsert the account's usage counter and update the agent's load and health
// rows, and every reply it creates would wait for a claim (another transaction, an UPDATE of the job row and
// a round trip) before the worker could send it. Here each ack runs exactly as complete_job / fail_job does
// (same fence, same effects, same transaction), but:
//   - usage, agent load and agent health changes are summed per key in memory and written once when the
//     batch ends, in key order (so two workers' batches take those row locks in the same order);
//   - an sms_send that may run now is stored already leased to the acking worker (attempt 1) and returned
//     with the ack results, up to the room the worker says it has (a hand-off, handoff.cpp).
// Readers of the deferred counters inside the batch see the same numbers as without it: pick_agent flushes
// first, the quota check adds what is pending. Everything here is plain data in palloc'd memory (no C++
// destructors), reset by PG_FINALLY whatever happens.
#include "ext/darkspere.hpp"
#include "ext/errors.hpp"
#include "ext/spi_plans.hpp"

#include <cstdlib>

namespace darkspere {

namespace {

struct UsageDelta {
    int64 account_id;
    const char *metric;  // a string constant (usage_add's contract)
    int64 amount;
};

struct LoadDelta {
    int64 agent_id;
    int delta;
};

struct HealthEntry {
    int64 agent_id;
    int seq;  // arrival order: an agent's results are applied oldest first
    HealthResult result;
};

// Capacities are sized from the number of acks; an update that does not fit is written at once instead.
struct Batch {
    UsageDelta *usage;
    int nusage, usage_cap;
    LoadDelta *load;
    int nload, load_cap;
    HealthEntry *health;
    int nhealth, health_cap;
    bool flushing;
};

Batch *open_batch = nullptr;

bool deferring() {
    return open_batch != nullptr && !open_batch->flushing;
}

int compare_usage(const void *a, const void *b) {
    auto *x = static_cast<const UsageDelta *>(a);
    auto *y = static_cast<const UsageDelta *>(b);
    if (x->account_id != y->account_id) {
        return x->account_id < y->account_id ? -1 : 1;
    }
    return strcmp(x->metric, y->metric);
}

int compare_load(const void *a, const void *b) {
    auto *x = static_cast<const LoadDelta *>(a);
    auto *y = static_cast<const LoadDelta *>(b);
    return x->agent_id == y->agent_id ? 0 : (x->agent_id < y->agent_id ? -1 : 1);
}

int compare_health(const void *a, const void *b) {
    auto *x = static_cast<const HealthEntry *>(a);
    auto *y = static_cast<const HealthEntry *>(b);
    if (x->agent_id != y->agent_id) {
        return x->agent_id < y->agent_id ? -1 : 1;
    }
    return x->seq - y->seq;
}

}  // namespace

bool batch_defer_usage(int64 account_id, const char *metric, int64 amount) {
    if (!deferring()) {
        return false;
    }
    Batch &b = *open_batch;
    for (int i = 0; i < b.nusage; i++) {
        if (b.usage[i].account_id == account_id && strcmp(b.usage[i].metric, metric) == 0) {
            b.usage[i].amount += amount;
            return true;
        }
    }
    if (b.nusage == b.usage_cap) {
        return false;
    }
    b.usage[b.nusage++] = {account_id, metric, amount};
    return true;
}

bool batch_defer_load(int64 agent_id, int delta) {
    if (!deferring()) {
        return false;
    }
    Batch &b = *open_batch;
    for (int i = 0; i < b.nload; i++) {
        if (b.load[i].agent_id == agent_id) {
            b.load[i].delta += delta;
            return true;
        }
    }
    if (b.nload == b.load_cap) {
        return false;
    }
    b.load[b.nload++] = {agent_id, delta};
    return true;
}

bool batch_defer_health(int64 agent_id, const HealthResult &result) {
    if (!deferring() || open_batch->nhealth == open_batch->health_cap) {
        return false;
    }
    Batch &b = *open_batch;
    b.health[b.nhealth] = {agent_id, b.nhealth, result};
    b.nhealth++;
    return true;
}

int64 batch_pending_usage(int64 account_id, const char *metric) {
    if (open_batch == nullptr) {
        return 0;
    }
    for (int i = 0; i < open_batch->nusage; i++) {
        if (open_batch->usage[i].account_id == account_id &&
            strcmp(open_batch->usage[i].metric, metric) == 0) {
            return open_batch->usage[i].amount;
        }
    }
    return 0;
}

void batch_flush() {
    if (open_batch == nullptr || open_batch->flushing) {
        return;
    }
    Batch &b = *open_batch;
    b.flushing = true;  // the writes below must not defer themselves again
    if (b.nhealth > 0) {
        qsort(b.health, b.nhealth, sizeof(HealthEntry), compare_health);
        HealthResult *results = static_cast<HealthResult *>(palloc(sizeof(HealthResult) * b.nhealth));
        for (int start = 0; start < b.nhealth;) {
            int end = start;
            while (end < b.nhealth && b.health[end].agent_id == b.health[start].agent_id) {
                results[end - start] = b.health[end].result;
                end++;
            }
            health_write(b.health[start].agent_id, results, end - start);
            start = end;
        }
        pfree(results);
    }
    if (b.nload > 0) {
        qsort(b.load, b.nload, sizeof(LoadDelta), compare_load);
        for (int i = 0; i < b.nload; i++) {
            if (b.load[i].delta != 0) {
                agent_load_write(b.load[i].agent_id, b.load[i].delta);
            }
        }
    }
    if (b.nusage > 0) {
        qsort(b.usage, b.nusage, sizeof(UsageDelta), compare_usage);
        for (int i = 0; i < b.nusage; i++) {
            if (b.usage[i].amount != 0) {
                usage_write(b.usage[i].account_id, b.usage[i].metric, b.usage[i].amount);
            }
        }
    }
    b.nhealth = b.nload = b.nusage = 0;
    b.flushing = false;
}

// The acks, in the order given (the worker sorts them by job id, so batches lock job rows in one order).
static Statement kReadAcks = {
    "SELECT a.job_id, a.attempt, a.complete, a.result, a.error, a.retryable"
    "  FROM ROWS FROM (pg_catalog.jsonb_to_recordset($1) AS (job_id bigint, attempt int, complete boolean,"
    "                                                      result jsonb, error text, retryable boolean))"
    "       WITH ORDINALITY AS a(job_id, attempt, complete, result, error, retryable, ord)"
    " ORDER BY a.ord",
    1,
    {JSONBOID},
    nullptr};

static void require_ack_field(uint64 row, int column, const char *field) {
    if (spi_is_null(row, column)) {
        ereport(ERROR,
                (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                 errmsg("acks[%llu].%s must not be null", static_cast<unsigned long long>(row), field)));
    }
}

// run_acks — the loop of ack_jobs inside its SPI connection; accepted[i] receives row i's outcome.
static void run_acks(Jsonb *acks, bool *accepted, uint64 *nacks) {
    Datum arg[1] = {JsonbPGetDatum(acks)};
    uint64 rows = spi_run(kReadAcks, arg, nullptr, true, 0);
    SPITupleTable *table = SPI_tuptable;
    *nacks = rows;
    for (uint64 r = 0; r < rows; r++) {
        SPI_tuptable = table;  // the accessors read SPI_tuptable; each ack's statements replace it
        require_ack_field(r, 1, "job_id");
        require_ack_field(r, 2, "attempt");
        require_ack_field(r, 3, "complete");
        int64 job_id = spi_int64(r, 1);
        int32 attempt = spi_int32(r, 2);
        if (spi_bool(r, 3)) {
            bool isnull;
            Datum result = spi_datum(r, 4, &isnull);
            Jsonb *json = isnull ? nullptr : DatumGetJsonbP(result);
            if (json != nullptr && !JB_ROOT_IS_OBJECT(json)) {
                ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                                errmsg("acks[%llu].result must be a jsonb object",
                                       static_cast<unsigned long long>(r))));
            }
            accepted[r] = job_complete(job_id, attempt, json);
        } else {
            char *error = spi_text_copy(r, 5, CurrentMemoryContext);
            bool retryable = spi_is_null(r, 6) ? true : spi_bool(r, 6);
            accepted[r] = job_fail(job_id, attempt, error ? error : "unspecified error", retryable);
        }
    }
    batch_flush();
}

}  // namespace darkspere

using namespace darkspere;

// darkspere_ack_jobs — acks many (job_id, attempt) at once; returns one row per ack (ord, accepted) and one
// row per sms_send handed to `worker` (job_id, attempt, kind, payload: run it as if claimed).
DARKSPERE_FUNCTION(darkspere_ack_jobs) {
    if (PG_ARGISNULL(0)) {
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("acks must not be null")));
    }
    Jsonb *acks = PG_GETARG_JSONB_P(0);
    if (!JB_ROOT_IS_ARRAY(acks) || JB_ROOT_IS_SCALAR(acks)) {
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("acks must be a jsonb array of objects")));
    }
    int32 handoff_max = PG_ARGISNULL(3) ? 0 : PG_GETARG_INT32(3);
    if (handoff_max < 0 || handoff_max > 10000) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("handoff_max must be between 0 and 10000: %d", handoff_max)));
    }
    if (handoff_max > 0) {
        require_handoff_target(fcinfo, 1, 2);
    }
    ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    InitMaterializedSRF(fcinfo, 0);

    int nelems = JB_ROOT_COUNT(acks);
    Batch batch = {};
    batch.usage_cap = 3 * nelems + 3;
    batch.usage = static_cast<UsageDelta *>(palloc(sizeof(UsageDelta) * batch.usage_cap));
    batch.load_cap = 2 * nelems + 2;
    batch.load = static_cast<LoadDelta *>(palloc(sizeof(LoadDelta) * batch.load_cap));
    batch.health_cap = nelems + 1;
    batch.health = static_cast<HealthEntry *>(palloc(sizeof(HealthEntry) * batch.health_cap));
    HandoffScope handoff;
    handoff_init(&handoff, CurrentMemoryContext, handoff_max > 0 ? PG_GETARG_DATUM(1) : (Datum)0,
                 handoff_max > 0 ? PG_GETARG_DATUM(2) : (Datum)0, handoff_max, nullptr);
    bool *accepted = static_cast<bool *>(palloc0(sizeof(bool) * (nelems + 1)));
    uint64 nacks = 0;

    SPI_connect();
    open_batch = &batch;
    handoff_open(&handoff);
    PG_TRY();
    { run_acks(acks, accepted, &nacks); }
    PG_FINALLY();
    {
        open_batch = nullptr;
        handoff_close();
    }
    PG_END_TRY();
    SPI_finish();

    for (uint64 i = 0; i < nacks; i++) {
        Datum values[6] = {Int32GetDatum(static_cast<int32>(i + 1)), BoolGetDatum(accepted[i]), 0, 0, 0, 0};
        bool nulls[6] = {false, false, true, true, true, true};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    for (int i = 0; i < handoff.njobs; i++) {
        const HandedJob &job = handoff.jobs[i];
        Datum values[6] = {
            0, 0, Int64GetDatum(job.job_id), Int32GetDatum(job.attempt), text_datum(job.kind), job.payload};
        bool nulls[6] = {true, true, false, false, false, false};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum)0;
}
