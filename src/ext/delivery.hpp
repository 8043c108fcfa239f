// src/ext/delivery.hpp — provider delivery statuses (delivery.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

// apply_pending_delivery_events — weighs the callbacks that came before the sid of account_id's outbound
// message was stored, in arrival order: those of that account (or recorded without one) that may speak for it
// are applied, the others refused; all are marked applied.
void apply_pending_delivery_events(const char *message_sid, int64 account_id);

}  // namespace darkspere
