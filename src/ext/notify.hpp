// src/ext/notify.hpp — waking the worker with NOTIFY darkspere, throttled per backend (notify.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

void notify_worker();

}  // namespace darkspere
