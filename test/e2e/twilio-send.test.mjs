// test/e2e/twilio-send.test.mjs — how the worker talks to the Messages API: one well-formed, authenticated form
// POST per reply; 429 and 5xx are retried with backoff until one send succeeds; a permanent 4xx error is not
// retried and leaves the job dead-lettered with Twilio's code.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { waitFor } from './lib/net.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

const attemptsTo = (stack, to) => stack.api.requests.filter((r) => r.params?.To === to);

describe('sending through the Twilio Messages API', () => {
    test('the request is a Basic-authenticated form POST with To, From, Body and StatusCallback', { timeout: 30000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http' }] });
        const from = phone(1);
        assertAccepted(await stack.sms(from, 'shape check'));
        const [message] = await stack.waitForReplies(from, 1);
        const [request] = attemptsTo(stack, from);
        assert.equal(request.method, 'POST');
        assert.equal(request.path, `/2010-04-01/Accounts/${stack.sid}/Messages.json`);
        assert.match(request.content_type, /^application\/x-www-form-urlencoded/);
        assert.deepEqual(Object.keys(request.params).filter((k) => ['To', 'From', 'Body', 'StatusCallback'].includes(k)).sort(),
            ['Body', 'From', 'StatusCallback', 'To']);
        assert.equal(message.from, stack.number);
        assert.equal(message.status_callback, `${stack.worker.url}/twilio/status`);
    });

    for (const [title, failure, times] of [['429 Too Many Requests', { code: 429 }, 2], ['500 from Twilio', { code: 500 }, 2], ['503 from Twilio', { status: 503 }, 1]]) {
        test(`${title} is retried until the send succeeds, and sent once`, { timeout: 90000 }, async (t) => {
            const stack = await useStack(t, cluster, { agents: [{ kind: 'http' }] });
            const from = phone(2);
            stack.api.fail({ to: from, times, ...failure });
            assertAccepted(await stack.sms(from, 'retry me'));
            await stack.waitForReplies(from, 1, { timeoutMs: 60000 });
            const settled = await stack.quiet(from, 1000);
            assert.equal(settled.length, 1, 'one SMS delivered');
            assert.equal(attemptsTo(stack, from).length, times + 1, `${times} failed attempts, then one success`);
        });
    }

    test('21211 (invalid To) is not retried; the sms_send job is dead with the Twilio code', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http' }] });
        const from = phone(3);
        stack.api.fail({ to: from, code: 21211, times: 100 });
        assertAccepted(await stack.sms(from, 'doomed'));
        const dead = await waitFor(async () => (await stack.db.query("SELECT last_error FROM darkspere.dead_jobs WHERE kind = 'sms_send'"))[0],
            { timeoutMs: 30000, message: 'a dead sms_send job' });
        assert.match(dead.last_error, /21211/);
        await new Promise((r) => setTimeout(r, 1500));
        assert.equal(attemptsTo(stack, from).length, 1, 'a permanent error is not retried');
        assert.equal(stack.repliesTo(from).length, 0);
    });
});
