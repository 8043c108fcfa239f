// test/e2e/status-callback.test.mjs — Twilio's signed status callbacks update the delivery status of the SMS
// the worker sent, monotonically (sent → delivered | undelivered | failed), whatever order they arrive in.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { waitFor } from './lib/net.mjs';
import { phone, useStack } from './lib/stack.mjs';
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
});
