// test/e2e/admin-listener.test.mjs — /readyz shares one database probe among concurrent requests and reuses its
// answer for a second, so a burst of requests costs a handful of queries; with admin-listen set, /healthz,
// /readyz and /metrics are served on the admin listener only and the public listener answers 404 for them.
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { freePort } from './lib/net.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

// get resolves with {status, text}; agent keeps connections alive so a burst does not open one per request.
function get(url, agent) {
    return new Promise((resolve, reject) => {
        const req = request(url, { agent, timeout: 10000 }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { text += d; });
            res.on('end', () => resolve({ status: res.statusCode, text }));
        });
        req.on('timeout', () => req.destroy(new Error(`GET ${url}: timed out`)));
        req.on('error', reject);
        req.end();
    });
}

async function probes(baseUrl) {
    const { status, text } = await get(`${baseUrl}/metrics`);
    assert.equal(status, 200);
    const m = text.match(/^darkspere_readiness_probes_total (\S+)$/m);
    assert.ok(m, 'darkspere_readiness_probes_total is exported');
    return Number(m[1]);
}

describe('readiness probe and admin listener', () => {
    test('10,000 /readyz requests in a burst cost a handful of database queries', { timeout: 120000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http' }] });
        const base = stack.worker.url;
        // 50 connections at once: below max-connections-per-ip (64), since every request comes from 127.0.0.1.
        const agent = new Agent({ keepAlive: true, maxSockets: 50 });
        t.after(() => agent.destroy());
        const before = await probes(base);
        const total = 10000;
        let next = 0;
        const statuses = new Map();
        const started = Date.now();
        await Promise.all(Array.from({ length: 50 }, async () => {
            while (next < total) {
                next += 1;
                const { status } = await get(`${base}/readyz`, agent);
                statuses.set(status, (statuses.get(status) || 0) + 1);
            }
        }));
        const seconds = (Date.now() - started) / 1000;
        const spent = (await probes(base)) - before;
        assert.deepEqual([...statuses], [[200, total]], 'every request answered ready');
        // One query per second of burst at most (an answer is reused for 1 s), plus the one in flight at each end;
        // one query per request would be 10,000.
        assert.ok(spent >= 1, 'the burst did ask the database');
        assert.ok(spent <= Math.ceil(seconds) + 2,
            `${spent} probe queries for ${total} requests over ${seconds.toFixed(1)} s`);
        t.diagnostic(`${total} /readyz in ${seconds.toFixed(1)} s cost ${spent} probe queries`);
    });

    test('with admin-listen, /healthz, /readyz and /metrics are 404 on the public port and served on the admin port',
        { timeout: 60000 }, async (t) => {
            const adminPort = await freePort();
            const stack = await useStack(t, cluster, {
                agents: [{ kind: 'http' }],
                worker: { extraArgs: ['--admin-listen', `127.0.0.1:${adminPort}`] },
            });
            const admin = `http://127.0.0.1:${adminPort}`;
            await stack.worker.waitForLog((r) => r.msg === 'admin listening' && r.port === adminPort);
            for (const path of ['/healthz', '/readyz', '/metrics']) {
                assert.equal((await get(`${stack.worker.url}${path}`)).status, 404, `public ${path}`);
                assert.equal((await get(`${admin}${path}`)).status, 200, `admin ${path}`);
            }
            // The webhooks stay on the public port only.
            assert.equal((await get(`${admin}/twilio/sms`)).status, 404, 'no webhooks on the admin port');
            const from = phone(1);
            assertAccepted(await stack.sms(from, 'public still works'));
            await stack.waitForReplies(from, 1);
            const metrics = (await get(`${admin}/metrics`)).text;
            assert.match(metrics, /^darkspere_http_requests_total\{route="other",status="404"\} [1-9]/m,
                'the public 404s are counted like any unknown path');
        });
});
