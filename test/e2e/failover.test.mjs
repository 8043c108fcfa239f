// test/e2e/failover.test.mjs — when a session's agent fails (times out, answers 500, answers garbage, reports a
// tool error), the turn moves to a healthy agent, the conversation's history moves with it, and the person gets
// exactly one reply. When no agent can answer, the account's fallback text is sent once instead.
//
// Each case makes the failure deterministic through stickiness: agent A answers the first turn (B is in
// maintenance, so A owns the session), then B is activated and A starts failing; the second turn goes to A,
// fails, and must be answered by B.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { everyQueue, startCluster } from './lib/cluster.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

const DEADLINE_MS = 1500;

function makeFailing(agent, how) {
    if (agent.protocol === 'mcp') agent.peer.setBehavior(how.behavior, { delayMs: how.delayMs });
    else agent.peer.setMode(how.mode, { delayMs: how.delayMs });
}

function callsOf(agent) {
    return agent.protocol === 'mcp' ? agent.peer.calls : agent.peer.requests;
}

// requestsSeen counts what reached the agent over HTTP: every JSON-RPC message for MCP (a 500 may stop the
// worker at initialize, before any tools/call), every request for http.
function requestsSeen(agent) {
    return agent.protocol === 'mcp' ? agent.peer.rpc.length : agent.peer.requests.length;
}

describe('a failing agent fails over to a healthy one; the user gets one reply', () => {
    const cases = [
        ['http agent times out', 'http', { mode: 'timeout' }],
        ['http agent answers 500', 'http', { mode: 'error500' }],
        ['http agent answers malformed JSON', 'http', { mode: 'malformed' }],
        ['http agent answers a non-string reply', 'http', { mode: 'bad-reply' }],
        ['MCP tool is slower than the deadline', 'mcp', { behavior: 'slow', delayMs: DEADLINE_MS * 4 }],
        ['MCP tool returns isError', 'mcp', { behavior: 'isError' }],
        ['MCP server answers 500', 'mcp', { behavior: 'error500' }],
    ];
    for (const [title, kind, how] of cases) {
        test(title, { timeout: 60000 }, async (t) => {
            const stack = await useStack(t, cluster, {
                agents: [{ kind, name: 'agent-a' }, { kind, name: 'agent-b', status: 'maintenance' }],
                worker: { agentDeadlineMs: DEADLINE_MS },
            });
            const [a, b] = stack.agents;
            const from = phone(1);

            assertAccepted(await stack.sms(from, 'first'));
            const [first] = await stack.waitForReplies(from, 1);
            assert.equal(first.body, 'agent-a: first [history 0]');
            const session = await stack.db.one('SELECT session_id, agent_id FROM darkspere.sessions WHERE phone = $1', [from]);
            assert.equal(session.agent_id, a.agentId, 'agent A owns the session');

            await stack.db.query('SELECT darkspere.set_agent_status($1, $2)', [b.agentId, 'active']);
            makeFailing(a, how);
            const seenBefore = requestsSeen(a);
            const started = Date.now();
            assertAccepted(await stack.sms(from, 'second'));
            const replies = await stack.waitForReplies(from, 2, { timeoutMs: 30000 });
            const elapsed = Date.now() - started;
            assert.equal(replies[1].body, 'agent-b: second [history 2]',
                'B answers the failed turn, with the history A built');
            const settled = await stack.quiet(from, 1500);
            assert.equal(settled.length, 2, `exactly one reply to the failed turn, got ${JSON.stringify(settled.map((m) => m.body))}`);
            assert.ok(requestsSeen(a) > seenBefore, 'A was tried first');
            assert.equal(callsOf(b).filter((c) => c.message === 'second').length, 1, 'B answered once');
            assert.equal(String(callsOf(b)[0].session_id), String(callsOf(a)[0].session_id),
                'the conversation keeps its session id across failover');
            const moved = await stack.db.one('SELECT session_id, agent_id FROM darkspere.sessions WHERE phone = $1', [from]);
            assert.equal(moved.session_id, session.session_id);
            assert.equal(moved.agent_id, b.agentId, 'the session now belongs to B');
            if (how.mode === 'timeout' || how.behavior === 'slow') {
                assert.ok(elapsed >= DEADLINE_MS, `the worker waited for the deadline (${elapsed} ms)`);
            }

            assertAccepted(await stack.sms(from, 'third'));
            const later = await stack.waitForReplies(from, 3);
            assert.equal(later[2].body, 'agent-b: third [history 4]', 'the session stays with B');
        });
    }
});

describe('when no agent can answer', () => {
    test('the fallback text is sent exactly once and the turn is dead-lettered', { timeout: 90000 }, async (t) => {
        const fallbackText = 'Sorry, we cannot answer right now. Call us at 555-0100.';
        const stack = await useStack(t, cluster, {
            agents: [{ kind: 'http', name: 'agent-a', mode: 'error500' }, { kind: 'http', name: 'agent-b', mode: 'error500' }],
            fallbackText,
            worker: { agentDeadlineMs: DEADLINE_MS },
        });
        const from = phone(2);
        assertAccepted(await stack.sms(from, 'anyone?'));
        const [reply] = await stack.waitForReplies(from, 1, { timeoutMs: 60000 });
        assert.equal(reply.body, fallbackText);
        const settled = await stack.quiet(from, 2000);
        assert.equal(settled.length, 1, 'the fallback is sent once');
        const attempts = stack.agents.reduce((n, a) => n + a.peer.requests.length, 0);
        assert.ok(attempts >= 2 && attempts <= 3, `both agents tried, at most 3 attempts (max_attempts), got ${attempts}`);
        const dead = await everyQueue(stack.db, "SELECT kind, last_error FROM darkspere.dead_jobs WHERE kind = 'agent_call'");
        assert.equal(dead.length, 1, 'the turn is visible in darkspere.dead_jobs');
    });
});
