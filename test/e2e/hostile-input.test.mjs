// test/e2e/hostile-input.test.mjs — what a stranger may send to the worker's HTTP port: requests that never end,
// connections that never send, fields the database would store differently from what was signed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { phone, startStack } from './lib/stack.mjs';
import { waitFor } from './lib/net.mjs';

const cluster = await startCluster();
let stack;
before(async () => {
    stack = await startStack(cluster, { agents: [{ kind: 'http' }] });
});
after(async () => {
    await stack?.close();
    await cluster.destroy();
});

// memoryKiB reads a VmRSS / VmHWM line of /proc/<pid>/status, in KiB.
function memoryKiB(pid, field) {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return Number(m[1]);
}

// sendUntilClosed opens a connection, writes head and then `total` bytes of filler in 64 KiB pieces (each
// written once the previous one drained), and resolves with {bytesSent, response} when the server closes the
// connection (or when everything is sent and the server answered and closed).
function sendUntilClosed(port, head, total, { filler = 'a', timeoutMs = 60000 } = {}) {
    return new Promise((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port });
        const piece = Buffer.alloc(64 * 1024, filler);
        let sent = 0;
        let response = '';
        let closed = false;
        const timer = setTimeout(() => {
            socket.destroy();
            reject(new Error(`connection still open after ${timeoutMs} ms (${sent} bytes sent)`));
        }, timeoutMs);
        const finish = () => {
            if (closed) return;
            closed = true;
            clearTimeout(timer);
            resolve({ bytesSent: sent, response });
        };
        socket.on('data', (d) => { response += d.toString('latin1'); });
        socket.on('close', finish);
        socket.on('error', () => finish()); // EPIPE / ECONNRESET: the server closed on us, which is the point
        const pump = () => {
            while (!closed && sent < total) {
                sent += piece.length;
                if (!socket.write(piece)) {
                    socket.once('drain', pump);
                    return;
                }
            }
        };
        socket.on('connect', () => {
            socket.write(head);
            pump();
        });
    });
}

describe('item 4: a request costs bounded memory', () => {
    test('a 10 MB chunk extension → the connection is closed, the worker\'s memory stays flat, it still answers', { timeout: 120000 }, async () => {
        const pid = stack.worker.proc.pid;
        const hwmBefore = memoryKiB(pid, 'VmHWM');
        const head = 'POST /twilio/sms HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n'
            + 'Transfer-Encoding: chunked\r\n\r\n5;ext=';
        const { bytesSent, response } = await sendUntilClosed(stack.worker.port, head, 10 * 1024 * 1024);
        assert.ok(bytesSent < 10 * 1024 * 1024 || response.startsWith('HTTP/1.1 431'),
            `the worker read the whole 10 MB chunk extension; answer: ${JSON.stringify(response.slice(0, 200))}`);
        const hwmAfter = memoryKiB(pid, 'VmHWM');
        assert.ok(hwmAfter - hwmBefore < 20 * 1024, `VmHWM grew by ${hwmAfter - hwmBefore} KiB (from ${hwmBefore} to ${hwmAfter})`);
        const ok = await fetch(`${stack.worker.url}/healthz`, { signal: AbortSignal.timeout(10000) });
        assert.equal(ok.status, 200);
        const from = phone(1);
        const res = await stack.sms(from, 'still here?');
        assert.equal(res.status, 200, res.text);
        await stack.waitForReplies(from, 1);
    });

    test('endless trailers → the connection is closed, memory flat', { timeout: 120000 }, async () => {
        const pid = stack.worker.proc.pid;
        const hwmBefore = memoryKiB(pid, 'VmHWM');
        const head = 'POST /twilio/sms HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n'
            + 'Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-Trailer: ';
        await sendUntilClosed(stack.worker.port, head, 10 * 1024 * 1024);
        const hwmAfter = memoryKiB(pid, 'VmHWM');
        assert.ok(hwmAfter - hwmBefore < 20 * 1024, `VmHWM grew by ${hwmAfter - hwmBefore} KiB`);
        assert.equal((await fetch(`${stack.worker.url}/healthz`, { signal: AbortSignal.timeout(10000) })).status, 200);
    });
});

describe('item 7: fields are stored as signed, refusals tell a prober nothing', () => {
    test('a signed %00 in Body → 400 "NUL byte in field Body", nothing stored', async () => {
        const from = phone(30);
        const res = await stack.sms(from, 'hi\u0000there');
        assert.equal(res.status, 400, res.text);
        assert.equal(res.text.trim(), 'NUL byte in field Body');
        assert.equal(await stack.db.value('SELECT count(*)::int FROM darkspere.messages WHERE phone = $1', [from]), 0);
    });

    test('a signed invalid UTF-8 Body → 400 naming the field, nothing stored', async () => {
        const from = phone(31);
        const params = (await import('./lib/twilio-webhook.mjs')).inboundParams({ accountSid: stack.sid, from, to: stack.number, body: 'x' });
        params.Body = 'caf\u00e9'; // signed as UTF-8 by the SDK, sent below as Latin-1 bytes
        const twilio = (await import('twilio')).default;
        const sig = twilio.getExpectedTwilioSignature(stack.authToken, stack.webhookUrl, { ...params, Body: Buffer.from('caf\xe9', 'latin1').toString('latin1') });
        const raw = new URLSearchParams({ ...params, Body: 'cafX' }).toString().replace('cafX', 'caf%E9');
        const res = await fetch(stack.webhookUrl, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Twilio-Signature': sig }, body: raw });
        assert.equal(res.status, 400);
        assert.equal((await res.text()).trim(), 'invalid UTF-8 in field Body');
        assert.equal(await stack.db.value('SELECT count(*)::int FROM darkspere.messages WHERE phone = $1', [from]), 0);
    });

    test('an unknown AccountSid is answered exactly as a bad signature', async () => {
        const { inboundParams, signedPost } = await import('./lib/twilio-webhook.mjs');
        const unknown = await signedPost({ target: stack.webhookUrl, authToken: stack.authToken,
            params: inboundParams({ accountSid: 'AC' + 'f'.repeat(32), from: phone(32), to: stack.number, body: 'x' }) });
        const forged = await signedPost({ target: stack.webhookUrl, authToken: 'not-the-token',
            params: inboundParams({ accountSid: stack.sid, from: phone(32), to: stack.number, body: 'x' }) });
        assert.equal(unknown.status, 403);
        assert.deepEqual({ status: unknown.status, text: unknown.text, type: unknown.contentType },
            { status: forged.status, text: forged.text, type: forged.contentType });
    });

    test('50 refusals in a burst → at most a few log lines, one carrying the count left out', { timeout: 60000 }, async () => {
        const before = stack.worker.logs.filter((l) => l.msg === 'sms webhook refused').length;
        for (let i = 0; i < 50; i++) {
            const res = await stack.sms(phone(33), 'x', { signature: 'bm9wZQ==' });
            assert.equal(res.status, 403);
        }
        // The burst may straddle a second boundary or two, never 50 of them.
        const lines = () => stack.worker.logs.filter((l) => l.msg === 'sms webhook refused').slice(before);
        assert.ok(lines().length < 50 / 2, `${lines().length} refusal lines for 50 refusals`);
        await sleepThenRefuse();
        const withCount = await stack.worker.waitForLog((l) => l.msg === 'sms webhook refused' && l.suppressed > 0,
            { message: 'a refusal line counting the ones left out' });
        assert.equal(withCount.cause, 'invalid signature');
    });
});

// sleepThenRefuse sends one more refused webhook a second later, whose line reports the burst left out.
async function sleepThenRefuse() {
    await new Promise((r) => setTimeout(r, 1100));
    await stack.sms(phone(33), 'x', { signature: 'bm9wZQ==' });
}
