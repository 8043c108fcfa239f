// test/e2e/status-callback.test.mjs — Twilio's signed status callbacks update the delivery status of the SMS
// the worker sent, monotonically (sent → delivered | undelivered | failed), whatever order they arrive in.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { randomHex, waitFor } from './lib/net.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { signedPost } from './lib/twilio-webhook.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

function outbound(stack, sid) {
    return stack.db.one('SELECT status, error_code, segments, message_sid FROM darkspere.messages WHERE message_sid = $1', [sid]);
}

describe('status callbacks update delivery status', () => {
    test('sent then delivered → the outbound message is delivered; every callback answered 200', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http' }], statusCallbacks: { delayMs: 100 } });
        const from = phone(1);
        assertAccepted(await stack.sms(from, 'deliver me'));
        const [reply] = await stack.waitForReplies(from, 1);
        await waitFor(() => stack.api.callbacks.filter((c) => c.sid === reply.sid && c.answered).length === 2,
            { message: () => `two answered callbacks: ${JSON.stringify(stack.api.callbacks)}` });
        assert.deepEqual(stack.api.callbacks.map((c) => [c.status, c.answered]), [['sent', 200], ['delivered', 200]]);
        const row = await waitFor(async () => {
            const r = await outbound(stack, reply.sid);
            return r?.status === 'delivered' && r;
        }, { message: 'status delivered in darkspere.messages' });
        assert.equal(row.segments, 1, 'segments recorded from the send');
        const events = await stack.db.query('SELECT status FROM darkspere.delivery_events WHERE message_sid = $1 ORDER BY event_id', [reply.sid]);
        assert.deepEqual(events.map((e) => e.status), ['sent', 'delivered']);
    });

    test('a late "sent" after "delivered" is recorded but changes nothing; repeats are harmless', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http' }] });
        const from = phone(2);
        assertAccepted(await stack.sms(from, 'out of order'));
        const [reply] = await stack.waitForReplies(from, 1);
        await waitFor(async () => (await outbound(stack, reply.sid))?.message_sid, { message: 'the sid stored by complete_job' });
        for (const status of ['delivered', 'sent', 'delivered', 'sending']) {
            const cb = await stack.api.postStatus(reply.sid, status);
            assert.equal(cb.answered, 200, `callback ${status}: ${cb.error || cb.answered}`);
        }
        assert.equal((await outbound(stack, reply.sid)).status, 'delivered', 'the first terminal state wins');
        const events = await stack.db.query('SELECT status FROM darkspere.delivery_events WHERE message_sid = $1 ORDER BY event_id', [reply.sid]);
        assert.deepEqual(events.map((e) => e.status), ['delivered', 'sent', 'delivered', 'sending'],
            'every callback is kept in the history, even those that changed nothing');
    });

    test('undelivered with ErrorCode 30003 records the error', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http' }] });
        const from = phone(3);
        assertAccepted(await stack.sms(from, 'unreachable'));
        const [reply] = await stack.waitForReplies(from, 1);
        await waitFor(async () => (await outbound(stack, reply.sid))?.message_sid, { message: 'the sid stored by complete_job' });
        assert.equal((await stack.api.postStatus(reply.sid, 'sent')).answered, 200);
        assert.equal((await stack.api.postStatus(reply.sid, 'undelivered', 30003)).answered, 200);
        const row = await outbound(stack, reply.sid);
        assert.equal(row.status, 'undelivered');
        assert.equal(row.error_code, 30003);
    });

    test('a callback signed by another configured Twilio account changes nothing; the owner\'s still applies', { timeout: 60000 }, async (t) => {
        // Two tenants on one worker, each with its own Twilio account: the other one's token verifies its
        // callback, but the message belongs to a number of the first account.
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http' }], withWorker: false });
        const otherSid = 'AC0e2e0000000000000000000000000002';
        const otherToken = randomHex(32);
        await stack.startWorker({ twilioAccounts: { [stack.sid]: stack.authToken, [otherSid]: otherToken } });
        const from = phone(4);
        assertAccepted(await stack.sms(from, 'mine'));
        const [reply] = await stack.waitForReplies(from, 1);
        const stored = await waitFor(async () => {
            const r = await outbound(stack, reply.sid);
            return r?.message_sid && r;
        }, { message: 'the sid stored by complete_job' });
        const forged = await signedPost({
            target: stack.statusUrl,
            authToken: otherToken,
            params: { AccountSid: otherSid, MessageSid: reply.sid, MessageStatus: 'failed', ErrorCode: '30008' },
        });
        // 200 like any callback (an answer of its own would tell the caller the sid exists elsewhere), after commit.
        assert.equal(forged.status, 200, forged.text);
        const row = await outbound(stack, reply.sid);
        assert.equal(row.status, stored.status, 'the forged status changed nothing');
        assert.equal(row.error_code, null);
        const events = await stack.db.query(
            'SELECT status, provider_account, applied FROM darkspere.delivery_events WHERE message_sid = $1 ORDER BY event_id', [reply.sid]);
        assert.deepEqual(events.map((e) => [e.status, e.provider_account, e.applied]), [['failed', otherSid, true]],
            'the forged callback is kept with the account it was signed for');
        // Naming the first account's number as From does not help: that number is not one of the other
        // AccountSid's, so the callback speaks for no tenant.
        const forgedFrom = await signedPost({
            target: stack.statusUrl,
            authToken: otherToken,
            params: { AccountSid: otherSid, From: stack.number, MessageSid: reply.sid, MessageStatus: 'undelivered', ErrorCode: '30005' },
        });
        assert.equal(forgedFrom.status, 200, forgedFrom.text);
        assert.equal((await outbound(stack, reply.sid)).status, stored.status, 'the forged From changed nothing');
        const named = await stack.db.query(
            "SELECT account_id, applied FROM darkspere.delivery_events WHERE message_sid = $1 AND status = 'undelivered'", [reply.sid]);
        assert.deepEqual(named.map((e) => [e.account_id, e.applied]), [[null, true]], 'recorded for no tenant, refused');
        assert.equal((await stack.api.postStatus(reply.sid, 'delivered')).answered, 200);
        assert.equal((await outbound(stack, reply.sid)).status, 'delivered');
        // The owner's callbacks carry From: their events name the tenant.
        const owners = await stack.db.query(
            "SELECT count(*)::int AS n FROM darkspere.delivery_events WHERE message_sid = $1 AND provider_account = $2 AND account_id IS NOT NULL", [reply.sid, stack.sid]);
        assert.ok(owners[0].n >= 1, 'the genuine callback names its tenant');
    });
});
