// src/ext/api_keys.hpp — how API keys are stored: only their SHA-256 (api_keys.cpp; register_agent in
// accounts.cpp hashes its agent keys the same way, so authenticate_key finds both).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

// api_key_hash — the SHA-256 of a key's bytes as a bytea in the current memory context.
bytea *api_key_hash(const char *key, size_t len);

}  // namespace darkspere
