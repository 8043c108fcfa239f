// test/e2e/receive-batching.test.mjs — inbound webhooks that have to wait for a database connection are stored
// together in one receive_sms_batch statement, and each is answered exactly as if it had been stored alone; a
// bad message in a batch fails only its own webhook; a drain answers the webhooks still being stored.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { waitFor } from './lib/net.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { newMessageSid } from './lib/twilio-webhook.mjs';
import { assertAccepted } from './lib/twiml.mjs';
import { readMetric } from './lib/worker.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

// The advisory-lock class receive_sms takes per MessageSid ("DSms", src/ext/inbound.cpp).
const DEDUPE_LOCK_CLASS = 0x44536d73;

// holdFirstWebhook posts one text whose statement blocks on its MessageSid's dedupe lock, held by the test, so
// that with --pool-size 2 (one inbound statement at a time) every webhook posted meanwhile waits in the worker.
// Resolves with {answer, release}: release() lets the blocked statement finish.
async function holdFirstWebhook(stack, from) {
    const messageSid = newMessageSid();
    const holder = await stack.db.pool.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [DEDUPE_LOCK_CLASS, messageSid]);
    const answer = stack.sms(from, 'first, held', { messageSid });
    await waitFor(async () => Number(await stack.db.value(
        `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`)) === 1,
    { message: 'the first webhook waiting for its dedupe lock' });
    return {
        answer,
        release: async () => {
            await holder.query('COMMIT');
            holder.release();
        },
    };
}

// batchedWebhooks starts a stack whose worker runs one inbound statement at a time (--pool-size 2), holds a first
// text's statement (holdFirstWebhook), lets post(stack) send more webhooks, releases the first once all of them
// wait in the worker, and resolves with the stack and their answers in the order post gave them.
async function batchedWebhooks(t, firstPhone, post) {
    const stack = await useStack(t, cluster, {
        plan: 'enterprise',
        agents: [{ kind: 'http', capacity: 100 }],
        worker: { extraArgs: ['--pool-size', '2'] },
    });
    const first = await holdFirstWebhook(stack, firstPhone);
    const pending = post(stack);
    await waitFor(async () => (await readMetric(stack.worker, 'darkspere_inbound_waiting')) === pending.length,
        { message: `${pending.length} webhooks waiting for the held statement` });
    await first.release();
    assertAccepted(await first.answer);
    return { stack, answers: await Promise.all(pending) };
}

describe('inbound batching', () => {
    test('webhooks that wait for the database go in one statement; each is answered as if alone', { timeout: 60000 }, async (t) => {
        const phones = Array.from({ length: 20 }, (_, i) => phone(3001 + i));
        // A keyword rides in the same batch; its answer is inline, as when stored alone.
        const { stack, answers } = await batchedWebhooks(t, phone(3000), (s) => [
            ...phones.map((p) => s.sms(p, `batched from ${p}`)),
            s.sms(phone(3001), 'HELP'),
        ]);
        const helpAnswer = answers.pop();
        answers.forEach((a) => assertAccepted(a));
        assert.equal(helpAnswer.status, 200);
        assert.match(helpAnswer.text, /<Message>Bakery bot: reply STOP to opt out<\/Message>/);
        for (const p of [phone(3000), ...phones]) {
            const replies = await stack.waitForReplies(p, 1);
            assert.equal(replies.length, 1, `one reply to ${p}`);
        }
        assert.match(stack.repliesTo(phones[7])[0].body, new RegExp(`batched from \\${phones[7]}`));
        assert.equal((await stack.quiet(phones[0], 300)).length, 1, 'no second reply');

        assert.equal(await readMetric(stack.worker, 'darkspere_receive_batch_size_count'), 1, 'the 21 waiting webhooks went in one statement');
        assert.equal(await readMetric(stack.worker, 'darkspere_receive_batch_size_sum'), 21);
        assert.equal(await readMetric(stack.worker, 'darkspere_receive_batch_fallbacks_total'), 0);
        // Each batched message's agent call was leased to the worker by the batch statement (no claim needed).
        assert.equal(await readMetric(stack.worker, 'darkspere_jobs_handed_off_total'), 2 * 21, 'every call and every send handed off');
        const stored = await stack.db.value(`SELECT count(*) FROM darkspere.messages WHERE direction = 'in'`);
        assert.equal(Number(stored), 22, '21 texts and the HELP, each stored once');
    });

    test('SIGTERM while a webhook is being stored: the worker answers it (200) before it exits', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, { plan: 'enterprise', agents: [{ kind: 'http', capacity: 100 }] });
        const first = await holdFirstWebhook(stack, phone(3200));
        // No job is in flight, so the job runner's drain ends at once; the held webhook must still get its answer.
        const exited = stack.worker.stop('SIGTERM');
        await stack.worker.waitForLog((l) => l.msg === 'shutting down');
        await first.release();
        assertAccepted(await first.answer);
        assert.deepEqual(await exited, { code: 0, signal: null });
        const stored = await stack.db.value(`SELECT count(*) FROM darkspere.messages WHERE direction = 'in' AND phone = $1`, [phone(3200)]);
        assert.equal(Number(stored), 1, 'the answered text is stored');
    });

    test('a bad message in a batch fails only its own webhook (400); the others are stored one by one', { timeout: 60000 }, async (t) => {
        const phones = Array.from({ length: 5 }, (_, i) => phone(3101 + i));
        const { stack, answers } = await batchedWebhooks(t, phone(3100), (s) => [
            ...phones.map((p) => s.sms(p, `good from ${p}`)),
            s.sms(phone(3199), 'bad media count', { extra: { NumMedia: 'many' } }),
        ]);
        const badAnswer = answers.pop();
        answers.forEach((a) => assertAccepted(a));
        assert.equal(badAnswer.status, 400, badAnswer.text);
        assert.match(badAnswer.text, /invalid input syntax for type integer: "many"/);
        for (const p of phones) assert.equal((await stack.waitForReplies(p, 1)).length, 1);
        assert.equal(await readMetric(stack.worker, 'darkspere_receive_batch_fallbacks_total'), 1);
        const stored = await stack.db.value(
            `SELECT count(*) FROM darkspere.messages WHERE direction = 'in' AND phone = $1`, [phone(3199)]);
        assert.equal(Number(stored), 0, 'the bad message stored nothing');
    });
});
