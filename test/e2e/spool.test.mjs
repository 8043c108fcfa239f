// test/e2e/spool.test.mjs — the spool (docs/worker.md#spool): with spool-dir set, a webhook that arrives while
// PostgreSQL is down is answered 200 once it is fsync'd to disk, and is stored once and answered once when the
// database is back, in each phone's order; a worker killed during replay loses and doubles nothing; a damaged
// record is quarantined and the rest replayed; a full spool refuses with 503 as before; one spool, one worker.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster } from './lib/cluster.mjs';
import { sleep, waitFor } from './lib/net.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { readMetric, startWorker } from './lib/worker.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

// newSpoolDir — a spool-dir of its own for one worker, removed when the file's tests end.
function newSpoolDir() {
    const dir = mkdtempSync(join(tmpdir(), 'darkspere-e2e-spool-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
}

async function metrics(worker) {
    return (await fetch(`${worker.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
}

function quarantined(text, reason) {
    return Number((text.match(new RegExp(`^darkspere_spool_quarantined_total\\{reason="${reason}"\\} (\\S+)$`, 'm')) || [])[1] ?? NaN);
}

async function readyz(worker) {
    try {
        const res = await fetch(`${worker.url}/readyz`, { signal: AbortSignal.timeout(5000) });
        return { status: res.status, text: await res.text() };
    } catch (err) {
        return { status: `error: ${err.message}`, text: '' };
    }
}

// ready again — /readyz reuses an answer for 1 s (docs/worker.md), so one asked just before the database came
// back may still say "database unreachable": wait as a load balancer would, a few probes, for "ready".
async function waitReady(worker) {
    let last = null;
    await waitFor(async () => (last = await readyz(worker)).text === 'ready\n',
        { timeoutMs: 10000, message: () => `/readyz to say ready; last: ${last?.status} ${last?.text}` });
}

// drained — the spool holds nothing unstored (checked twice, since a replay could be between records).
async function waitDrained(worker, { timeoutMs = 120000 } = {}) {
    await waitFor(async () => (await readMetric(worker, 'darkspere_spool_active')) === 0
        && (await readMetric(worker, 'darkspere_spool_bytes')) === 0,
    { timeoutMs, message: () => `the spool to drain; worker log tail:\n${worker.tail()}` });
}

async function storedInbound(stack) {
    return stack.db.query(
        "SELECT phone, body, message_sid FROM darkspere.messages WHERE direction = 'in' ORDER BY message_id");
}

const replyTo = (body) => (m) => m.body.startsWith(`agent-a: ${body} [`);

describe('the spool keeps texts that arrive while PostgreSQL is down', () => {
    test('60 s without the database under steady traffic: every webhook 200, every text stored and answered once, in order', { timeout: 400000 }, async (t) => {
        const spool = newSpoolDir();
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http', capacity: 50 }], worker: { extraArgs: ['--spool-dir', spool] } });
        // 30 phones in turn, one webhook every 300 ms (about 3 a second), at most 9 texts per phone: each phone
        // stays under the default outbound limit (10 SMS a minute) when its replies all go out after the outage.
        const PHONES = 30;
        const PER_PHONE = 9;
        const sent = [];
        let stop = false;
        let outageStarted = null;
        let outageEnded = null;
        const traffic = (async () => {
            const pending = [];
            for (let i = 0; !stop && i < PHONES * PER_PHONE; i++) {
                const from = phone(100 + (i % PHONES));
                const body = `p${i % PHONES}-m${Math.floor(i / PHONES)}`;
                const entry = { from, body, status: null, at: Date.now() };
                sent.push(entry);
                pending.push(stack.sms(from, body).then((r) => { entry.status = r.status; entry.text = r.text; },
                    (err) => { entry.status = `error: ${err.message}`; }));
                await sleep(300);
            }
            await Promise.all(pending);
        })();

        await waitFor(() => sent.length >= 6, { timeoutMs: 30000, message: 'traffic before the outage' });
        await cluster.stop();
        outageStarted = Date.now();
        const during = await waitFor(async () => {
            const r = await readyz(stack.worker);
            return r.status === 200 && r.text.startsWith('degraded: database unreachable') && r;
        }, { timeoutMs: 30000, message: '/readyz 200 "degraded" with the database down' });
        t.diagnostic(`/readyz while down: ${during.status} ${during.text.trim()}`);
        await sleep(Math.max(0, 60000 - (Date.now() - outageStarted)));
        await cluster.start();
        outageEnded = Date.now();
        await waitFor(() => sent.filter((s) => s.at > outageEnded).length >= 6,
            { timeoutMs: 60000, message: 'traffic after the outage' });
        stop = true;
        await traffic;

        const spooledDuring = sent.filter((s) => s.at > outageStarted && s.at < outageEnded).length;
        t.diagnostic(`${sent.length} webhooks, ${spooledDuring} sent while the database was down`);
        assert.ok(spooledDuring >= 100, `steady traffic during the outage: ${spooledDuring} webhooks`);
        assert.deepEqual(sent.filter((s) => s.status !== 200).map((s) => `${s.body}: ${s.status} ${s.text ?? ''}`), [],
            'every webhook is answered 200');
        assert.ok((await readMetric(stack.worker, 'darkspere_spool_spooled_total')) >= spooledDuring);

        await waitDrained(stack.worker);
        assert.ok((await readMetric(stack.worker, 'darkspere_spool_replayed_total')) >= spooledDuring);
        await waitReady(stack.worker);

        const stored = await storedInbound(stack);
        for (const s of sent) {
            assert.equal(stored.filter((m) => m.phone === s.from && m.body === s.body).length, 1, `${s.body} stored once`);
        }
        assert.equal(stored.length, sent.length, 'nothing else stored');
        for (let k = 0; k < PHONES; k++) {
            const from = phone(100 + k);
            assert.deepEqual(stored.filter((m) => m.phone === from).map((m) => m.body),
                sent.filter((s) => s.from === from).map((s) => s.body), `${from}: stored in the order sent`);
        }
        await waitFor(() => sent.every((s) => stack.repliesTo(s.from).some(replyTo(s.body))), {
            timeoutMs: 180000,
            message: () => `a reply to every text; missing: ${JSON.stringify(sent.filter((s) => !stack.repliesTo(s.from).some(replyTo(s.body))).map((s) => s.body))}`,
        });
        await sleep(2000); // nothing more arrives
        for (const s of sent) {
            assert.equal(stack.repliesTo(s.from).filter(replyTo(s.body)).length, 1, `${s.body} answered once`);
        }
        for (let k = 0; k < PHONES; k++) {
            const from = phone(100 + k);
            const order = stack.repliesTo(from).map((m) => m.body.split(' ')[1]);
            assert.deepEqual(order, sent.filter((s) => s.from === from).map((s) => s.body), `${from}: replies in order`);
        }
        assert.equal(stack.api.messages.length, sent.length, 'no reply to anything else');
    });

    test('a worker killed during replay: after its restart nothing is lost or stored twice', { timeout: 240000 }, async (t) => {
        const spool = newSpoolDir();
        // Replay at 10 records a second: the 80 records take 8 s, a window the kill cannot miss.
        const workerArgs = { extraArgs: ['--spool-dir', spool, '--spool-replay-per-second', '10'] };
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http', capacity: 50 }], worker: workerArgs });
        const N = 80;
        const sent = [];
        await cluster.stop();
        try {
            for (let i = 0; i < N; i++) {
                const from = phone(200 + (i % 16));
                const body = `k${i % 16}-m${Math.floor(i / 16)}`;
                const r = await stack.sms(from, body);
                assert.equal(r.status, 200, `${body}: ${r.status} ${r.text}`);
                sent.push({ from, body });
            }
        } finally {
            await cluster.start();
        }
        const replayedBeforeKill = await waitFor(async () => {
            const n = await readMetric(stack.worker, 'darkspere_spool_replayed_total');
            return n > 0 && n;
        }, { timeoutMs: 60000, message: 'replay to begin' });
        await stack.worker.kill();
        t.diagnostic(`killed after ${replayedBeforeKill} of ${N} replayed`);
        assert.ok(replayedBeforeKill < N, `killed during replay (${replayedBeforeKill} of ${N})`);

        await stack.startWorker({ extraArgs: ['--spool-dir', spool] });
        await waitDrained(stack.worker);
        const stored = await storedInbound(stack);
        assert.equal(stored.length, N, 'every text stored, none twice');
        for (const s of sent) {
            assert.equal(stored.filter((m) => m.phone === s.from && m.body === s.body).length, 1, `${s.body} stored once`);
        }
        await waitFor(() => sent.every((s) => stack.repliesTo(s.from).some(replyTo(s.body))), {
            timeoutMs: 120000,
            message: () => `a reply to every text; missing: ${JSON.stringify(sent.filter((s) => !stack.repliesTo(s.from).some(replyTo(s.body))).map((s) => s.body))}`,
        });
        // A reply the killed worker sent but did not ack is sent again by the next one (at-least-once delivery of
        // an agent call, docs/queue-contract.md); the spool adds no copies of its own.
        const twice = sent.filter((s) => stack.repliesTo(s.from).filter(replyTo(s.body)).length > 1);
        t.diagnostic(`${twice.length} replies sent twice (jobs the killed worker had leased)`);
        for (const s of sent) assert.ok(stack.repliesTo(s.from).filter(replyTo(s.body)).length <= 2, s.body);
    });

    test('a damaged record is quarantined with a log line and the rest is replayed', { timeout: 180000 }, async (t) => {
        const spool = newSpoolDir();
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http' }], worker: { extraArgs: ['--spool-dir', spool] } });
        const from = phone(300);
        const bodies = ['first', 'second', 'damaged-third', 'fourth', 'fifth'];
        await cluster.stop();
        try {
            for (const body of bodies) {
                const r = await stack.sms(from, body);
                assert.equal(r.status, 200, `${body}: ${r.status} ${r.text}`);
            }
            await stack.worker.kill(); // the records were fsync'd before each 200
        } finally {
            await cluster.start();
        }
        const segments = readdirSync(spool).filter((f) => f.endsWith('.seg'));
        assert.equal(segments.length, 1, `one segment: ${segments}`);
        const file = join(spool, segments[0]);
        const bytes = readFileSync(file);
        const at = bytes.indexOf('damaged-third');
        assert.ok(at > 0, 'the third text is in the segment');
        bytes[at + 1] ^= 0x01; // "damaged" → "d`maged": the record's CRC no longer matches
        writeFileSync(file, bytes);

        await stack.startWorker({ extraArgs: ['--spool-dir', spool] });
        const line = await stack.worker.waitForLog((r) => r.msg === 'spool record quarantined', { timeoutMs: 30000 });
        assert.equal(line.reason, 'corrupt');
        assert.ok(!JSON.stringify(line).includes('maged-third') && !JSON.stringify(line).includes(from.slice(2)),
            `the log line holds neither the text nor the phone: ${JSON.stringify(line)}`);
        await waitDrained(stack.worker);
        assert.equal(quarantined(await metrics(stack.worker), 'corrupt'), 1);
        const files = readdirSync(join(spool, 'quarantine'));
        assert.equal(files.length, 1, `one quarantine file: ${files}`);
        assert.ok(readFileSync(join(spool, 'quarantine', files[0])).includes('d`maged-third'), 'the damaged bytes are kept');

        const stored = (await storedInbound(stack)).filter((m) => m.phone === from).map((m) => m.body);
        assert.deepEqual(stored, ['first', 'second', 'fourth', 'fifth']);
        await stack.waitForReplies(from, 4, { timeoutMs: 60000 });
        assert.deepEqual(readdirSync(spool).filter((f) => f.endsWith('.seg')), [], 'the replayed segment is deleted');
    });

    test('a receive statement stuck behind a lock: the webhook is spooled after spool-after-ms, stored once when the lock goes', { timeout: 180000 }, async (t) => {
        const spool = newSpoolDir();
        const stack = await useStack(t, cluster, {
            agents: [{ kind: 'http' }],
            worker: { extraArgs: ['--spool-dir', spool, '--spool-after-ms', '1000'] },
        });
        const from = phone(350);
        assert.equal((await stack.sms(from, 'before the lock')).status, 200);
        // A session of our own holds the messages table: receive_sms waits for it, as on a hung database.
        const locker = stack.cluster.db(stack.dbName);
        const client = await locker.pool.connect();
        const bodies = ['locked-1', 'locked-2', 'locked-3'];
        try {
            await client.query('BEGIN');
            await client.query('LOCK TABLE darkspere.messages IN ACCESS EXCLUSIVE MODE');
            for (const body of bodies) {
                const r = await stack.sms(from, body);
                assert.equal(r.status, 200, `${body}: ${r.status} ${r.text}`);
            }
            await stack.worker.waitForLog((l) => l.msg === 'receive_sms did not answer within spool-after-ms; spooling the webhook',
                { timeoutMs: 10000 });
            assert.ok((await readMetric(stack.worker, 'darkspere_spool_spooled_total')) >= bodies.length);
        } finally {
            await client.query('ROLLBACK').catch(() => {});
            client.release();
            await locker.end();
        }
        await waitDrained(stack.worker);
        const stored = (await storedInbound(stack)).filter((m) => m.phone === from).map((m) => m.body);
        assert.deepEqual(stored, ['before the lock', ...bodies], 'each stored once, in order');
        await stack.waitForReplies(from, 4, { timeoutMs: 60000 });
        assert.equal((await stack.quiet(from, 1500)).length, 4, 'each answered once');
    });

    test('a full spool refuses with 503 and Retry-After; a second worker cannot take the same spool-dir', { timeout: 180000 }, async (t) => {
        const spool = newSpoolDir();
        const stack = await useStack(t, cluster, {
            agents: [{ kind: 'http' }],
            worker: { extraArgs: ['--spool-dir', spool, '--spool-max-bytes', '16384'] },
        });
        await assert.rejects(startWorker({
            conninfo: cluster.workerConninfo(stack.dbName),
            extraArgs: ['--spool-dir', spool],
        }), /in use by another worker/, 'a second worker on the same spool-dir refuses to start');

        const accepted = [];
        let refused = null;
        await cluster.stop();
        try {
            for (let i = 0; i < 200 && !refused; i++) {
                const from = phone(400 + (i % 20));
                const r = await stack.sms(from, `full-${i}`);
                if (r.status === 200) accepted.push({ from, body: `full-${i}` });
                else refused = r;
            }
            assert.ok(refused, 'some webhook was refused');
            assert.equal(refused.status, 503, refused.text);
            assert.equal(refused.text, 'database unavailable\n');
            assert.equal(refused.retryAfter, '5', 'Retry-After says when to try again');
            assert.ok(accepted.length > 3, `${accepted.length} spooled before the spool was full`);
            const ready = await readyz(stack.worker);
            assert.deepEqual([ready.status, ready.text], [503, 'spool full\n']);
            assert.ok((await readMetric(stack.worker, 'darkspere_spool_refused_total')) >= 1);
        } finally {
            await cluster.start();
        }
        await waitDrained(stack.worker);
        const stored = await storedInbound(stack);
        for (const s of accepted) assert.equal(stored.filter((m) => m.body === s.body).length, 1, `${s.body} stored once`);
        const after = await stack.sms(phone(450), 'after the outage');
        assert.equal(after.status, 200, after.text);
        await waitReady(stack.worker);
    });
});
