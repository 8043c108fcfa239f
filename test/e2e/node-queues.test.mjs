// test/e2e/node-queues.test.mjs — Citus with one queue per node (docs/scaling.md): a text's agent call waits in
// its tenant's node's queue and is claimed there, never handed off to the webhook's worker through the
// coordinator, and the worker's /metrics queue depth counts the jobs of every node's queue. Citus mode only
// (DARKSPERE_E2E_CITUS=1, test/citus/e2e); on one PostgreSQL there are no node queues and the file skips.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { everyQueue, startCluster } from './lib/cluster.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const CITUS = process.env.DARKSPERE_E2E_CITUS === '1';
const cluster = CITUS ? await startCluster() : null;
after(() => cluster?.destroy());

// queueDepth reads darkspere_queue_depth{kind, state} from the worker's /metrics (0 when the series is absent).
async function queueDepth(stack, kind, state) {
    const res = await fetch(`${stack.worker.url}/metrics`);
    const text = await res.text();
    const line = text.split('\n').find((l) => l.startsWith(`darkspere_queue_depth{kind="${kind}",state="${state}"}`));
    return line ? Number(line.split(' ').pop()) : 0;
}

async function until(what, check, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const value = await check();
        if (value) return value;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 200));
    }
}

describe('one queue per node', { skip: CITUS ? false : 'Citus mode only (test/citus/e2e)' }, () => {
    test('an agent call runs from its tenant\'s node: no hand-off, and /metrics counts it', { timeout: 60000 }, async (t) => {
        // The agent holds the call until released, so that it stays running across refreshes of the queue
        // depth (every 5 s) well within the call's deadline.
        const stack = await useStack(t, cluster, {
            agents: [{ kind: 'http', mode: 'hold' }],
            worker: { agentDeadlineMs: 30000 },
        });
        const from = phone(1);
        assertAccepted(await stack.sms(from, 'a slow question'));
        await until('the agent call', () => stack.agents[0].peer.requests.length === 1, 15000);

        // The job is in a worker node's queue, running; the coordinator's own queue has none.
        const running = await everyQueue(stack.db,
            "SELECT kind, state FROM darkspere.jobs WHERE kind = 'agent_call' AND state = 'running'");
        assert.equal(running.length, 1, `one running agent call over every queue, got ${JSON.stringify(running)}`);
        assert.equal(await stack.db.value('SELECT count(*)::int FROM darkspere.jobs'), 0,
            "the coordinator's queue holds no job of the text");

        // Claimed by the node's runner, not handed off: the call's start is traced without `handoff`.
        const started = await stack.db.query(
            "SELECT detail FROM darkspere.trace_events WHERE account_id = $1 AND step = 'agent_call_started'",
            [stack.accountId]);
        assert.equal(started.length, 1, `one agent_call_started, got ${JSON.stringify(started)}`);
        assert.equal(started[0].detail.handoff, undefined, `not a hand-off: ${JSON.stringify(started[0].detail)}`);

        // /metrics adds the nodes' queues to the coordinator's.
        await until('darkspere_queue_depth{kind="agent_call",state="running"} 1',
            async () => (await queueDepth(stack, 'agent_call', 'running')) === 1, 12000);

        stack.agents[0].peer.release();
        await stack.waitForReplies(from, 1);
    });
});
