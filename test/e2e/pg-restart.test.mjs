// test/e2e/pg-restart.test.mjs — PostgreSQL restarts under traffic and no accepted message is lost: every
// webhook the worker answered 200 (it answers only after commit) eventually gets its reply; webhooks that
// arrive while the database is down are refused with 503 (Twilio then uses its Fallback URL), never
// half-accepted. /readyz tells a load balancer when the database is unreachable.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { sleep, waitFor } from './lib/net.mjs';
import { phone, useStack } from './lib/stack.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

// Bounded traffic: 15 people, ~150 ms apart per person, up to 6 messages each while the restart runs and 2
// more once the worker is ready again, so traffic after the restart is there however long the restart takes
// on a loaded machine. Each person stays under the default outbound limit (10 SMS per minute per phone, then a
// 10 minute block), which would otherwise hold replies back.
const PEOPLE = 15;
const MESSAGES_DURING = 6;
const MESSAGES_AFTER = 2;
const GAP_MS = 150;

async function getStatus(url) {
    try {
        const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
        await res.arrayBuffer();
        return res.status;
    } catch (err) {
        return `error: ${err.message}`;
    }
}

describe('restarting PostgreSQL under traffic', () => {
    test('every webhook answered 200 gets its reply; the others were refused with 503', { timeout: 180000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http', capacity: 100 }] });
        const sent = [];
        let restartedAt = null;
        const send = async (from, body) => {
            let status;
            try {
                status = (await stack.sms(from, body)).status;
            } catch (err) {
                status = `error: ${err.message}`;
            }
            sent.push({ from, body, status, at: Date.now() });
            await sleep(GAP_MS);
        };
        const restart = (async () => {
            await sleep(600);
            await cluster.restart();
            restartedAt = Date.now();
            // The worker notices the new server on its next query or reconnect attempt; traffic resumes once
            // it says it is ready, which this test requires within 30 s.
            await waitFor(async () => (await getStatus(`${stack.worker.url}/readyz`)) === 200,
                { timeoutMs: 30000, message: '/readyz 200 after the restart' });
        })();
        const person = async (k) => {
            const from = phone(k);
            let i = 0;
            for (; i < MESSAGES_DURING && restartedAt === null; i++) await send(from, `p${k}-m${i}`);
            await restart;
            for (const end = i + MESSAGES_AFTER; i < end; i++) await send(from, `p${k}-m${i}`);
        };
        await Promise.all([...Array.from({ length: PEOPLE }, (_, k) => person(k + 1)), restart]);

        const accepted = sent.filter((s) => s.status === 200);
        const refused = sent.filter((s) => s.status !== 200);
        t.diagnostic(`${sent.length} webhooks: ${accepted.length} accepted, ${refused.length} refused during the restart`);
        assert.deepEqual([...new Set(refused.map((s) => s.status))].filter((s) => s !== 503), [],
            'a webhook that could not be committed is refused with 503, never another error');
        assert.ok(accepted.some((s) => s.at > restartedAt), 'the worker reconnected and accepted traffic after the restart');

        const replied = (s) => stack.repliesTo(s.from).some((m) => m.body.startsWith(`agent-a: ${s.body} [`));
        await waitFor(() => accepted.every(replied), {
            timeoutMs: 90000,
            message: () => `replies to every accepted webhook; missing: ${JSON.stringify(accepted.filter((s) => !replied(s)).map((s) => s.body))}`,
        });
        const extra = stack.api.messages.filter((m) => !accepted.some((s) => m.to === s.from && m.body.startsWith(`agent-a: ${s.body} [`)));
        t.diagnostic(`${extra.length} replies to webhooks answered with an error (committed but the answer was lost)`);
        for (const s of accepted) {
            const copies = stack.repliesTo(s.from).filter((m) => m.body.startsWith(`agent-a: ${s.body} [`)).length;
            assert.ok(copies >= 1 && copies <= 2, `${s.body}: ${copies} replies`);
        }
    });

    test('while the database is down: /readyz and webhooks answer 503, /healthz 200; afterwards all is well', { timeout: 120000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http' }] });
        assert.equal(await getStatus(`${stack.worker.url}/readyz`), 200);
        await cluster.stop();
        try {
            await waitFor(async () => (await getStatus(`${stack.worker.url}/readyz`)) === 503,
                { timeoutMs: 15000, message: '/readyz 503 with the database down' });
            assert.equal(await getStatus(`${stack.worker.url}/healthz`), 200, 'the process itself is alive');
            const res = await stack.sms(phone(50), 'is anyone there?');
            assert.equal(res.status, 503, `a webhook that cannot be stored is refused: ${res.status} ${res.text}`);
        } finally {
            await cluster.start();
        }
        await waitFor(async () => (await getStatus(`${stack.worker.url}/readyz`)) === 200,
            { timeoutMs: 30000, message: '/readyz 200 once the database is back' });
        const from = phone(51);
        const res = await stack.sms(from, 'back?');
        assert.equal(res.status, 200, res.text);
        const [reply] = await stack.waitForReplies(from, 1, { timeoutMs: 30000 });
        assert.equal(reply.body, 'agent-a: back? [history 0]');
    });
});
