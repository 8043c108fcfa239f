// src/ext/plan_gate.cpp — the mcp_protocol feature gate at routing time (issue #15, docs/billing.md).
//
// Registering an MCP agent needs mcp_protocol (accounts.cpp). An account that loses it later (a downgrade, an
// expired override, a payment held past its grace) keeps its MCP agents, but they take no turn: the agent
// choices (routing.cpp pick_agent, the sticky check of sessions.cpp, tick()'s queue in maintenance.cpp) carry
// DS_AGENT_PASSES_MCP_GATE. When that leaves a turn no agent at all — MCP agents only — waiting would be
// silent until the session expires, so the message ends 'failed' at once and the account's fallback text
// answers (this file). Getting mcp_protocol back routes new turns to the MCP agents again.
#include "ext/plan_gate.hpp"
#include "ext/queue.hpp"
#include "ext/spi_plans.hpp"
#include "ext/trace.hpp"

namespace darkspere {

// Agents that are not disabled may come back (maintenance, unhealthy): only those count.
#define DS_GATE_AGENTS(protocol_test)                                                     \
    "SELECT 1 FROM darkspere.agents a WHERE a.account_id = $1 AND a.status <> 'disabled'" \
    "   AND a.protocol " protocol_test " AND ($2::text IS NULL OR $2 = ANY (a.tags))"

static Statement kGateBlocks = {
    "SELECT EXISTS (" DS_GATE_AGENTS("= 'mcp'") ") AND NOT EXISTS (" DS_GATE_AGENTS(
        "<> 'mcp'") ") AND NOT " DS_MCP_ALLOWED("$1"),
    2,
    {INT8OID, TEXTOID},
    nullptr};

#undef DS_GATE_AGENTS

static Statement kGatedMessage = {"SELECT" DS_FAILED_MESSAGE_COLUMNS
                                  " FROM darkspere.messages m WHERE m.message_id = $1 AND m.account_id = $2",
                                  2,
                                  {INT8OID, INT8OID},
                                  nullptr};

// The waiting message ends failed and its timeline says why, in one statement.
static Statement kFailGatedWaiting = {
    "WITH m AS (UPDATE darkspere.messages m SET status = 'failed', updated_at = pg_catalog.now()"
    "            WHERE m.message_id = $1 AND m.account_id = $2 AND m.status = 'waiting'"
    "            RETURNING" DS_FAILED_MESSAGE_COLUMNS
    ", m.reply_to),"
    " t AS (INSERT INTO darkspere.trace_events (account_id, request_id, step, detail)"
    "       SELECT m.account_id, " DS_TRACE_REQUEST
    ", 'not_routed',"
    "              pg_catalog.jsonb_build_object('reason', 'mcp_not_in_plan', 'message_id', m.message_id)"
    "         FROM m)"
    " SELECT * FROM m",  // the columns of DS_FAILED_MESSAGE_COLUMNS first, as enqueue_fallback_reply reads
                         // them
    2,
    {INT8OID, INT8OID},
    nullptr};

bool mcp_gate_blocks(int64 account_id, const char *agent_tag) {
    Datum args[2] = {Int64GetDatum(account_id), agent_tag != nullptr ? text_datum(agent_tag) : (Datum)0};
    char nulls[2] = {' ', null_flag(agent_tag == nullptr)};
    SpiResult row = spi_run(kGateBlocks, args, nulls, false, 1);
    return !row.empty() && !row.is_null(0, 1) && row.get_bool(0, 1);
}

void reply_gated(int64 account_id, int64 message_id) {
    Datum args[2] = {Int64GetDatum(message_id), Int64GetDatum(account_id)};
    SpiResult failed = spi_run(kGatedMessage, args, nullptr, false, 1);
    if (!failed.empty()) {
        enqueue_fallback_reply(failed);
    }
}

bool fail_gated_waiting(int64 account_id, int64 message_id) {
    Datum args[2] = {Int64GetDatum(message_id), Int64GetDatum(account_id)};
    SpiResult failed = spi_run(kFailGatedWaiting, args, nullptr, false, 1);
    if (failed.empty()) {
        return false;
    }
    enqueue_fallback_reply(failed);
    return true;
}

}  // namespace darkspere
