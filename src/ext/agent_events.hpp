// src/ext/agent_events.hpp — the record of agent status changes: a darkspere.agent_events row and a NOTIFY
// darkspere_agents per change (agent_events.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

// agent_event — records that the agent went from `from` to `to` because of `reason`, changed by `actor`
// ('probe', or 'person:<login>'), and notifies listeners of darkspere_agents (the payload is the agent id).
// The caller holds the agent's row lock and has already written the new status.
void agent_event(int64 account_id, int64 agent_id, const char *actor, const char *from, const char *to,
                 const char *reason);

}  // namespace darkspere
