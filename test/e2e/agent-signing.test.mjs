// test/e2e/agent-signing.test.mjs — every request to an agent carries X-DarkSpere-Signature (issue #10 item 10):
// the loopback agents check it with node:crypto against the secret register_agent returned and refuse anything
// else (peers/signature.mjs), so a reply arriving proves every request of the turn was signed. After
// rotate_agent_secret the worker sends both signatures until the grace period ends.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';
import { parseSignature, signatureMatches } from './peers/signature.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

describe('signed agent requests', () => {
    test('an http agent gets a valid signature over the exact body and refuses unsigned requests', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster);
        const [agent] = stack.agents;
        assert.match(agent.signingSecret, /^dsk_[0-9a-f]{64}$/);

        const p = phone(700);
        assertAccepted(await stack.sms(p, 'signed?'));
        const [reply] = await stack.waitForReplies(p, 1);
        assert.equal(reply.body, 'agent-a: signed? [history 0]');
        const [request] = agent.peer.requests;
        const sig = parseSignature(request.signature);
        assert.equal(sig.v1.length, 1, 'one signature outside a rotation');
        assert.ok(signatureMatches(agent.signingSecret, sig.t, request.raw_body, sig.v1[0]), 'HMAC of "<t>.<body>"');
        assert.ok(Math.abs(Date.now() / 1000 - Number(sig.t)) < 300, 'the timestamp is the time of sending');
        assert.deepEqual(agent.peer.refused, []);

        // Whoever learns the URL but not the secret is refused: no signature, or one made with another secret.
        const body = JSON.stringify({ request_id: 'x', session_id: '1', from: p, to: stack.number, message: 'forged', history: [] });
        const unsigned = await fetch(agent.peer.url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
        assert.equal(unsigned.status, 401);
        const now = Math.floor(Date.now() / 1000);
        const { createHmac } = await import('node:crypto');
        const forged = `t=${now},v1=${createHmac('sha256', 'dsk_guess').update(`${now}.${body}`).digest('hex')}`;
        const wrong = await fetch(agent.peer.url, {
            method: 'POST', headers: { 'Content-Type': 'application/json', 'X-DarkSpere-Signature': forged }, body });
        assert.equal(wrong.status, 401);
        assert.equal(agent.peer.refused.length, 2);
        assert.equal(agent.peer.requests.length, 1, 'refused requests never reach the agent as turns');
    });

    test('an MCP agent with sessions gets every POST signed, initialize and notifications included', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'mcp', transport: 'stateful' }] });
        const [agent] = stack.agents;
        const p = phone(710);
        assertAccepted(await stack.sms(p, 'mcp signed?'));
        const [reply] = await stack.waitForReplies(p, 1);
        assert.equal(reply.body, 'agent-a: mcp signed? [history 0]');
        const posted = agent.peer.rpc.filter((r) => r.http === 'POST');
        const methods = posted.map((r) => r.method);
        for (const m of ['initialize', 'notifications/initialized', 'tools/list', 'tools/call']) {
            assert.ok(methods.includes(m), `${m} was posted (and accepted): ${methods.join(', ')}`);
        }
        assert.ok(posted.every((r) => r.signature !== null), 'every accepted POST carried the header');
        assert.deepEqual(agent.peer.refused, [], 'the agent refused nothing');

        const unsigned = await fetch(agent.peer.url, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
            body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }),
        });
        assert.equal(unsigned.status, 401);
    });

    test('after rotate_agent_secret both signatures are sent during the grace period, new first', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster);
        const [agent] = stack.agents;
        const oldSecret = agent.signingSecret;
        const newSecret = await stack.db.value('SELECT darkspere.rotate_agent_secret($1)', [agent.agentId]);
        assert.match(newSecret, /^dsk_[0-9a-f]{64}$/);
        assert.notEqual(newSecret, oldSecret);

        // The agent still knows only the old secret: it keeps accepting the worker's requests.
        const p = phone(720);
        assertAccepted(await stack.sms(p, 'rotating'));
        await stack.waitForReplies(p, 1);
        const request = agent.peer.requests.at(-1);
        const { t: ts, v1 } = parseSignature(request.signature);
        assert.equal(v1.length, 2, 'two signatures during the grace period');
        const raw = request.raw_body;
        assert.ok(signatureMatches(newSecret, ts, raw, v1[0]), 'the first is made with the new secret');
        assert.ok(signatureMatches(oldSecret, ts, raw, v1[1]), 'the second with the old one');

        // The agent switches to the new secret alone: still accepted.
        agent.peer.setSecrets([newSecret]);
        const q = phone(721);
        assertAccepted(await stack.sms(q, 'rotated'));
        await stack.waitForReplies(q, 1);
        assert.deepEqual(agent.peer.refused, []);
    });
});
