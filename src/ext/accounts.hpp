// src/ext/accounts.hpp — tenants: the account check shared by the functions that take an account id
// (accounts.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

void require_account(int64 account_id);

}  // namespace darkspere
