// src/ext/plan_gate.hpp — the mcp_protocol feature gate at routing time (issue #15; plan_gate.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

// DS_EFFECTIVE_PLAN — the plan whose limits apply now to the account (an SQL expression, e.g. "$1"), as
// darkspere.effective_plan: its plan, or 'free' while a payment is more than darkspere.payment_grace past
// due. Scalar subqueries, each pinned to the account, and no outer join: on Citus the statement that holds it
// stays a single-shard statement (an outer join from a reference table to a distributed one would make Citus
// fetch the tables to the coordinator first).
// clang-format off
#define DS_EFFECTIVE_PLAN(account)                                                                    \
    "CASE WHEN EXISTS (SELECT 1 FROM darkspere.subscriptions sb"                                      \
    "                   WHERE sb.account_id = " account " AND sb.past_due_since"                       \
    "                         + COALESCE(NULLIF(pg_catalog.current_setting('darkspere.payment_grace',"  \
    "                                                                      true), ''),"                \
    "                                    '7 days')::interval <= pg_catalog.now())"                     \
    "     THEN 'free'"                                                                                 \
    "     ELSE (SELECT ac.plan FROM darkspere.accounts ac WHERE ac.account_id = " account ") END"
// clang-format on
// DS_FEATURE_OVERRIDE_NOW — the account's unexpired override of a feature (enabled or not), NULL without one.
#define DS_FEATURE_OVERRIDE_NOW(account, feature)                   \
    "(SELECT ov.enabled FROM darkspere.account_features ov"         \
    "  WHERE ov.account_id = " account " AND ov.feature = " feature \
    "    AND (ov.expires_at IS NULL OR ov.expires_at > pg_catalog.now()))"
// DS_FEATURE_NOW — whether the account (an SQL expression, e.g. "$1") has an on/off feature (an SQL string
// literal, e.g. "'mcp_protocol'") now: an unexpired override, or else its effective plan's row (what
// darkspere.account_features_now says of that one feature, written out: on Citus a statement that calls that
// function beside a distributed table fails on the tenant's node, while these subqueries, each pinned to the
// account, run there). It takes no column of the outer query, so PostgreSQL plans it as an InitPlan, run only
// the first time it is reached: a statement that puts it after `a.protocol <> 'mcp' OR` never runs it while
// the agents it looks at speak http.
// clang-format off
#define DS_FEATURE_NOW(account, feature)                                                              \
    "COALESCE(" DS_FEATURE_OVERRIDE_NOW(account, feature) ","                                         \
    "          (SELECT pf.enabled FROM darkspere.plan_features pf"                                    \
    "            WHERE pf.feature = " feature " AND pf.plan = " DS_EFFECTIVE_PLAN(account) "),"        \
    "          false)"
// clang-format on
// DS_MCP_ALLOWED — whether the account has mcp_protocol now (the gate of MCP agents, issue #15).
#define DS_MCP_ALLOWED(account) DS_FEATURE_NOW(account, "'mcp_protocol'")
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
