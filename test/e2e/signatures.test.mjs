// test/e2e/signatures.test.mjs — only webhooks carrying a valid X-Twilio-Signature (computed by the twilio SDK
// over the public URL with the AccountSid's auth token) get in; everything else is 403 and leaves no trace.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import twilio from 'twilio';
import { startCluster } from './lib/cluster.mjs';
import { phone, startStack } from './lib/stack.mjs';
import { inboundParams, signedPost } from './lib/twilio-webhook.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
let stack;
before(async () => {
    stack = await startStack(cluster, { agents: [{ kind: 'http' }] });
});
after(async () => {
    await stack?.close();
    await cluster.destroy();
});

async function traces(from) {
    return {
        messages: await stack.db.value('SELECT count(*)::int FROM darkspere.messages WHERE phone = $1', [from]),
        sessions: await stack.db.value('SELECT count(*)::int FROM darkspere.sessions WHERE phone = $1', [from]),
        jobs: await stack.db.value(`SELECT count(*)::int FROM darkspere.jobs WHERE payload->>'from' = $1`, [from]),
        agentCalls: stack.agents[0].peer.requests.filter((r) => r.from === from).length,
    };
}

const NOTHING = { messages: 0, sessions: 0, jobs: 0, agentCalls: 0 };

describe('X-Twilio-Signature is required and checked', () => {
    const rejected = [
        ['no signature header', (p) => ({ signature: null })],
        ['an empty signature', () => ({ signature: '' })],
        ['garbage', () => ({ signature: 'not-a-signature' })],
        ['signed with another auth token', () => ({ authToken: 'wrong-token' })],
        ['signed over another URL (different path)', () => ({ signedUrl: `${stack.worker.url}/twilio/other` })],
        ['signed over the listener with another port', () => ({ signedUrl: `http://127.0.0.1:${stack.worker.port + 1}/twilio/sms` })],
        ['a valid signature with one character changed', (p) => {
            const good = twilio.getExpectedTwilioSignature(stack.authToken, stack.webhookUrl, p);
            return { signature: (good[0] === 'A' ? 'B' : 'A') + good.slice(1) };
        }],
        ['params changed after signing (Body)', (p) => ({ signature: twilio.getExpectedTwilioSignature(stack.authToken, stack.webhookUrl, { ...p, Body: 'original' }) })],
        ['an extra parameter not covered by the signature', (p) => ({
            signature: twilio.getExpectedTwilioSignature(stack.authToken, stack.webhookUrl, p), extraParam: true,
        })],
    ];
    for (const [i, [title, tamper]] of rejected.entries()) {
        test(`${title} → 403, nothing stored`, { timeout: 30000 }, async () => {
            const from = phone(100 + i);
            let params = inboundParams({ accountSid: stack.sid, from, to: stack.number, body: 'let me in' });
            const how = tamper(params);
            const signature = how.signature !== undefined ? how.signature
                : twilio.getExpectedTwilioSignature(how.authToken || stack.authToken, how.signedUrl || stack.webhookUrl, params);
            if (how.extraParam) params = { ...params, Injected: 'yes' };
            const res = await signedPost({ target: stack.webhookUrl, params, signature });
            assert.equal(res.status, 403, `expected 403, got ${res.status}: ${res.text}`);
            await new Promise((r) => setTimeout(r, 300));
            assert.deepEqual(await traces(from), NOTHING);
            assert.equal(stack.repliesTo(from).length, 0);
        });
    }

    test('an AccountSid the worker has no token for → 403, nothing stored', { timeout: 30000 }, async () => {
        const from = phone(150);
        const params = inboundParams({ accountSid: 'AC' + 'f'.repeat(32), from, to: stack.number, body: 'who am I' });
        const res = await signedPost({ target: stack.webhookUrl, params, authToken: stack.authToken });
        assert.equal(res.status, 403, `expected 403, got ${res.status}: ${res.text}`);
        assert.deepEqual(await traces(from), NOTHING);
    });

    test('status callbacks are checked too: unsigned → 403, nothing recorded', { timeout: 30000 }, async () => {
        const params = { AccountSid: stack.sid, MessageSid: 'SM' + 'a'.repeat(32), MessageStatus: 'delivered', SmsStatus: 'delivered',
            From: stack.number, To: phone(151), ApiVersion: '2010-04-01', SmsSid: 'SM' + 'a'.repeat(32) };
        const res = await signedPost({ target: stack.statusUrl, params, signature: null });
        assert.equal(res.status, 403, `expected 403, got ${res.status}: ${res.text}`);
        const forged = await signedPost({ target: stack.statusUrl, params, authToken: 'wrong-token', signedUrl: stack.statusUrl });
        assert.equal(forged.status, 403);
        assert.equal(await stack.db.value('SELECT count(*)::int FROM darkspere.delivery_events WHERE message_sid = $1', [params.MessageSid]), 0);
    });

    test('the same webhook correctly signed is accepted and answered (control)', { timeout: 30000 }, async () => {
        const from = phone(160);
        assertAccepted(await stack.sms(from, 'let me in'));
        const [reply] = await stack.waitForReplies(from, 1);
        assert.equal(reply.body, 'agent-a: let me in [history 0]');
        const t = await traces(from);
        assert.equal(t.messages, 2, 'inbound and outbound stored');
        assert.equal(t.agentCalls, 1);
    });

    test('Unicode and empty geo fields are signed and verified like Twilio does', { timeout: 30000 }, async () => {
        const from = phone(161);
        assertAccepted(await stack.sms(from, 'Grüße ✓ 😀 & <tags> + 100%', { extra: { FromCity: '', ToCity: '' } }));
        const [reply] = await stack.waitForReplies(from, 1);
        assert.equal(reply.body, 'agent-a: Grüße ✓ 😀 & <tags> + 100% [history 0]');
    });
});
