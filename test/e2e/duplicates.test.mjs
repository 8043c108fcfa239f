// test/e2e/duplicates.test.mjs — Twilio may post the same inbound message more than once (its own retries, a
// Fallback URL, a proxy replay). MessageSid is the idempotency key: every copy is answered 200, the message is
// stored once, its agent is called once, and the person gets one reply.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { newMessageSid } from './lib/twilio-webhook.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

async function countInbound(stack, messageSid) {
    return stack.db.value("SELECT count(*)::int FROM darkspere.messages WHERE message_sid = $1 AND direction = 'in'", [messageSid]);
}

describe('a duplicate inbound post routes once', () => {
    test('the same MessageSid posted again after the reply → one message, one agent call, one reply', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http' }] });
        const from = phone(1);
        const messageSid = newMessageSid();
        assertAccepted(await stack.sms(from, 'one loaf please', { messageSid }), 'first post');
        await stack.waitForReplies(from, 1);
        assertAccepted(await stack.sms(from, 'one loaf please', { messageSid }), 'second post');
        const replies = await stack.quiet(from, 1500);
        assert.equal(replies.length, 1, `one reply, got ${JSON.stringify(replies.map((r) => r.body))}`);
        assert.equal(stack.agents[0].peer.requests.length, 1, 'the agent was called once');
        assert.equal(await countInbound(stack, messageSid), 1);
    });

    test('five concurrent copies of one MessageSid → one message, one agent call, one reply', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'mcp', transport: 'json' }] });
        const from = phone(2);
        const messageSid = newMessageSid();
        const results = await Promise.all(Array.from({ length: 5 }, () => stack.sms(from, 'two croissants', { messageSid })));
        results.forEach((r, i) => assertAccepted(r, `copy ${i + 1}`));
        await stack.waitForReplies(from, 1);
        const replies = await stack.quiet(from, 1500);
        assert.deepEqual(replies.map((r) => r.body), ['agent-a: two croissants [history 0]']);
        assert.equal(stack.agents[0].peer.calls.length, 1, 'the agent was called once');
        assert.equal(await countInbound(stack, messageSid), 1);
    });

    test('a new MessageSid with the same text is a new message (dedupe is by id, not by content)', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http' }] });
        const from = phone(3);
        // (not "yes": YES is an opt-in keyword and never reaches an agent)
        assertAccepted(await stack.sms(from, 'sounds good'));
        await stack.waitForReplies(from, 1);
        assertAccepted(await stack.sms(from, 'sounds good'));
        const replies = await stack.waitForReplies(from, 2);
        assert.deepEqual(replies.map((r) => r.body), ['agent-a: sounds good [history 0]', 'agent-a: sounds good [history 2]']);
    });
});
