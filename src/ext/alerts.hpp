// src/ext/alerts.hpp — alert channels' secrets and alert_notify payloads (alerts.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

// alert_notify_payload — a claimed alert_notify job's payload with its channel's webhook_url and
// signing_secrets added (never stored); 0 when the channel is gone or disabled.
Datum alert_notify_payload(Datum payload);

}  // namespace darkspere
