// src/ext/tenant_batch.hpp — cross-tenant batches written tenant by tenant where the tables are distributed.
//
// tick()'s steps span tenants (idle sessions, leases, retention, probes). On Citus the tenant tables are
// distributed by account, and Citus takes no row locks in a statement that reads several shards. So such a
// step reads its batch without locks as (account, id) rows, then locks and changes them — FOR UPDATE SKIP
// LOCKED, its condition checked again — in one statement for the whole batch on one PostgreSQL, and in one
// statement per account on Citus, where each stays on its tenant's shard (docs/scaling.md, "tick() on
// Citus").
#pragma once

#include "ext/pg.hpp"
#include "ext/spi_plans.hpp"

namespace darkspere {

// tenant_tables_distributed — true when Citus is installed in this database: row-locking writes then go one
// account at a time. Read once per tick.
bool tenant_tables_distributed();

// for_each_tenant — calls write(accounts, ids), two bigint[] datums, on the (account, id) rows of `rows`
// (columns 1 and 2): once for all of them, or, when per_tenant, once per account (in order of first
// appearance).
template <typename Write>
void for_each_tenant(const SpiResult &rows, bool per_tenant, Write write) {
    int n = static_cast<int>(rows.rows());
    Datum *accounts = static_cast<Datum *>(palloc(sizeof(Datum) * (n + 1)));
    Datum *ids = static_cast<Datum *>(palloc(sizeof(Datum) * (n + 1)));
    bool *taken = static_cast<bool *>(palloc0(sizeof(bool) * (n + 1)));
    for (int first = 0; first < n; first++) {
        if (taken[first]) {
            continue;
        }
        int64 account_id = rows.get_int64(first, 1);
        int k = 0;
        for (int r = first; r < n; r++) {
            if (!taken[r] && (!per_tenant || rows.get_int64(r, 1) == account_id)) {
                accounts[k] = Int64GetDatum(rows.get_int64(r, 1));
                ids[k++] = Int64GetDatum(rows.get_int64(r, 2));
                taken[r] = true;
            }
        }
        write(PointerGetDatum(construct_array(accounts, k, INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE)),
              PointerGetDatum(construct_array(ids, k, INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE)));
    }
}

// for_each_tenant_kept — for_each_tenant over the rows `keep` keeps of `rows`: `keep` is a statement on jobs
// alone ($1 accounts, $2 ids → account, id; e.g. the rows no job in flight names), run once for all of them
// (jobs is not a tenant table, and Citus joins none with one), then write as for_each_tenant. Nothing runs
// when `rows` is empty.
template <typename Write>
void for_each_tenant_kept(const SpiResult &rows, Statement &keep, bool per_tenant, Write write) {
    for_each_tenant(rows, false, [&](Datum accounts, Datum ids) {
        Datum keys[2] = {accounts, ids};
        SpiResult kept = spi_run(keep, keys, nullptr, false, 0);
        for_each_tenant(kept, per_tenant, write);
    });
}

}  // namespace darkspere
