// src/ext/plan_gate.hpp — the mcp_protocol feature gate at routing time (issue #15; plan_gate.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

// DS_MCP_ALLOWED — whether the account (an SQL expression, e.g. "$1") has mcp_protocol now: its effective
// plan's row or an unexpired override (darkspere.account_features_now). It takes no column of the outer
// query, so PostgreSQL plans it as an InitPlan, run only the first time it is reached: a statement that puts
// it after `a.protocol <> 'mcp' OR` never runs it while the agents it looks at speak http.
#define DS_MCP_ALLOWED(account)                                               \
    "COALESCE((SELECT f.enabled FROM darkspere.account_features_now(" account \
    ") f"                                                                     \
    "           WHERE f.feature = 'mcp_protocol'), false)"
// DS_AGENT_PASSES_MCP_GATE — the agent (alias a) may take turns of the account as far as its plan goes.
#define DS_AGENT_PASSES_MCP_GATE(account) "(a.protocol <> 'mcp' OR " DS_MCP_ALLOWED(account) ")"

// mcp_gate_blocks — true when no agent will ever take the account's turns (for the number's agent tag;
// nullptr: any agent) because of the gate alone: mcp_protocol is off, it has MCP agents that are not
// disabled, and no http agent that is not disabled. Read only when no agent was found (the cold path).
bool mcp_gate_blocks(int64 account_id, const char *agent_tag);
// reply_gated — the inbound message (stored 'failed') gets the account's fallback text as its reply, if any.
void reply_gated(int64 account_id, int64 message_id);
// fail_gated_waiting — a waiting message of a gated account ends 'failed', traced `not_routed` (reason
// mcp_not_in_plan), and gets the fallback text; false when it no longer waits.
bool fail_gated_waiting(int64 account_id, int64 message_id);

}  // namespace darkspere
