// src/ext/handoff.hpp — jobs handed straight to the worker whose call created them, already leased
// (handoff.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

// While a scope is open, a new job that may run now is stored already leased to the scope's worker and
// recorded here for the SQL call to return (see handoff.cpp).
struct HandedJob {
    int64 job_id;
    int32 attempt;
    const char *kind;  // a string constant
    Datum payload;     // jsonb, copied into the scope's context
};
struct HandoffScope {
    MemoryContext context;
    Datum worker, lease;  // text, interval
    int budget;           // jobs the worker has room for
    bool sends;  // sms_send jobs too (true after handoff_init); receive_sms_leased hands off agent calls only
    int64 *busy;  // agents at the worker's share: their calls wait for a claim
    int nbusy;
    HandedJob *jobs;
    int njobs;
};
// require_handoff_target — the worker (text) and lease (interval) arguments of a hand-off: present and valid.
void require_handoff_target(FunctionCallInfo fcinfo, int worker_arg, int lease_arg);
void handoff_init(HandoffScope *scope, MemoryContext context, Datum worker, Datum lease, int budget,
                  ArrayType *busy_agents);
void handoff_open(HandoffScope *scope);  // then handoff_close in PG_FINALLY, whatever happens
void handoff_close();
// handoff_lease — the worker and lease for a new job (agent_id 0 for sends) while the budget lasts.
bool handoff_lease(int64 agent_id, Datum *worker, Datum *lease);
void handoff_record(int64 job_id, int32 attempt, const char *kind, Datum payload);

}  // namespace darkspere
