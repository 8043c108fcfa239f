// src/worker/node_conninfo.hpp — the worker's database settings pointed at another node of the same Citus
// cluster: one queue per node (docs/scaling.md) means a pool and a LISTEN connection on every worker node,
// with the coordinator's user, password, database and TLS settings.
#pragma once

#include <optional>
#include <string>

namespace darkspere::worker {

// conninfo_for_node — `conninfo` (a key=value string or a postgresql:// URI, as libpq takes it) with its host
// and port replaced by node_host and node_port (hostaddr dropped: it would override the host); every other
// setting kept. The result is a key=value string with each value quoted. nullopt (and *error) when libpq
// cannot parse `conninfo`.
std::optional<std::string> conninfo_for_node(const std::string &conninfo, const std::string &node_host,
                                             int node_port, std::string *error);

}  // namespace darkspere::worker
