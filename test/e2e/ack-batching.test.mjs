// test/e2e/ack-batching.test.mjs — under a burst the worker acks many jobs per statement (one commit for many
// outcomes), and batching loses nothing: every text is answered exactly once and every job is acked once.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
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
    test('a burst of 60 texts: each answered once, all 120 jobs done, acks shared statements, every job handed off', { timeout: 60000 }, async (t) => {
        // Capacity for the whole burst: no text waits for an agent (tick() would route it, then a claim runs it).
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http', capacity: 100 }] });
        const phones = Array.from({ length: 60 }, (_, i) => phone(700 + i));
        const answers = await Promise.all(phones.map((p) => stack.sms(p, `burst from ${p}`)));
        answers.forEach(assertAccepted);
        for (const p of phones) {
            const replies = await stack.waitForReplies(p, 1);
            assert.equal(replies.length, 1);
            assert.match(replies[0].body, new RegExp(`burst from \\${p}`));
        }
        assert.equal((await stack.quiet(phones[0], 500)).length, 1, 'no second reply');

        const jobs = await stack.db.query(
            `SELECT j.kind, j.state, count(*)::int AS n, max(j.attempt)::int AS attempts
               FROM darkspere.jobs j JOIN darkspere.messages m ON m.message_id = j.message_id
              WHERE m.phone = ANY($1) GROUP BY j.kind, j.state ORDER BY j.kind`, [phones]);
        assert.deepEqual(jobs, [
            { kind: 'agent_call', state: 'done', n: 60, attempts: 1 },
            { kind: 'sms_send', state: 'done', n: 60, attempts: 1 },
        ]);
        const { batches, acks, fallbacks, handedOff } = await batchStats(stack.worker);
        assert.equal(fallbacks, 0, 'every batch statement succeeded (none fell back to one-by-one acks)');
        assert.ok(acks >= 2, `some acks went in batches (${acks} acks in ${batches} batch statements)`);
        assert.ok(batches < acks, `a batch holds more than one ack on average (${acks} acks in ${batches} batches)`);
        // The webhook's statement leased each agent call to this worker, and each answer's ack leased its reply's
        // send (the worker had room): no job needed a claim.
        assert.equal(handedOff, 120, 'every call and every send was handed off by the statement that created it');
    });
});
