// test/e2e/http-surface.test.mjs — the worker's operational HTTP surface: /healthz, /readyz, /metrics in
// Prometheus text format, and 400 for webhooks that are not a well-formed Twilio form.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import twilio from 'twilio';
import { startCluster } from './lib/cluster.mjs';
import { phone, startStack } from './lib/stack.mjs';
import { inboundParams, signedPost } from './lib/twilio-webhook.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
let stack;
before(async () => {
    stack = await startStack(cluster, { agents: [{ kind: 'http' }] });
});
after(async () => {
    await stack?.close();
    await cluster.destroy();
});

async function get(path) {
    const res = await fetch(`${stack.worker.url}${path}`, { signal: AbortSignal.timeout(5000) });
    return { status: res.status, contentType: res.headers.get('content-type') || '', text: await res.text() };
}

// A Prometheus text-format sample line: name{labels} value [timestamp].
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(-?[0-9.eE+-]+|NaN|\+Inf|-Inf)(\s+-?\d+)?$/;

function parseMetrics(text) {
    const samples = [];
    const types = new Map();
    for (const line of text.split('\n')) {
        if (!line.trim()) continue;
        if (line.startsWith('# TYPE ')) {
            const [, , name, type] = line.split(/\s+/);
            types.set(name, type);
            continue;
        }
        if (line.startsWith('#')) continue;
        const m = SAMPLE.exec(line.trim());
        assert.ok(m, `not a Prometheus sample line: ${JSON.stringify(line)}`);
        samples.push({ name: m[1], labels: m[2] || '', value: Number(m[3]), line });
    }
    return { samples, types };
}

describe('health, readiness and metrics', () => {
    test('GET /healthz → 200', async () => {
        assert.equal((await get('/healthz')).status, 200);
    });

    test('GET /readyz → 200 with the database reachable', async () => {
        assert.equal((await get('/readyz')).status, 200);
    });

    test('GET /metrics → Prometheus text with requests, jobs and latency histograms', { timeout: 30000 }, async () => {
        const from = phone(1);
        assertAccepted(await stack.sms(from, 'count me'));
        await stack.waitForReplies(from, 1);
        await new Promise((r) => setTimeout(r, 300));
        const res = await get('/metrics');
        assert.equal(res.status, 200);
        assert.match(res.contentType, /^text\/plain/, 'Prometheus text exposition format');
        const { samples, types } = parseMetrics(res.text);
        assert.ok(samples.length > 0, 'some samples');
        assert.ok(types.size > 0, '# TYPE lines');
        const lines = samples.map((s) => s.line);
        const find = (re, what) => {
            const hit = lines.find((l) => re.test(l));
            assert.ok(hit, `${what}; metrics were:\n${res.text}`);
            return hit;
        };
        find(/twilio[/_]sms.*200|200.*twilio[/_]sms/, 'inbound requests counted by route and status');
        find(/agent_call/, 'jobs counted by kind');
        find(/sms_send/, 'sms_send jobs counted');
        assert.ok([...types.values()].includes('histogram'), 'at least one latency histogram');
        find(/_bucket\{.*le="\+Inf"/, 'histogram buckets');
        for (const [name, type] of types) {
            if (type === 'counter') {
                for (const s of samples.filter((x) => x.name === name)) assert.ok(s.value >= 0, `${s.line}: counters are non-negative`);
            }
        }
    });

    test('an unknown path → 404', async () => {
        assert.equal((await get('/no/such/route')).status, 404);
    });
});

describe('malformed webhooks → 400, nothing stored', () => {
    const required = ['MessageSid', 'From', 'To', 'AccountSid'];
    for (const [i, missing] of required.entries()) {
        test(`a signed form without ${missing} → 400 (or 403 when the AccountSid is what is missing)`, async () => {
            const from = phone(10 + i);
            const params = inboundParams({ accountSid: stack.sid, from, to: stack.number, body: 'hi' });
            delete params[missing];
            if (missing === 'MessageSid') {
                delete params.SmsSid;
                delete params.SmsMessageSid;
            }
            const res = await signedPost({ target: stack.webhookUrl, authToken: stack.authToken, params });
            // Without an AccountSid the worker cannot pick the auth token, so it cannot verify the signature.
            const allowed = missing === 'AccountSid' ? [400, 403] : [400];
            assert.ok(allowed.includes(res.status), `expected ${allowed}, got ${res.status}: ${res.text}`);
            assert.equal(await stack.db.value("SELECT count(*)::int FROM darkspere.messages WHERE phone = $1", [from]), 0);
        });
    }

    test('a body that is not valid form encoding → 400', async () => {
        const params = inboundParams({ accountSid: stack.sid, from: phone(20), to: stack.number, body: 'x' });
        const raw = `${new URLSearchParams(params).toString()}&Broken=%ZZ%`;
        const res = await fetch(stack.webhookUrl, {
            method: 'POST',
            headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Twilio-Signature': twilio.getExpectedTwilioSignature(stack.authToken, stack.webhookUrl, params) },
            body: raw,
        });
        assert.equal(res.status, 400, await res.text());
    });

    test('a JSON body instead of a form → 400 or 415', async () => {
        const params = inboundParams({ accountSid: stack.sid, from: phone(21), to: stack.number, body: 'x' });
        const res = await fetch(stack.webhookUrl, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', 'X-Twilio-Signature': twilio.getExpectedTwilioSignature(stack.authToken, stack.webhookUrl, params) },
            body: JSON.stringify(params),
        });
        assert.ok([400, 415].includes(res.status), `got ${res.status}`);
    });

    test('a body over 1,600 characters is refused and stores nothing', async () => {
        const from = phone(22);
        const res = await stack.sms(from, 'x'.repeat(1601));
        assert.ok([200, 400].includes(res.status), `got ${res.status}: ${res.text}`);
        assert.equal(await stack.db.value("SELECT count(*)::int FROM darkspere.messages WHERE phone = $1", [from]), 0);
    });

    test('GET /twilio/sms → 405', async () => {
        assert.ok([404, 405].includes((await get('/twilio/sms')).status));
    });
});
