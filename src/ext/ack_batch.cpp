// src/ext/ack_batch.cpp — darkspere.ack_jobs: many fenced acks in one call, their counter updates written
// once, and the SMS sends they create handed straight to the acking worker.
//
// A worker acks together what finished while its previous ack statement ran, often dozens of jobs. Acked one
// by one, every agent answer would upsert the account's usage counter and update the agent's load and health
// rows, and every reply it creates would wait for a claim (another transaction, an UPDATE of the job row and
// a round trip) before the worker could send it. Here each ack runs exactly as complete_job / fail_job does
// (same fence, same effects, same transaction), but:
//   - usage, agent load and agent health changes are written once per key when the batch ends
//     (counter_batch.cpp);
//   - an sms_send that may run now is stored already leased to the acking worker (attempt 1) and returned
//     with the ack results, up to the room the worker says it has (a hand-off, handoff.cpp).
#include "ext/counter_batch.hpp"
#include "ext/errors.hpp"
#include "ext/handoff.hpp"
#include "ext/queue.hpp"
#include "ext/spi_plans.hpp"

namespace darkspere {

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

static void require_ack_field(const SpiResult &acks, uint64 row, int column, const char *field) {
    if (acks.is_null(row, column)) {
        ereport(ERROR,
                (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                 errmsg("acks[%llu].%s must not be null", static_cast<unsigned long long>(row), field)));
    }
}

// run_acks — the loop of ack_jobs inside its SPI connection; accepted[i] receives row i's outcome.
static void run_acks(Jsonb *acks, bool *accepted, uint64 *nacks) {
    Datum arg[1] = {JsonbPGetDatum(acks)};
    SpiResult rows = spi_run(kReadAcks, arg, nullptr, true, 0);
    *nacks = rows.rows();
    for (uint64 r = 0; r < rows.rows(); r++) {
        require_ack_field(rows, r, 1, "job_id");
        require_ack_field(rows, r, 2, "attempt");
        require_ack_field(rows, r, 3, "complete");
        int64 job_id = rows.get_int64(r, 1);
        int32 attempt = rows.get_int32(r, 2);
        if (rows.get_bool(r, 3)) {
            bool isnull;
            Datum result = rows.get_datum(r, 4, &isnull);
            Jsonb *json = isnull ? nullptr : DatumGetJsonbP(result);
            if (json != nullptr && !JB_ROOT_IS_OBJECT(json)) {
                ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                                errmsg("acks[%llu].result must be a jsonb object",
                                       static_cast<unsigned long long>(r))));
            }
            accepted[r] = job_complete(job_id, attempt, json);
        } else {
            char *error = rows.text_copy(r, 5, CurrentMemoryContext);
            bool retryable = rows.is_null(r, 6) ? true : rows.get_bool(r, 6);
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
    HandoffScope handoff;
    handoff_init(&handoff, CurrentMemoryContext, handoff_max > 0 ? PG_GETARG_DATUM(1) : (Datum)0,
                 handoff_max > 0 ? PG_GETARG_DATUM(2) : (Datum)0, handoff_max, nullptr);
    bool *accepted = static_cast<bool *>(palloc0(sizeof(bool) * (nelems + 1)));
    uint64 nacks = 0;

    SPI_connect();
    batch_open(nelems);
    handoff_open(&handoff);
    PG_TRY();
    { run_acks(acks, accepted, &nacks); }
    PG_FINALLY();
    {
        batch_close();
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
