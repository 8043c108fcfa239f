// test/e2e/ack-batching.test.mjs — under a burst the worker acks many jobs per statement (one commit for many
// outcomes), and batching loses nothing: every text is answered exactly once and every job is acked once. While
// one ack statement runs, another tenant's outcomes are acked in a small statement beside it.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { waitFor } from './lib/net.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';
import { readMetric } from './lib/worker.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

// The histogram's _count and _sum lines of darkspere_ack_batch_size.
async function batchStats(worker) {
    return {
        batches: await readMetric(worker, 'darkspere_ack_batch_size_count'),
        acks: await readMetric(worker, 'darkspere_ack_batch_size_sum'),
        fallbacks: await readMetric(worker, 'darkspere_ack_batch_fallbacks_total'),
        handedOff: await readMetric(worker, 'darkspere_jobs_handed_off_total'),
    };
}

describe('ack batching', () => {
    test('a burst of 60 texts: each answered once, all 120 jobs done, acks shared statements, every job handed off', { timeout: 120000 }, async (t) => {
        // Capacity for the whole burst: no text waits for an agent (tick() would route it, then a claim runs it).
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http', capacity: 100 }] });
        const phones = Array.from({ length: 60 }, (_, i) => phone(700 + i));
        const answers = await Promise.all(phones.map((p) => stack.sms(p, `burst from ${p}`)));
        answers.forEach(assertAccepted);
        // Generous: under ASan (scripts/test sanitize) on a busy 2-core machine the burst takes many seconds.
        for (const p of phones) {
            let replies;
            try {
                replies = await stack.waitForReplies(p, 1, { timeoutMs: 45000 });
            } catch (err) {
                // Say where the burst stands, so a failure in CI can be read without rerunning it.
                const jobs = await stack.db.query(
                    'SELECT kind, state, attempt, claimed_by, last_error, count(*)::int AS n FROM darkspere.jobs GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2');
                const messages = await stack.db.query(
                    'SELECT direction, status, count(*)::int AS n FROM darkspere.messages GROUP BY 1, 2 ORDER BY 1, 2');
                err.message += `\njobs: ${JSON.stringify(jobs)}\nmessages: ${JSON.stringify(messages)}`
                    + `\nsent to Twilio: ${stack.api.messages.length}`;
                throw err;
            }
            assert.equal(replies.length, 1);
            assert.match(replies[0].body, new RegExp(`burst from \\${p}`));
        }
        assert.equal((await stack.quiet(phones[0], 500)).length, 1, 'no second reply');

        // A reply reaches Twilio before the worker has read the 201 and committed the send's ack, so the last sends
        // may still be running here (under ASan, for seconds): wait for every job of the burst to be finished.
        const burstJobs = () => stack.db.query(
            `SELECT j.kind, j.state, count(*)::int AS n, max(j.attempt)::int AS attempts
               FROM darkspere.jobs j JOIN darkspere.messages m ON m.message_id = j.message_id
              WHERE m.phone = ANY($1) GROUP BY j.kind, j.state ORDER BY j.kind, j.state`, [phones]);
        let jobs;
        await waitFor(async () => (jobs = await burstJobs()).every((g) => g.state === 'done' || g.state === 'dead'),
            { timeoutMs: 45000, intervalMs: 100, message: () => `every job of the burst finished: ${JSON.stringify(jobs)}` });
        const errors = await stack.db.query(`SELECT j.kind, j.attempt, j.last_error FROM darkspere.jobs j
              JOIN darkspere.messages m ON m.message_id = j.message_id WHERE m.phone = ANY($1) AND j.attempt > 1`, [phones]);
        assert.deepEqual(jobs, [
            { kind: 'agent_call', state: 'done', n: 60, attempts: 1 },
            { kind: 'sms_send', state: 'done', n: 60, attempts: 1 },
        ], `each job ran once; those that ran again: ${JSON.stringify(errors)}`);
        const { batches, acks, fallbacks, handedOff } = await batchStats(stack.worker);
        assert.equal(fallbacks, 0, 'every batch statement succeeded (none fell back to one-by-one acks)');
        assert.ok(acks >= 2, `some acks went in batches (${acks} acks in ${batches} batch statements)`);
        assert.ok(batches < acks, `a batch holds more than one ack on average (${acks} acks in ${batches} batches)`);
        // The webhook's statement leased each agent call to this worker, and each answer's ack leased its reply's
        // send (the worker had room): no job needed a claim.
        assert.equal(handedOff, 120, 'every call and every send was handed off by the statement that created it');
    });

    test("a tenant's reply does not wait for another tenant's ack statement: it is acked in a small one beside it", { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, {
            agents: [{ kind: 'http', name: 'bakery', mode: 'slow', delayMs: 1500 }, { kind: 'http', name: 'cafe', status: 'maintenance' }],
        });
        // A second tenant on the same worker and Twilio account, answered at once by the second agent server.
        const cafeNumber = '+14155550198';
        await stack.addTenant({ name: 'Cafe', number: cafeNumber, agentUrl: stack.agents[1].peer.url });

        // The bakery's agent call runs for 1.5 s; meanwhile the test takes its job row, so the ack statement that
        // carries its answer blocks.
        const bakeryPhone = phone(960);
        assertAccepted(await stack.sms(bakeryPhone, 'bread please'));
        const holder = await stack.db.pool.connect();
        try {
            await holder.query('BEGIN');
            await holder.query(`SELECT 1 FROM darkspere.jobs WHERE kind = 'agent_call' AND account_id = $1 FOR UPDATE`, [stack.accountId]);
            await waitFor(async () => (await stack.db.value(
                `SELECT count(*)::int FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%ack_jobs%'`)) === 1,
            { timeoutMs: 10000, message: "the bakery's ack statement waiting for the row" });

            const cafePhone = phone(961);
            assertAccepted(await stack.sms(cafePhone, 'one latte', { to: cafeNumber }));
            const [reply] = await stack.waitForReplies(cafePhone, 1, { timeoutMs: 10000 });
            assert.equal(reply.body, 'cafe: one latte [history 0]');
            assert.deepEqual(stack.repliesTo(bakeryPhone), [], "the bakery's ack is still blocked");
        } finally {
            await holder.query('ROLLBACK');
            holder.release();
        }
        const [bread] = await stack.waitForReplies(bakeryPhone, 1, { timeoutMs: 10000 });
        assert.equal(bread.body, 'bakery: bread please [history 0]');
        assert.equal((await stack.quiet(bakeryPhone, 300)).length, 1, 'one reply each');
        assert.equal(stack.repliesTo(phone(961)).length, 1);
        assert.equal((await batchStats(stack.worker)).fallbacks, 0, 'no ack statement failed');
    });
});
