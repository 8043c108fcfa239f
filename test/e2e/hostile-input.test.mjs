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
