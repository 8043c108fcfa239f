// src/ext/sessions.hpp — one conversation per (account, service number, phone) (sessions.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

struct SessionRef {
    int64 session_id;
    int64 agent_id;            // 0 when the session has no agent yet
    bool agent_eligible;       // the bound agent may keep serving this session (sticky)
    bool has_queued_messages;  // earlier messages of this session wait for an agent
};
// agent_tag: the number's numbers.agent_tag (nullptr: none); a bound agent without it is not eligible.
SessionRef session_get_or_create(int64 account_id, const char *service_number, const char *phone,
                                 const char *agent_tag);
void session_bind_agent(int64 account_id, int64 session_id, int64 agent_id);

}  // namespace darkspere
