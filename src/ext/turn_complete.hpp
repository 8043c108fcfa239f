// src/ext/turn_complete.hpp — what a completed agent call or send stores (turn_complete.cpp), for ack.cpp.
#pragma once

#include "ext/pg.hpp"

extern "C" {
#include "utils/jsonb.h"
}

namespace darkspere {

// result_latency — the result's latency_ms when it is a number (clamped to 0 … INT32_MAX, rounded).
bool result_latency(Jsonb *result, int32 *latency_ms);
// complete_agent_call — the agent answered the turn (result.reply: its text, or null for the fallback text).
void complete_agent_call(int64 job_id, int32 attempt, int64 account_id, int64 message_id, int64 agent_id,
                         Jsonb *result);
// complete_sms_send — the provider took the SMS (result: sid, status, segments).
void complete_sms_send(int64 job_id, int32 attempt, int64 account_id, int64 message_id, Jsonb *result);

}  // namespace darkspere
