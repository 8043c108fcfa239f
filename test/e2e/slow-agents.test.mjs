// test/e2e/slow-agents.test.mjs — a slow agent cannot take every slot of the worker: while its calls fill their
// share (max-in-flight-per-agent, four fifths of max-in-flight by default), the rest of its backlog waits in the
// queue and other agents' turns are still claimed, called and answered.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { waitFor } from './lib/net.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

const SLOW_MS = 8000;

describe('slow agents', () => {
    test('20 turns for a slow agent hold 8 of 10 slots; a fast agent is answered meanwhile', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, {
            agents: [
                { kind: 'http', name: 'slow', mode: 'slow', delayMs: SLOW_MS, capacity: 100 },
                { kind: 'http', name: 'fast', status: 'maintenance', capacity: 100 },
            ],
            // Both agents belong to one account: its share is lifted to every slot, so only the per-agent share
            // is at work here (the per-account share has its own test, tenant-share.test.mjs).
            worker: { agentDeadlineMs: SLOW_MS + 4000, extraArgs: ['--max-in-flight', '10', '--max-in-flight-per-account', '10'] },
        });
        const [slow, fast] = stack.agents;
        const slowPhones = Array.from({ length: 20 }, (_, i) => phone(800 + i));
        (await Promise.all(slowPhones.map((p) => stack.sms(p, `slow question from ${p}`)))).forEach(assertAccepted);
        await waitFor(() => slow.peer.requests.length >= 8, { timeoutMs: 10000, message: 'the slow agent holds 8 calls' });

        await stack.db.query("SELECT darkspere.set_agent_status($1, 'active')", [fast.agentId]);
        const fastPhone = phone(850);
        assertAccepted(await stack.sms(fastPhone, 'quick one'));
        const [reply] = await stack.waitForReplies(fastPhone, 1, { timeoutMs: SLOW_MS - 2000 });
        assert.equal(reply.body, 'fast: quick one [history 0]');
        assert.equal(slow.peer.answered, 0, 'the fast reply came while every slow call was still held');
        assert.equal(slow.peer.requests.length, 8, "the slow agent got its share (8 of 10), not every slot");
        const waiting = await stack.db.value(
            "SELECT count(*)::int FROM darkspere.jobs WHERE kind = 'agent_call' AND state = 'pending' AND agent_id = $1",
            [slow.agentId]);
        assert.equal(waiting, 12, 'the rest of the slow backlog waits in the queue');
    });
});
