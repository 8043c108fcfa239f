// src/ext/delivery.hpp — provider delivery statuses (delivery.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

void apply_pending_delivery_events(const char *message_sid);

}  // namespace darkspere
