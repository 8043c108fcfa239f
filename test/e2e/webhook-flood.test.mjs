// test/e2e/webhook-flood.test.mjs — webhooks go before background work in the worker's connection pool, but a
// steady flood of webhooks must not starve the claims and acks that turn accepted texts into replies: replies
// keep going out while the flood lasts, not only after it ends.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { phone, useStack } from './lib/stack.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

const TEXTS = 600;
const LANES = 48; // webhooks in flight at once: far more than the pool's two connections

describe('a flood of webhooks', () => {
    test('replies go out during the flood, with two pool connections for everything', { timeout: 120000 }, async (t) => {
        const stack = await useStack(t, cluster, {
            plan: 'enterprise',
            agents: [{ kind: 'http', capacity: 1000 }], // the most one agent may take (agents_capacity_max)
            worker: { extraArgs: ['--pool-size', '2'] },
        });
        const phones = Array.from({ length: TEXTS }, (_, i) => phone(2000 + i));
        let next = 0;
        const statuses = {};
        const lane = async () => {
            for (let i = next++; i < TEXTS; i = next++) {
                const { status } = await stack.sms(phones[i], `flood ${i}`);
                statuses[status] = (statuses[status] || 0) + 1;
            }
        };
        await Promise.all(Array.from({ length: LANES }, lane));
        const repliedDuringFlood = stack.api.messages.length;
        assert.deepEqual(statuses, { 200: TEXTS }, 'every webhook accepted');
        assert.ok(repliedDuringFlood >= TEXTS / 10,
            `replies flowed while webhooks kept coming (${repliedDuringFlood} of ${TEXTS} sent before the last webhook was answered)`);
        await stack.api.waitForMessages(TEXTS, { timeoutMs: 60000 });
        assert.equal((await stack.quiet(phones[0], 300)).length, 1, 'one reply per text');
        t.diagnostic(`${repliedDuringFlood} of ${TEXTS} replies sent before the flood ended`);
    });
});
