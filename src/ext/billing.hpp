// src/ext/billing.hpp — usage counters and plan quotas (billing.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

// usage_add — counts usage this month; deferred inside an ack batch. metric must be a string constant.
void usage_add(int64 account_id, const char *metric, int64 amount);
void usage_write(int64 account_id, const char *metric, int64 amount);  // now, whatever batch is open
// quota_allows_inbound — false when a hard-capped plan has no room for `segments` more inbound SMS or for one
// more agent message this month.
bool quota_allows_inbound(int64 account_id, int segments);
bool quota_allows_outbound(int64 account_id, int segments);

}  // namespace darkspere
