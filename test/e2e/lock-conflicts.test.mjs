// test/e2e/lock-conflicts.test.mjs — a webhook whose statement PostgreSQL aborts in a deadlock is stored anyway:
// the worker runs the statement again (it is idempotent by MessageSid and the aborted one changed nothing), so
// the phone's text is answered 200 and replied to instead of refused with a 500 that Twilio does not retry.
//
// Found with three workers under load: one webhook's receive_sms_leased takes its account's usage counter row
// and then its agent's load row, while another connection's receive_sms_batch takes the same two rows in the
// other order (counter rows are shared between connections: shard = backend pid mod 16). Here the test's own
// transaction plays the other connection, so the deadlock happens every time.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { waitFor } from './lib/net.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

describe('lock conflicts between statements', () => {
    test('a webhook aborted in a deadlock is stored on a second try, answered 200 and replied to', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http' }] });
        const agentId = stack.agents[0].agentId;
        // Every counter shard of this month's sms_in exists, so the webhook's statement updates (and locks) an
        // existing row whatever its backend's shard, and the holder below can wait for that row.
        await stack.db.query(
            `INSERT INTO darkspere.usage_counters (account_id, period, metric, shard, used)
             SELECT $1, date_trunc('month', now() AT TIME ZONE 'UTC')::date, 'sms_in', s, 0
               FROM generate_series(0, 15) s ON CONFLICT DO NOTHING`, [stack.accountId]);

        // Which of the two waiters PostgreSQL aborts depends on whose deadlock check runs while the cycle exists:
        // each backend checks once, deadlock_timeout after it began to wait. The webhook begins to wait first,
        // so it must not check before step 3 closes the cycle: 5 s for it (this file's own cluster, applied by
        // the reload to the worker's open connections), where a slow build (ASan) took more than the default 1 s
        // to get from step 2 to step 3. The holder checks only after 60 s, so it is never the one aborted.
        await stack.db.query("ALTER SYSTEM SET deadlock_timeout = '5s'");
        await stack.db.query('SELECT pg_reload_conf()');
        const holder = await stack.db.pool.connect();
        let answer;
        try {
            await holder.query("SET deadlock_timeout = '60s'");
            await holder.query('BEGIN');
            // 1. The holder takes the agent's load rows (every shard).
            await holder.query('UPDATE darkspere.agent_load SET in_flight = in_flight WHERE agent_id = $1', [agentId]);
            // 2. The webhook's statement counts the text (locking its counter row), then waits for a load row.
            const from = phone(970);
            answer = stack.sms(from, 'are you there?');
            await waitFor(async () => (await stack.db.value(
                `SELECT count(*)::int FROM pg_stat_activity
                  WHERE wait_event_type = 'Lock' AND query LIKE '%darkspere.receive_sms%'`)) === 1,
            { timeoutMs: 10000, message: "the webhook's statement waiting for the agent's load row" });
            // 3. The holder now wants the counter rows: a cycle. The webhook's statement checks first (5 s after
            //    it began to wait, against the holder's 60 s) and is aborted; the holder's update goes through.
            await holder.query(`UPDATE darkspere.usage_counters SET used = used WHERE account_id = $1 AND metric = 'sms_in'`,
                [stack.accountId]);
            // 4. A second try waits behind the holder; without one the webhook has its answer (500) by now.
            await waitFor(async () => (await stack.db.value(
                `SELECT count(*)::int FROM pg_stat_activity
                  WHERE wait_event_type = 'Lock' AND query LIKE '%darkspere.receive_sms%'`)) === 1,
            { timeoutMs: 10000, message: 'the webhook stored again, waiting for the holder' });
        } finally {
            await holder.query('ROLLBACK');
            holder.release();
        }
        const res = await answer;
        assertAccepted(res);
        const from = phone(970);
        const [reply] = await stack.waitForReplies(from, 1, { timeoutMs: 20000 });
        assert.equal(reply.body, 'agent-a: are you there? [history 0]');
        assert.equal(await stack.db.value(
            "SELECT count(*)::int FROM darkspere.messages WHERE phone = $1 AND direction = 'in'", [from]), 1,
        'stored once');
        assert.ok(stack.worker.logs.some((l) => l.sqlstate === '40P01'), 'the worker logged the deadlock it retried');
    });
});
