// src/ext/agent_secrets.hpp — per-agent request-signing secrets, derived and never stored
// (agent_secrets.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

constexpr int kAgentSecretChars = 4 + 64;  // "dsk_" + hex of HMAC-SHA256
// agent_signing_secret — the secret of (agent, generation), derived from the master key (created on first
// use).
void agent_signing_secret(int64 agent_id, int32 generation, char out[kAgentSecretChars + 1]);
// derived_secret — "dsk_" + hex HMAC-SHA256(master key, message): the derivation of agent_signing_secret,
// also used for alert channels ("alert-channel:<name>", alerts.cpp). Distinct message prefixes keep them
// apart.
void derived_secret(const char *message, int len, char out[kAgentSecretChars + 1]);
// agent_signing_secrets_jsonb — {"signing_secrets": [current] or [current, previous]} for an agent_call
// payload.
Datum agent_signing_secrets_jsonb(int64 agent_id, int32 generation, bool in_grace);

class SpiResult;
// payload_with_secrets — a job payload read as (payload jsonb, secret_generation, in_grace) in the first row
// of `row`, with the agent's signing secrets added; 0 when there is no row (the agent or message is gone).
// Used for agent_call and health_probe payloads, built at claim time: secrets are never stored.
Datum payload_with_secrets(int64 agent_id, const SpiResult &row);

}  // namespace darkspere
