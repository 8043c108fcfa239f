// src/ext/route_waiting.cpp — tick()'s routing of texts that wait for an agent (status 'waiting': none was
// eligible when they arrived): accounts in turns, each account's oldest sessions first, sticky agents before
// picks, and the plan's MCP gate failing a text no agent will ever take (maintenance.cpp calls route_queued).
#include "ext/errors.hpp"
#include "ext/plan_gate.hpp"
#include "ext/queue.hpp"
#include "ext/routing.hpp"
#include "ext/sessions.hpp"
#include "ext/settings.hpp"
#include "ext/spi_plans.hpp"

namespace darkspere {

constexpr int kRouteBatch = 200;     // queued messages routed per call
constexpr int kRouteAccounts = 100;  // accounts with queued messages visited per call

// Routing takes accounts in turns: the next account with waiting messages after $1 and up to $2 (one probe of
// messages_waiting_account, however many messages wait; waiting_accounts repeats it, which is the loose index
// scan a recursive CTE would do — Citus runs no recursive CTE across shards). The last account served is kept
// in route_cursor, so the next tick starts after it and no account's backlog can keep the others from their
// turn.
static Statement kNextWaitingAccount = {
    "SELECT m.account_id FROM darkspere.messages m"
    " WHERE m.status = 'waiting' AND m.account_id > $1 AND m.account_id <= $2"
    " ORDER BY m.account_id LIMIT 1",
    2,
    {INT8OID, INT8OID},
    nullptr};

static Statement kRouteCursor = {"SELECT account_id FROM darkspere.route_cursor", 0, {}, nullptr};
static Statement kSetRouteCursor = {
    "INSERT INTO darkspere.route_cursor (account_id) VALUES ($1)"
    " ON CONFLICT (only_row) DO UPDATE SET account_id = excluded.account_id",
    1,
    {INT8OID},
    nullptr};

// The oldest waiting message of each session of one account (later ones wait behind it), the agent tag its
// number requires, and the session's agent when that agent may keep serving it (sticky: capacity is not
// checked; the tag and the plan's mcp_protocol gate are). Sticky sessions first — they need no pick — then
// the oldest sessions.
static Statement kAccountQueued = {
    "SELECT h.message_id, h.session_id, a.agent_id, n.agent_tag"
    "  FROM (SELECT DISTINCT ON (m.session_id) m.message_id, m.session_id, m.service_number"
    "          FROM darkspere.messages m"
    "         WHERE m.status = 'waiting' AND m.account_id = $1 ORDER BY m.session_id, m.message_id) h"
    "  JOIN darkspere.sessions s ON s.session_id = h.session_id AND s.account_id = $1"
    "  LEFT JOIN darkspere.numbers n ON n.number = h.service_number"
    "  LEFT JOIN darkspere.agents a ON a.agent_id = s.agent_id AND a.account_id = $1 AND a.status = 'active'"
    "        AND a.circuit = 'closed' AND a.health_score >= $2"
    "        AND (n.agent_tag IS NULL OR n.agent_tag = ANY (a.tags)) AND " DS_AGENT_PASSES_MCP_GATE(
        "$1") " ORDER BY a.agent_id IS NULL, h.session_id LIMIT $3",
    3,
    {INT8OID, INT4OID, INT4OID},
    nullptr};

// waiting_accounts — up to max accounts with waiting messages, in turn after the cursor (wrapping around).
static int waiting_accounts(int64 cursor, int64 *accounts, int max) {
    int n = 0;
    // After the cursor first, then from the start up to it.
    const int64 ranges[2][2] = {{cursor, PG_INT64_MAX}, {0, cursor}};
    for (const auto &range : ranges) {
        int64 after = range[0];
        while (n < max) {
            Datum args[2] = {Int64GetDatum(after), Int64GetDatum(range[1])};
            SpiResult next = spi_run(kNextWaitingAccount, args, nullptr, true, 1);
            if (next.empty()) {
                break;
            }
            after = accounts[n++] = next.get_int64(0, 1);
        }
    }
    return n;
}

// The mcp_protocol gate's verdict for one agent tag (nullptr: none) of an account, read once per
// route_account call and only after a pick found no agent.
struct GateVerdict {
    const char *tag;
    bool blocked;
};

static bool gate_blocks_cached(int64 account_id, const char *tag, GateVerdict *seen, int *nseen) {
    for (int i = 0; i < *nseen; i++) {
        if ((seen[i].tag == nullptr && tag == nullptr) ||
            (seen[i].tag != nullptr && tag != nullptr && strcmp(seen[i].tag, tag) == 0)) {
            return seen[i].blocked;
        }
    }
    bool blocked = mcp_gate_blocks(account_id, tag);
    seen[(*nseen)++] = {tag, blocked};
    return blocked;
}

// route_account — routes up to `share` waiting messages of one account, oldest session first; returns how
// many. A pick that finds no agent for a tag is not repeated for that tag in this call; one that finds no
// agent at all (no tag) ends the call, as no tagged agent can be free then either — unless the account's
// plan gate is why (MCP agents only, mcp_protocol off: plan_gate.cpp), when the message ends failed with the
// fallback text instead of waiting for an agent that will never come.
static int64 route_account(int64 account_id, int share) {
    MemoryContext caller = CurrentMemoryContext;
    Datum args[3] = {Int64GetDatum(account_id), Int32GetDatum(min_health_score), Int32GetDatum(share)};
    SpiResult queued = spi_run(kAccountQueued, args, nullptr, false, 0);
    int64 routed = 0;
    char **full_tags = static_cast<char **>(palloc(sizeof(char *) * (queued.rows() + 1)));
    int nfull = 0;
    GateVerdict *gate = static_cast<GateVerdict *>(palloc(sizeof(GateVerdict) * (queued.rows() + 1)));
    int ngate = 0;
    for (uint64 r = 0; r < queued.rows(); r++) {
        int64 message_id = queued.get_int64(r, 1);
        int64 session_id = queued.get_int64(r, 2);
        int64 agent_id = queued.get_int64(r, 3);  // the sticky agent, or 0
        char *agent_tag = queued.text_copy(r, 4, caller);
        if (agent_id == 0) {
            bool full = false;
            for (int i = 0; agent_tag != nullptr && i < nfull && !full; i++) {
                full = strcmp(full_tags[i], agent_tag) == 0;
            }
            if (full) {
                continue;
            }
            agent_id = pick_agent(account_id, agent_tag, nullptr, 0);
            if (agent_id == 0 && gate_blocks_cached(account_id, agent_tag, gate, &ngate)) {
                fail_gated_waiting(account_id, message_id);
                continue;
            }
            if (agent_id == 0 && agent_tag == nullptr) {
                break;  // no eligible agent with room; the rest of the list has no sticky agent either
            }
            if (agent_id == 0) {
                full_tags[nfull++] = agent_tag;
                continue;
            }
            session_bind_agent(account_id, session_id, agent_id);
        }
        route_message(account_id, session_id, message_id, agent_id);
        routed++;
    }
    return routed;
}

// route_queued — gives waiting messages an agent, accounts in turns (each gets an equal share of what is left
// of kRouteBatch), the oldest sessions of each first; returns how many were routed. An account without an
// eligible agent costs one look at its queue and one pick per tick, and never delays the next account.
int64 route_queued() {
    SpiResult cursor_row = spi_run(kRouteCursor, nullptr, nullptr, false, 1);
    int64 cursor = cursor_row.empty() ? 0 : cursor_row.get_int64(0, 1);
    int64 *accounts = static_cast<int64 *>(palloc(sizeof(int64) * kRouteAccounts));
    int naccounts = waiting_accounts(cursor, accounts, kRouteAccounts);
    if (naccounts == 0) {
        return 0;
    }
    int64 routed = 0;
    int64 last_served = cursor;
    for (int i = 0; i < naccounts && routed < kRouteBatch; i++) {
        int left = naccounts - i;
        int share = static_cast<int>((kRouteBatch - routed + left - 1) / left);
        routed += route_account(accounts[i], share);
        last_served = accounts[i];
    }
    Datum args[1] = {Int64GetDatum(last_served)};
    spi_run(kSetRouteCursor, args, nullptr, false, 0);
    return routed;
}

}  // namespace darkspere
