# test/citus/remote-writes.awk — reads psql's output of statements run with citus.log_remote_commands = on
# (each "issuing …" NOTICE followed by its "DETAIL: on server user@host:port connectionId: N") and prints one
# summary line: "nodes=<ports written or read, comma-separated> unsafe=<count>", and before it one line per
# unsafe write. A write is unsafe when the transaction it belongs to on that connection is not committed by
# PREPARE TRANSACTION (two-phase): a plain COMMIT, or no BEGIN at all (an autocommitted command). Copies of
# intermediate results (COPY "n_m" … format result) are not table writes.
function flush_command(    key) {
    if (command == "") return
    key = port "/" conn
    nodes[port] = 1
    if (command ~ /^BEGIN/) {
        open_txn[key] = 1
    } else if (command ~ /^PREPARE TRANSACTION/) {
        open_txn[key] = 0; wrote[key] = ""
    } else if (command ~ /^(COMMIT|ROLLBACK)$/ || command ~ /^(COMMIT|ROLLBACK);?$/) {
        if (wrote[key] != "") { print "unsafe: one-phase " command " after: " wrote[key]; unsafe++ }
        open_txn[key] = 0; wrote[key] = ""
    } else if (command ~ /^(INSERT|UPDATE|DELETE|MERGE)/ || command ~ /^COPY darkspere\./ ||
               (command ~ /^WITH/ && command ~ /(UPDATE|INSERT INTO|DELETE FROM) darkspere\./)) {
        if (!open_txn[key]) { print "unsafe: autocommitted: " substr(command, 1, 120); unsafe++ }
        else if (wrote[key] == "") wrote[key] = substr(command, 1, 120)
    }
    command = ""
}
/NOTICE:  issuing / {
    flush_command()
    command = $0
    sub(/.*NOTICE:  issuing /, "", command)
    pending = 1
    next
}
/^DETAIL:  on server / && pending {
    port = $0; sub(/.*@[^:]*:/, "", port); sub(/ .*/, "", port)
    conn = $0; sub(/.*connectionId: /, "", conn)
    pending = 0
    flush_command()
}
END {
    for (key in wrote) if (wrote[key] != "") { print "unsafe: never committed: " wrote[key]; unsafe++ }
    list = ""
    for (p in nodes) list = list (list == "" ? "" : ",") p
    printf "nodes=%s unsafe=%d\n", list, unsafe + 0
}
