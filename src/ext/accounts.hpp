// src/ext/accounts.hpp — tenants: the account check shared by the functions that take an account id
// (accounts.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

void require_account(int64 account_id);
// agent_account — the account of an agent, for the calls that take an agent id alone (an operator's, or
// record_agent_result); raises (raise_missing) when there is none. On Citus this one read
// asks every shard; the statements after it name the account and reach one.
int64 agent_account(int64 agent_id);

}  // namespace darkspere
