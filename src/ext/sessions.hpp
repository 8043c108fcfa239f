// src/ext/sessions.hpp — one conversation per (account, service number, phone) (sessions.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

struct SessionRef {
    int64 session_id;
    int64 agent_id;       // 0 when the session has no agent yet
    bool agent_eligible;  // the bound agent may keep serving this session (sticky): session_routing_state
    bool has_queued_messages;  // earlier messages of this session wait for an agent: session_routing_state
};
// session_get_or_create — the active session of (account, service number, phone), touched, or a new one; an
// idle one (darkspere.session_idle_timeout) is ended first, with the messages of it still waiting.
SessionRef session_get_or_create(int64 account_id, const char *service_number, const char *phone);
// session_routing_state — fills in whether the bound agent may keep the session and whether earlier messages
// wait. agent_tag: the number's numbers.agent_tag (nullptr: none; a bound agent without it is not eligible);
// mcp_allowed: whether the account has mcp_protocol now (an MCP agent keeps nobody without it).
void session_routing_state(int64 account_id, const char *agent_tag, bool mcp_allowed, SessionRef *ref);
void session_bind_agent(int64 account_id, int64 session_id, int64 agent_id);

}  // namespace darkspere
