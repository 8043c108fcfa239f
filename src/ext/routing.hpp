// src/ext/routing.hpp — choosing an agent and counting the calls in flight on each (routing.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

// pick_agent — the best eligible agent of the account that is not in `exclude`, or 0 when none is. With an
// agent_tag (the service number's numbers.agent_tag; nullptr: any agent) only agents whose tags hold it.
int64 pick_agent(int64 account_id, const char *agent_tag, const int64 *exclude, int nexclude);
// agent_load_add — adds delta to the agent's in-flight calls (sharded); deferred inside an ack batch.
void agent_load_add(int64 account_id, int64 agent_id, int delta);
void agent_load_write(int64 account_id, int64 agent_id, int delta);  // now, whatever batch is open

}  // namespace darkspere
