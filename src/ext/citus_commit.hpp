// src/ext/citus_commit.hpp — on Citus, every transaction of a DarkSpere function commits atomically across
// the coordinator and the tenant's node.
//
// On Citus the job queue and a few other tables stay local tables of the coordinator, while the tenant tables
// live on worker nodes (docs/scaling.md). Citus does not count writes to the coordinator's local tables as a
// node of its transaction: a message that writes its tenant's node and the coordinator's `jobs` would commit
// the worker node first, with a one-phase COMMIT, then the coordinator. A crash between the two would keep
// the stored message and lose its job, which nothing would ever run. So every DarkSpere function asks Citus
// for two-phase commit (PREPARE on the worker node, commit on the coordinator, COMMIT PREPARED after,
// recovered by Citus if the coordinator dies in between). Without a remote write it changes nothing.
#pragma once

namespace darkspere {

// Citus's own switch (Use2PCForCoordinatedTransaction, citus.so), or nullptr when Citus is not loaded in this
// backend; looked up once per backend.
extern void (*citus_use_two_phase_commit)();
extern bool citus_commit_resolved;

// Whether Citus is loaded in this backend (set by resolve_citus_commit).
extern bool citus_loaded;

// resolve_citus_commit — finds Citus's switch when Citus is loaded (it registers its settings when it is:
// citus.shard_count is one); warns once if a loaded Citus lacks it (another major version).
void resolve_citus_commit();

// citus_is_loaded — whether Citus is loaded in this backend, looked up once.
inline bool citus_is_loaded() {
    if (__builtin_expect(!citus_commit_resolved, 0)) {
        resolve_citus_commit();
    }
    return citus_loaded;
}

// commit_atomically_on_citus — called by every SQL-callable function (DARKSPERE_FUNCTION); on plain
// PostgreSQL it is one load and one branch.
inline void commit_atomically_on_citus() {
    if (__builtin_expect(!citus_commit_resolved, 0)) {
        resolve_citus_commit();
    }
    if (citus_use_two_phase_commit != nullptr) {
        citus_use_two_phase_commit();
    }
}

}  // namespace darkspere
