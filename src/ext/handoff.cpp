// src/ext/handoff.cpp — jobs handed straight to the worker whose call created them, already leased.
//
// A job normally waits for a claim: NOTIFY, another transaction that UPDATEs the job row to running, a round
// trip. When the caller is a worker with room — its webhook's receive_sms_leased, its own ack_jobs — a job
// that may run now (nothing earlier with its ordering key pending or running, not held back, its agent not at
// the worker's share) is stored as running, attempt 1, leased to that worker, and returned to it with the
// call's result. The lease fences it exactly like a claimed attempt: if the worker never acks, tick()
// reclaims it. A scope is plain data in palloc'd memory, opened and closed around one SQL call (closed by
// PG_FINALLY).
#include "ext/handoff.hpp"
#include "ext/validate.hpp"

namespace darkspere {

static HandoffScope *open_scope = nullptr;

void require_handoff_target(FunctionCallInfo fcinfo, int worker_arg, int lease_arg) {
    require_non_empty(required_text(fcinfo, worker_arg, "worker"), "worker");
    if (PG_ARGISNULL(lease_arg)) {
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("lease must not be null")));
    }
    require_lease(PG_GETARG_INTERVAL_P(lease_arg));
}

void handoff_init(HandoffScope *scope, MemoryContext context, Datum worker, Datum lease, int budget,
                  ArrayType *busy_agents) {
    scope->context = context;
    scope->worker = worker;
    scope->lease = lease;
    scope->budget = budget;
    scope->sends = true;
    scope->nbusy = 0;
    scope->busy = nullptr;
    if (busy_agents != nullptr) {
        Datum *elems;
        deconstruct_array(busy_agents, INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE, &elems, nullptr,
                          &scope->nbusy);
        scope->busy = static_cast<int64 *>(MemoryContextAlloc(context, sizeof(int64) * (scope->nbusy + 1)));
        for (int i = 0; i < scope->nbusy; i++) {
            scope->busy[i] = DatumGetInt64(elems[i]);
        }
    }
    scope->njobs = 0;
    scope->jobs = static_cast<HandedJob *>(MemoryContextAlloc(context, sizeof(HandedJob) * (budget + 1)));
}

void handoff_open(HandoffScope *scope) {
    open_scope = scope;
}

void handoff_close() {
    open_scope = nullptr;
}

bool handoff_lease(int64 agent_id, Datum *worker, Datum *lease) {
    if (open_scope == nullptr || open_scope->njobs >= open_scope->budget ||
        (agent_id == 0 && !open_scope->sends)) {
        return false;
    }
    for (int i = 0; i < open_scope->nbusy; i++) {
        if (open_scope->busy[i] == agent_id) {
            return false;  // the worker's calls to this agent are at its share: leave it to a later claim
        }
    }
    *worker = open_scope->worker;
    *lease = open_scope->lease;
    return true;
}

void handoff_record(int64 job_id, int32 attempt, const char *kind, Datum payload) {
    HandoffScope &s = *open_scope;
    MemoryContext old = MemoryContextSwitchTo(s.context);
    s.jobs[s.njobs++] = {job_id, attempt, kind, PointerGetDatum(PG_DETOAST_DATUM_COPY(payload))};
    MemoryContextSwitchTo(old);
}

}  // namespace darkspere
