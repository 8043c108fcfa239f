// src/ext/notify.cpp — waking the worker with NOTIFY darkspere, throttled per backend.
//
// NOTIFY is a hint, never the queue: the worker also polls. Every transaction that notifies takes a
// database-wide lock from pre-commit until after its commit record is flushed, so notifying transactions
// commit one at a time. A backend therefore notifies at most once per darkspere.notify_interval; the worker
// claims again shortly after each notification, which picks up the jobs whose notification was skipped.
#include "ext/notify.hpp"
#include "ext/settings.hpp"

namespace darkspere {

static TimestampTz last_notify_at = 0;

void notify_worker() {
    TimestampTz now = GetCurrentTimestamp();
    if (last_notify_at != 0 && !TimestampDifferenceExceeds(last_notify_at, now, notify_interval_ms)) {
        return;
    }
    last_notify_at = now;
    Async_Notify("darkspere", "");
}

}  // namespace darkspere
