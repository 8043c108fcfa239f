// test/e2e/conversation.test.mjs — a conversation of several turns reaches its agent with its history, for the
// plain `http` protocol and for MCP agents (SDK 1.x: stateless JSON, stateless SSE, stateful sessions), and each
// answer goes back through the Twilio Messages API from the service number, with our StatusCallback.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

const TURNS = ['hi, is this the bakery?', 'what time do you open tomorrow?', 'great, thanks!'];

// converse sends each turn after the previous answer arrived and returns the replies in order.
async function converse(stack, from, turns) {
    const replies = [];
    for (const [i, body] of turns.entries()) {
        assertAccepted(await stack.sms(from, body), `turn ${i + 1}`);
        const sent = await stack.waitForReplies(from, replies.length + 1);
        replies.push(sent[replies.length]);
    }
    return replies;
}

// callsOf returns what the agent received, in a protocol-independent shape.
function callsOf(agent) {
    return agent.protocol === 'mcp' ? agent.peer.calls : agent.peer.requests;
}

function checkConversation(stack, agent, from, replies) {
    const name = agent.name;
    assert.deepEqual(replies.map((r) => r.body), [
        `${name}: ${TURNS[0]} [history 0]`,
        `${name}: ${TURNS[1]} [history 2]`,
        `${name}: ${TURNS[2]} [history 4]`,
    ], 'each turn sees every earlier turn of the conversation');
    for (const reply of replies) {
        assert.equal(reply.from, stack.number, 'replies come from the service number');
        assert.equal(reply.to, from);
        assert.equal(reply.account_sid, stack.sid);
        assert.equal(reply.status_callback, stack.statusUrl, 'StatusCallback points at the worker');
    }
    const calls = callsOf(agent);
    assert.equal(calls.length, 3, 'one agent call per turn');
    assert.deepEqual(calls[2].history, [
        { role: 'user', content: TURNS[0] },
        { role: 'assistant', content: replies[0].body },
        { role: 'user', content: TURNS[1] },
        { role: 'assistant', content: replies[1].body },
    ], 'history is oldest first, user and assistant turns, current message not repeated');
    assert.deepEqual(calls.map((c) => c.message), TURNS);
    const sessions = new Set(calls.map((c) => String(c.session_id)));
    assert.equal(sessions.size, 1, `one session id for the conversation, got ${[...sessions]}`);
    assert.notEqual([...sessions][0], 'undefined', 'the session id is sent');
    if (agent.protocol === 'http') {
        for (const c of calls) {
            assert.equal(c.from, from);
            assert.equal(c.to, stack.number);
            assert.ok(c.request_id, 'request_id is sent');
            assert.equal(c.idempotency_key, c.request_id, 'Idempotency-Key header carries the request id');
            assert.match(c.content_type, /^application\/json/);
        }
        assert.equal(new Set(calls.map((c) => c.request_id)).size, 3, 'each turn has its own request_id');
    }
}

describe('multi-turn conversations keep their history', () => {
    const variants = [
        ['plain http agent', { kind: 'http' }],
        ['MCP agent, stateless JSON', { kind: 'mcp', transport: 'json' }],
        ['MCP agent, stateless SSE', { kind: 'mcp', transport: 'sse' }],
        ['MCP agent, stateful (Mcp-Session-Id, SSE)', { kind: 'mcp', transport: 'stateful' }],
        ['MCP agent, stateful with JSON responses', { kind: 'mcp', transport: 'stateful', jsonResponse: true }],
    ];
    for (const [title, spec] of variants) {
        test(title, { timeout: 60000 }, async (t) => {
            const stack = await useStack(t, cluster, { agents: [spec] });
            const from = phone(1);
            const replies = await converse(stack, from, TURNS);
            checkConversation(stack, stack.agents[0], from, replies);
            // history() as a statement of its own, not per row of a query over sessions: on Citus a function
            // that reads tenant tables cannot run inside a query sent to a shard (docs/scaling.md).
            const sessionId = await stack.db.value('SELECT session_id FROM darkspere.sessions WHERE phone = $1', [from]);
            const stored = await stack.db.query('SELECT direction, body FROM darkspere.history($1, 10)', [sessionId]);
            assert.equal(stored.length, 6, `history() holds three turns and three answers: ${JSON.stringify(stored)}`);
        });
    }

    test('a stateful MCP agent that forgot its sessions (404) is re-initialized and still answers', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'mcp', transport: 'stateful' }] });
        const agent = stack.agents[0];
        const from = phone(2);
        await converse(stack, from, TURNS.slice(0, 1));
        const initializes = () => agent.peer.rpc.filter((r) => r.method === 'initialize').length;
        const before = initializes();
        await agent.peer.expireSessions();
        assertAccepted(await stack.sms(from, 'are you still there?'));
        const replies = await stack.waitForReplies(from, 2);
        assert.equal(replies[1].body, `${agent.name}: are you still there? [history 2]`);
        assert.ok(initializes() > before, 'the worker started a new MCP session after the 404');
        const lastCall = agent.peer.rpc.filter((r) => r.method === 'tools/call').at(-1);
        assert.ok(lastCall.session, 'tools/call carries Mcp-Session-Id');
        assert.ok(lastCall.protocol_version, 'tools/call carries MCP-Protocol-Version');
    });

    test('two people texting at once each keep their own conversation', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http' }] });
        const [alice, bob] = [phone(3), phone(4)];
        await Promise.all([converse(stack, alice, TURNS), converse(stack, bob, ['hello', 'bread?', 'bye'])]);
        const bobReplies = stack.repliesTo(bob).map((r) => r.body);
        assert.deepEqual(bobReplies, ['agent-a: hello [history 0]', 'agent-a: bread? [history 2]', 'agent-a: bye [history 4]']);
        const calls = stack.agents[0].peer.requests;
        const sessionOf = (p) => new Set(calls.filter((c) => c.from === p).map((c) => String(c.session_id)));
        assert.equal(sessionOf(alice).size, 1);
        assert.equal(sessionOf(bob).size, 1);
        assert.notDeepEqual([...sessionOf(alice)], [...sessionOf(bob)], 'different people, different sessions');
        for (const c of calls.filter((x) => x.from === bob)) {
            assert.ok(c.history.every((h) => !TURNS.includes(h.content)), "bob's history never holds alice's turns");
        }
    });
});
