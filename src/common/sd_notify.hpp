// src/common/sd_notify.hpp — tells systemd about the daemon's state (READY=1, STOPPING=1) without libsystemd.
//
// The protocol is one datagram of newline-separated KEY=VALUE lines to the AF_UNIX socket named by
// $NOTIFY_SOCKET (sd_notify(3); systemd documents it as a stable interface for exactly this kind of
// reimplementation). Twenty lines here spare every build and package a dependency on libsystemd for one call.
#pragma once

#include <string>

namespace darkspere {

// sd_notify_state — sends `state` (e.g. "READY=1") to $NOTIFY_SOCKET. Returns 1 when sent, 0 when there is no
// $NOTIFY_SOCKET (not started by systemd with Type=notify: nothing to do), -1 on failure with *error set.
// Path sockets ("/run/…") and abstract ones ("@…") are both understood.
int sd_notify_state(const std::string &state, std::string *error = nullptr);

}  // namespace darkspere
