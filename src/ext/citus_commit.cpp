// src/ext/citus_commit.cpp — finds Citus's two-phase-commit switch (see citus_commit.hpp).
#include "ext/citus_commit.hpp"

#include "ext/errors.hpp"
#include "ext/pg.hpp"

extern "C" {
#include "utils/guc.h"
}

namespace darkspere {

void (*citus_use_two_phase_commit)() = nullptr;
bool citus_commit_resolved = false;
bool citus_loaded = false;

void resolve_citus_commit() {
    citus_commit_resolved = true;
    // Only a Citus already loaded (shared_preload_libraries) is asked: loading it here would fail, and
    // without it no transaction has a remote part. A loaded Citus has defined its settings; a placeholder
    // someone SET without it does not count.
    if (GetConfigOption("citus.shard_count", true, false) == nullptr ||
        (GetConfigOptionFlags("citus.shard_count", true) & GUC_CUSTOM_PLACEHOLDER) != 0) {
        return;
    }
    citus_loaded = true;
    void *found = reinterpret_cast<void *>(
        load_external_function("citus", "Use2PCForCoordinatedTransaction", false, nullptr));
    if (found == nullptr) {
        ereport(WARNING, (errmsg("darkspere: this Citus has no Use2PCForCoordinatedTransaction; a message's "
                                 "transaction may commit the worker node and the coordinator one after the "
                                 "other"),
                          errhint("DarkSpere is tested with Citus 13.2 (docs/scaling.md).")));
        return;
    }
    citus_use_two_phase_commit = reinterpret_cast<void (*)()>(found);
}

}  // namespace darkspere

// darkspere_commit_atomically — darkspere.commit_atomically(), for the PL/pgSQL entry points that write:
// DARKSPERE_FUNCTION asks Citus for two-phase commit before the (empty) body runs.
DARKSPERE_FUNCTION(darkspere_commit_atomically) {
    PG_RETURN_VOID();
}
