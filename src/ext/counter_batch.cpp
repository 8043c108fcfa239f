// src/ext/counter_batch.cpp — counter updates of a batch call (ack_jobs, receive_sms_batch), summed in memory
// and written once per key, in key order, when the batch ends.
//
// Handled one by one, every agent answer or inbound message would upsert its account's usage counter and
// update its agent's load (and, for answers, health) row. Inside a batch each change is added to an entry per
// key instead and written by batch_flush, sorted by key, so two batches take those row locks in the same
// order. Readers of the deferred counters inside the batch see the same numbers as without it: pick_agent
// flushes first, the quota check adds what is pending. Everything here is plain data in palloc'd memory (no
// C++ destructors); batch_close (in the caller's PG_FINALLY) forgets it whatever happens.
#include "ext/billing.hpp"
#include "ext/counter_batch.hpp"
#include "ext/health.hpp"
#include "ext/routing.hpp"

#include <cstdlib>

namespace darkspere {

namespace {

struct UsageDelta {
    int64 account_id;
    const char *metric;  // a string constant (usage_add's contract)
    int64 amount;
};

struct LoadDelta {
    int64 agent_id;
    int64 account_id;  // the agent's: the write names it (one shard on Citus)
    int delta;
};

struct HealthEntry {
    int64 agent_id;
    int64 account_id;  // the agent's
    int seq;           // arrival order: an agent's results are applied oldest first
    HealthResult result;
};

// Capacities are sized from the number of items; an update that does not fit is written at once instead.
struct Batch {
    UsageDelta *usage;
    int nusage, usage_cap;
    LoadDelta *load;
    int nload, load_cap;
    HealthEntry *health;
    int nhealth, health_cap;
    bool flushing;
};

Batch *open_batch = nullptr;

bool deferring() {
    return open_batch != nullptr && !open_batch->flushing;
}

int compare_usage(const void *a, const void *b) {
    auto *x = static_cast<const UsageDelta *>(a);
    auto *y = static_cast<const UsageDelta *>(b);
    if (x->account_id != y->account_id) {
        return x->account_id < y->account_id ? -1 : 1;
    }
    return strcmp(x->metric, y->metric);
}

int compare_load(const void *a, const void *b) {
    auto *x = static_cast<const LoadDelta *>(a);
    auto *y = static_cast<const LoadDelta *>(b);
    return x->agent_id == y->agent_id ? 0 : (x->agent_id < y->agent_id ? -1 : 1);
}

int compare_health(const void *a, const void *b) {
    auto *x = static_cast<const HealthEntry *>(a);
    auto *y = static_cast<const HealthEntry *>(b);
    if (x->agent_id != y->agent_id) {
        return x->agent_id < y->agent_id ? -1 : 1;
    }
    return x->seq - y->seq;
}

}  // namespace

bool batch_defer_usage(int64 account_id, const char *metric, int64 amount) {
    if (!deferring()) {
        return false;
    }
    Batch &b = *open_batch;
    for (int i = 0; i < b.nusage; i++) {
        if (b.usage[i].account_id == account_id && strcmp(b.usage[i].metric, metric) == 0) {
            b.usage[i].amount += amount;
            return true;
        }
    }
    if (b.nusage == b.usage_cap) {
        return false;
    }
    b.usage[b.nusage++] = {account_id, metric, amount};
    return true;
}

bool batch_defer_load(int64 account_id, int64 agent_id, int delta) {
    if (!deferring()) {
        return false;
    }
    Batch &b = *open_batch;
    for (int i = 0; i < b.nload; i++) {
        if (b.load[i].agent_id == agent_id) {
            b.load[i].delta += delta;
            return true;
        }
    }
    if (b.nload == b.load_cap) {
        return false;
    }
    b.load[b.nload++] = {agent_id, account_id, delta};
    return true;
}

bool batch_defer_health(int64 account_id, int64 agent_id, const HealthResult &result) {
    if (!deferring() || open_batch->nhealth == open_batch->health_cap) {
        return false;
    }
    Batch &b = *open_batch;
    b.health[b.nhealth] = {agent_id, account_id, b.nhealth, result};
    b.nhealth++;
    return true;
}

int64 batch_pending_usage(int64 account_id, const char *metric) {
    if (open_batch == nullptr) {
        return 0;
    }
    for (int i = 0; i < open_batch->nusage; i++) {
        if (open_batch->usage[i].account_id == account_id &&
            strcmp(open_batch->usage[i].metric, metric) == 0) {
            return open_batch->usage[i].amount;
        }
    }
    return 0;
}

bool batch_health_pending() {
    return open_batch != nullptr && open_batch->nhealth > 0;
}

void batch_pending_loads(ArrayType **agents, ArrayType **deltas) {
    int n = open_batch == nullptr ? 0 : open_batch->nload;
    Datum *agent_elems = static_cast<Datum *>(palloc(sizeof(Datum) * (n + 1)));
    Datum *delta_elems = static_cast<Datum *>(palloc(sizeof(Datum) * (n + 1)));
    for (int i = 0; i < n; i++) {
        agent_elems[i] = Int64GetDatum(open_batch->load[i].agent_id);
        delta_elems[i] = Int32GetDatum(open_batch->load[i].delta);
    }
    *agents = construct_array(agent_elems, n, INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE);
    *deltas = construct_array(delta_elems, n, INT4OID, sizeof(int32), true, TYPALIGN_INT);
}

void batch_flush() {
    if (open_batch == nullptr || open_batch->flushing) {
        return;
    }
    Batch &b = *open_batch;
    b.flushing = true;  // the writes below must not defer themselves again
    if (b.nhealth > 0) {
        qsort(b.health, b.nhealth, sizeof(HealthEntry), compare_health);
        HealthResult *results = static_cast<HealthResult *>(palloc(sizeof(HealthResult) * b.nhealth));
        for (int start = 0; start < b.nhealth;) {
            int end = start;
            while (end < b.nhealth && b.health[end].agent_id == b.health[start].agent_id) {
                results[end - start] = b.health[end].result;
                end++;
            }
            health_write(b.health[start].account_id, b.health[start].agent_id, results, end - start);
            start = end;
        }
        pfree(results);
    }
    if (b.nload > 0) {
        qsort(b.load, b.nload, sizeof(LoadDelta), compare_load);
        for (int i = 0; i < b.nload; i++) {
            if (b.load[i].delta != 0) {
                agent_load_write(b.load[i].account_id, b.load[i].agent_id, b.load[i].delta);
            }
        }
    }
    if (b.nusage > 0) {
        qsort(b.usage, b.nusage, sizeof(UsageDelta), compare_usage);
        for (int i = 0; i < b.nusage; i++) {
            if (b.usage[i].amount != 0) {
                usage_write(b.usage[i].account_id, b.usage[i].metric, b.usage[i].amount);
            }
        }
    }
    b.nhealth = b.nload = b.nusage = 0;
    b.flushing = false;
}

void batch_open(int items) {
    if (open_batch != nullptr) {
        elog(ERROR, "a counter batch is already open");  // one batch call cannot run inside another
    }
    Batch *b = static_cast<Batch *>(palloc0(sizeof(Batch)));
    b->usage_cap = 3 * items + 3;
    b->usage = static_cast<UsageDelta *>(palloc(sizeof(UsageDelta) * b->usage_cap));
    b->load_cap = 2 * items + 2;
    b->load = static_cast<LoadDelta *>(palloc(sizeof(LoadDelta) * b->load_cap));
    b->health_cap = items + 1;
    b->health = static_cast<HealthEntry *>(palloc(sizeof(HealthEntry) * b->health_cap));
    open_batch = b;
}

void batch_close() {
    open_batch = nullptr;
}

}  // namespace darkspere
