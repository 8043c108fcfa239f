// src/ext/agent_events.cpp — every change of an agent's status becomes a darkspere.agent_events row and a
// NOTIFY darkspere_agents (whoever made it: a person through set_agent_status or the API, or the health
// probes).
#include "ext/agent_events.hpp"
#include "ext/spi_plans.hpp"

namespace darkspere {

// The NOTIFY is sent at commit (and not at all on rollback), like every NOTIFY; its payload is the agent id
// so a listener can read the agent's events.
static Statement kInsertEvent = {
    "WITH e AS (INSERT INTO darkspere.agent_events (account_id, agent_id, actor, from_status, to_status, reason)"
    "            VALUES ($1, $2, $3, $4, $5, $6) RETURNING agent_id)"
    " SELECT pg_catalog.pg_notify('darkspere_agents', e.agent_id::text) FROM e",
    6,
    {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID},
    nullptr};

void agent_event(int64 account_id, int64 agent_id, const char *actor, const char *from, const char *to,
                 const char *reason) {
    Datum args[6] = {Int64GetDatum(account_id), Int64GetDatum(agent_id), text_datum(actor),
                     text_datum(from),          text_datum(to),          text_datum(reason)};
    spi_run(kInsertEvent, args, nullptr, false, 1);
}

}  // namespace darkspere
