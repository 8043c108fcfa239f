// test/e2e/slow-loris.test.mjs — connections that never finish a request cannot starve webhooks: one client
// address holds at most max-connections-per-ip connections (the rest are closed at once and counted), and a
// connection must deliver its whole request header within header-timeout-ms of being accepted, however slowly
// it trickles, and must start its next request within idle-timeout-ms of a response.
//
// Every address in 127/8 is loopback on Linux: the attackers connect from 127.0.0.2 and 127.0.0.3, the
// webhooks come from 127.0.0.1 as usual.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { sleep, waitFor } from './lib/net.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

// A request line and part of a header, never ended by the blank line.
const PARTIAL_HEADER = 'POST /twilio/sms HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n';

// hold opens a connection from localAddress and writes `first` (if any) once connected. Resolves with
// {socket, closedAt()} once connected; closedAt() is null while the connection is open, else when it closed.
function hold(port, localAddress, first = '') {
    return new Promise((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port, localAddress });
        let closed = null;
        socket.on('error', () => {}); // ECONNRESET when the worker closes on us is expected
        socket.on('close', () => { closed = Date.now(); });
        socket.once('connect', () => {
            if (first) socket.write(first);
            resolve({ socket, closedAt: () => closed, openedAt: Date.now() });
        });
        socket.once('error', (err) => { if (closed === null && !socket.connecting) return; reject(err); });
    });
}

async function metricsText(worker) {
    const res = await fetch(`${worker.url}/metrics`, { signal: AbortSignal.timeout(5000) });
    return res.text();
}

function refusedPerIp(text) {
    const m = text.match(/^darkspere_http_connections_refused_total\{reason="per_ip"\} (\S+)$/m);
    return m ? Number(m[1]) : NaN;
}

describe('slow-loris', () => {
    test('200 idle connections from one address: 64 held, 136 refused at once, a webhook from another address is answered',
        { timeout: 90000 }, async (t) => {
            // max-connections 100: without the per-address cap the attacker's 200 connections would take every
            // slot and the webhook would wait in the kernel backlog. A long header timeout keeps the attacker's
            // connections open for the whole test, so nothing here depends on timing.
            const stack = await useStack(t, cluster, {
                agents: [{ kind: 'http' }],
                worker: { extraArgs: ['--max-connections', '100', '--header-timeout-ms', '60000'] },
            });
            const port = stack.worker.port;
            const before = refusedPerIp(await metricsText(stack.worker));
            assert.equal(before, 0, 'nothing refused yet');

            const attackers = await Promise.all(Array.from({ length: 200 }, (_, i) =>
                hold(port, '127.0.0.2', i % 2 ? PARTIAL_HEADER : '')));
            t.after(() => attackers.forEach((a) => a.socket.destroy()));

            // The worker accepts everything in its backlog; all beyond the 64th are closed as soon as accepted.
            await waitFor(async () => refusedPerIp(await metricsText(stack.worker)) >= 136,
                { timeoutMs: 20000, message: '136 connections refused for per_ip' });
            assert.equal(refusedPerIp(await metricsText(stack.worker)), 136, 'exactly the connections beyond 64');
            await waitFor(() => attackers.filter((a) => a.closedAt() !== null).length >= 136,
                { timeoutMs: 10000, message: 'the refused connections closed' });
            assert.equal(attackers.filter((a) => a.closedAt() === null).length, 64, '64 connections held open');

            const from = phone(1);
            const started = Date.now();
            const res = await stack.sms(from, 'still there?');
            const took = Date.now() - started;
            assertAccepted(res);
            assert.ok(took < 5000, `the webhook was answered in ${took} ms, not after the attackers timed out`);
            const [reply] = await stack.waitForReplies(from, 1);
            assert.match(reply.body, /still there\?/, 'the agent answered and the reply was sent');
            assert.equal(attackers.filter((a) => a.closedAt() === null).length, 64,
                'the attacker still held its 64 connections while the webhook was served');
        });

    test('header-timeout-ms closes connections that never finish their header, trickling or silent; idle-timeout-ms closes kept-alive ones',
        { timeout: 60000 }, async (t) => {
            const stack = await useStack(t, cluster, {
                agents: [{ kind: 'http' }],
                worker: { extraArgs: ['--header-timeout-ms', '1000', '--idle-timeout-ms', '1000'] },
            });
            const port = stack.worker.port;
            const silent = await Promise.all(Array.from({ length: 4 }, () => hold(port, '127.0.0.3')));
            const partial = await Promise.all(Array.from({ length: 4 }, () => hold(port, '127.0.0.3', PARTIAL_HEADER)));
            // A header that grows by one byte every 100 ms: every read makes progress, so only a deadline on the
            // whole header (not on each read) ends it.
            const trickling = await Promise.all(Array.from({ length: 4 }, () => hold(port, '127.0.0.3', `${PARTIAL_HEADER}X-Slow: `)));
            const drip = setInterval(() => trickling.forEach((c) => { if (c.closedAt() === null) c.socket.write('a'); }), 100);
            t.after(() => clearInterval(drip));
            const all = [...silent, ...partial, ...trickling];
            t.after(() => all.forEach((c) => c.socket.destroy()));

            await waitFor(() => all.every((c) => c.closedAt() !== null),
                { timeoutMs: 8000, message: () => `the worker to close all 12 (open: ${all.filter((c) => c.closedAt() === null).length})` });
            clearInterval(drip);
            for (const c of all) {
                const lived = c.closedAt() - c.openedAt;
                assert.ok(lived < 6000, `a connection lived ${lived} ms; the header timeout is 1000 ms`);
            }

            // A complete request is answered; the connection, kept alive, is closed once it idles past 1 s.
            const keep = await hold(port, '127.0.0.3', 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
            let response = '';
            keep.socket.on('data', (d) => { response += d.toString('latin1'); });
            await waitFor(() => response.includes('\r\n\r\nok\n'), { timeoutMs: 5000, message: 'the /healthz answer' });
            assert.match(response, /^HTTP\/1\.1 200/);
            assert.match(response, /\r\nKeep-Alive: timeout=1\r\n/i, 'the idle timeout is announced');
            const answeredAt = Date.now();
            await waitFor(() => keep.closedAt() !== null, { timeoutMs: 6000, message: 'the idle kept-alive connection to close' });
            assert.ok(keep.closedAt() - answeredAt >= 500, 'not closed before the idle timeout');

            // Webhooks are still served normally.
            const from = phone(2);
            assertAccepted(await stack.sms(from, 'after the storm'));
            await stack.waitForReplies(from, 1);
            await sleep(0);
        });
});
