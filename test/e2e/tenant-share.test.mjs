// test/e2e/tenant-share.test.mjs — one tenant cannot take every worker slot (issue #10 item 15): while tenant A's
// three agents hold every call they get, A's agent calls fill only its share of the worker
// (max-in-flight-per-account, half of max-in-flight by default) and tenant B's turn is claimed, called and answered
// meanwhile.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { waitFor } from './lib/net.mjs';
import { startHttpAgent } from './peers/http-agent.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

describe('per-account share of the worker', () => {
    test("tenant A's three held agents take 3 of 6 slots; tenant B's reply arrives while they are still held", { timeout: 90000 }, async (t) => {
        // Held calls must not time out while the test looks: the deadline (and so the lease) is far away.
        const stack = await useStack(t, cluster, {
            agents: ['a1', 'a2', 'a3'].map((name) => ({ kind: 'http', name, mode: 'hold', capacity: 100 })),
            worker: { agentDeadlineMs: 60000, extraArgs: ['--max-in-flight', '6'] },
        });
        const agentsA = stack.agents.map((a) => a.peer);
        const agentB = await startHttpAgent({ name: 'tenant-b' });
        t.after(() => agentB.close());
        const numberB = '+14155550177';
        await stack.addTenant({ name: 'TenantB', number: numberB, agentUrl: agentB.url });
        const heldA = () => agentsA.reduce((n, a) => n + a.held, 0);
        const answeredA = () => agentsA.reduce((n, a) => n + a.answered, 0);

        // A floods: 12 conversations, far more than the worker has slots.
        const phonesA = Array.from({ length: 12 }, (_, i) => phone(300 + i));
        (await Promise.all(phonesA.map((p) => stack.sms(p, `flood from ${p}`)))).forEach(assertAccepted);
        await waitFor(() => heldA() >= 3, { timeoutMs: 20000, message: "tenant A's agents hold 3 calls" });

        const phoneB = phone(399);
        assertAccepted(await stack.sms(phoneB, 'hello from B', { to: numberB }));
        const [reply] = await stack.waitForReplies(phoneB, 1, { timeoutMs: 20000 });
        assert.equal(reply.body, 'tenant-b: hello from B [history 0]');
        assert.equal(answeredA(), 0, "B's reply came while every call of tenant A was still held");
        assert.equal(heldA(), 3, 'tenant A got its share (3 of 6 slots), not every slot');
        const waiting = await stack.db.value(
            "SELECT count(*)::int FROM darkspere.jobs WHERE kind = 'agent_call' AND state = 'pending' AND account_id = $1",
            [stack.accountId]);
        assert.equal(waiting, 9, "the rest of A's flood waits in the queue");

        // Released, A's whole flood is answered: the share delays a tenant, it never drops its turns.
        for (const a of agentsA) a.release();
        await waitFor(() => phonesA.every((p) => stack.repliesTo(p).length === 1),
            { timeoutMs: 30000, message: "every turn of tenant A answered" });
    });
});
