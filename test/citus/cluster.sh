# test/citus/cluster.sh — sourced by test/citus/run and bench/run-citus.sh: a throwaway Citus cluster on loopback
# (a coordinator and two workers, as the unprivileged PostgreSQL user, via scripts/pgcluster).
#
#   citus_start WORK [CONF]   start the three nodes under WORK (CONF: extra postgresql.conf lines for every
#                             node), CREATE EXTENSION citus on each and add the workers to the coordinator.
#                             Sets the array citus_nodes and the map citus_port; returns non-zero on failure.
#   citus_stop WORK           stop the three nodes (the caller removes WORK).
#   citus_attach WORK         fill citus_port from the nodes started under WORK (by another process).
#   citus_create_database DB  CREATE DATABASE DB on every node and make it a Citus database like postgres is: Citus
#                             keeps its extension and node list per database (test/e2e: one database per test).
#   citus_on NODE ARGS...     psql as postgres on that node (-qXAt, ON_ERROR_STOP), in database $citus_db
#                             (default postgres).
# Needs Citus 13.2 installed into the PostgreSQL 15 that pg_config names (docs/scaling.md, "Building Citus").
citus_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
citus_nodes=(coordinator worker1 worker2)
declare -A citus_port

citus_installed() { [[ -f "$(pg_config --pkglibdir)/citus.so" ]]; }

citus_on() {
    local node=$1
    shift
    psql -h 127.0.0.1 -p "${citus_port[$node]}" -U postgres -d "${citus_db:-postgres}" -qXAt -v ON_ERROR_STOP=1 "$@"
}

# citus_each ARGS...: citus_on every node at once (a second per node saved: the e2e tests make a database each);
# fails if any of them fails.
citus_each() {
    local n pid pids=() status=0
    for n in "${citus_nodes[@]}"; do
        citus_on "$n" "$@" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || status=1; done
    return $status
}

# citus_setup DB: CREATE EXTENSION citus in DB on every node, and register the coordinator and the workers in DB's
# metadata on the coordinator.
citus_setup() {
    local citus_db=$1 # citus_on reads it
    citus_each -c 'CREATE EXTENSION citus' || return 1
    citus_on coordinator -c "SELECT citus_set_coordinator_host('127.0.0.1', ${citus_port[coordinator]})" \
        -c "SELECT citus_add_node('127.0.0.1', ${citus_port[worker1]})" \
        -c "SELECT citus_add_node('127.0.0.1', ${citus_port[worker2]})" >/dev/null
}

citus_start() {
    local work=$1 conf=${2:-} n
    # One master key for every node (darkspere.secret_key_file): agents' signing secrets are derived from it on
    # whichever node claims the call, and distribute() refuses nodes whose keys differ (docs/scaling.md).
    head -c 32 /dev/urandom >"$work/secret.key"
    for n in "${citus_nodes[@]}"; do
        "$citus_root/scripts/pgcluster" start "$work/$n" >/dev/null || { echo "citus: could not start $n" >&2; return 1; }
        install -m 0600 -o "$(stat -c %U "$work/$n/data")" "$work/secret.key" "$work/$n/data/darkspere_secret.key"
        # Citus must be preloaded; max_prepared_transactions for its two-phase commits.
        printf "shared_preload_libraries = 'citus'\nmax_prepared_transactions = 100\n%s\n" "$conf" \
            >>"$work/$n/data/postgresql.conf"
        "$citus_root/scripts/pgcluster" restart "$work/$n" >/dev/null || { tail -20 "$work/$n/server.log" >&2; return 1; }
        citus_port[$n]=$(cat "$work/$n/port")
    done
    citus_setup postgres
}

citus_attach() {
    local n
    for n in "${citus_nodes[@]}"; do citus_port[$n]=$(cat "$1/$n/port") || return 1; done
}

citus_create_database() {
    # Not Citus's own propagation (citus.enable_create_database_propagation): it creates the database on the
    # workers but neither the extension nor the node list in it, so every node needs its own statements anyway.
    # client_min_messages: Citus's NOTICE that it did not propagate the statement.
    PGOPTIONS='-c client_min_messages=warning' citus_each -c "CREATE DATABASE \"$1\"" || return 1
    citus_setup "$1"
}

citus_stop() {
    local n
    for n in "${citus_nodes[@]}"; do "$citus_root/scripts/pgcluster" stop "$1/$n" >/dev/null 2>&1; done
}
