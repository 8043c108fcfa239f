// test/e2e/queueing.test.mjs — what waits, and what it says while it waits: a text with no agent to answer it is
// 'waiting' until one is back; a turn sent before the previous answer was stored still sees that answer; a reply
// held by the outbound (phone_out) rate limit says so in its job's last_error and goes out once the limit allows.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { waitFor } from './lib/net.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

describe('waiting', () => {
    test("a text with no agent to answer it is 'waiting', and is answered when an agent is back", { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http', status: 'maintenance' }] });
        const agent = stack.agents[0];
        const from = phone(1);
        assertAccepted(await stack.sms(from, 'anyone there?'));
        const inbound = () => stack.db.one(
            "SELECT status, agent_id FROM darkspere.messages WHERE direction = 'in' AND phone = $1", [from]);
        assert.deepEqual(await inbound(), { status: 'waiting', agent_id: null });
        assert.deepEqual(await stack.quiet(from, 1500), [], 'no reply while no agent can answer');
        assert.equal(agent.peer.requests.length, 0);
        assert.equal((await inbound()).status, 'waiting', 'still waiting after a few ticks');

        await stack.db.query("SELECT darkspere.set_agent_status($1, 'active')", [agent.agentId]);
        const [reply] = await stack.waitForReplies(from, 1);
        assert.equal(reply.body, 'agent-a: anyone there? [history 0]');
        const row = await waitFor(async () => {
            const r = await inbound();
            return r.status === 'answered' && r;
        }, { timeoutMs: 10000, message: "the inbound message 'answered'" });
        assert.equal(String(row.agent_id), String(agent.agentId));
        const out = await stack.db.query("SELECT status FROM darkspere.messages WHERE direction = 'out' AND phone = $1", [from]);
        assert.equal(out.length, 1);
        assert.notEqual(out[0].status, 'waiting', "outbound rows carry provider statuses, never 'waiting'");
    });

    test('a turn sent before the previous answer was stored still gets that answer in its history', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http', mode: 'slow', delayMs: 1500 }] });
        const agent = stack.agents[0].peer;
        const from = phone(2);
        assertAccepted(await stack.sms(from, 'first'));
        await waitFor(() => agent.requests.length >= 1, { timeoutMs: 10000, message: 'the first agent call' });
        assertAccepted(await stack.sms(from, 'second'), 'sent while the agent is still answering the first');
        const replies = await stack.waitForReplies(from, 2, { timeoutMs: 20000 });
        assert.deepEqual(replies.map((r) => r.body), ['agent-a: first [history 0]', 'agent-a: second [history 2]']);
        assert.deepEqual(agent.requests[1].history, [
            { role: 'user', content: 'first' },
            { role: 'assistant', content: 'agent-a: first [history 0]' },
        ], 'the answer to the first turn, stored after the second arrived, is in the second turn\'s history');
    });
});

describe('the outbound rate limit', () => {
    test('a held reply says why in last_error and is sent when the limit allows', { timeout: 90000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http' }] });
        const from = phone(3);
        // two SMS per 3 s from this tenant to this phone (subject "<account_id>:<phone>"); past that, its
        // replies are held for 3 s
        await stack.db.query(
            "INSERT INTO darkspere.rate_limit_overrides VALUES ('phone_out', $1 || ':' || $2, 2, 3, 3)",
            [stack.accountId, from]);
        for (const body of ['one', 'two', 'three']) assertAccepted(await stack.sms(from, body));
        const held = await waitFor(async () => (await stack.db.query(
            "SELECT state, last_error, available_at > now() AS later FROM darkspere.jobs WHERE kind = 'sms_send' AND last_error IS NOT NULL"))[0],
        { timeoutMs: 15000, message: 'an sms_send job held by the outbound limit' });
        assert.match(held.last_error, /^held by the phone_out rate limit until \S/);
        assert.equal(held.state, 'pending');
        const replies = await stack.waitForReplies(from, 3, { timeoutMs: 30000 });
        assert.deepEqual(replies.map((r) => r.body).sort(),
            ['agent-a: one [history 0]', 'agent-a: three [history 4]', 'agent-a: two [history 2]']);
    });
});
