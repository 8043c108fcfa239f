// test/e2e/api.test.mjs — the HTTP API for tenants and agents (docs/api.md) through a real worker: every route's
// happy path, every error status (400/401/403/404/405/409/413/422/429), another tenant's agents answering 404 and
// staying unchanged, an agent key rotated with a 2-second grace (the old key works, then is refused), and a
// deleted agent's session failing over at its next message. Every response is validated against
// docs/openapi.yaml (ajv, JSON Schema 2020-12 as OpenAPI 3.1 uses).
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import YAML from 'yaml';
import { startCluster } from './lib/cluster.mjs';
import { waitFor } from './lib/net.mjs';
import { REPO_ROOT } from './lib/paths.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

// ---- docs/openapi.yaml as a validator ----
const spec = YAML.parse(readFileSync(join(REPO_ROOT, 'docs', 'openapi.yaml'), 'utf8'));
assert.equal(spec.openapi, '3.1.0');
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(spec, 'openapi');

function pointer(...parts) {
    return parts.map((p) => String(p).replaceAll('~', '~0').replaceAll('/', '~1')).join('/');
}

// conforms asserts that a response (status, headers, JSON body) is one docs/openapi.yaml documents for the route.
function conforms(method, template, res) {
    const operation = spec.paths[template]?.[method.toLowerCase()];
    assert.ok(operation, `${method} ${template} is documented`);
    let response = operation.responses[String(res.status)];
    assert.ok(response, `${method} ${template} documents status ${res.status} (body ${JSON.stringify(res.json)})`);
    let ref = `#/paths/${pointer(template, method.toLowerCase(), 'responses', res.status)}`;
    if (response.$ref) {
        ref = response.$ref;
        response = ref.slice(2).split('/').reduce((node, key) => node[key], spec);
    }
    for (const [name, header] of Object.entries(response.headers || {})) {
        if (header.required) assert.ok(res.headers[name.toLowerCase()], `${res.status} carries ${name}`);
    }
    assert.match(res.headers['content-type'] || '', /^application\/json/);
    const validate = ajv.getSchema(`openapi${ref}/content/application~1json/schema`);
    assert.ok(validate, `schema of ${ref}`);
    assert.ok(validate(res.json), `${method} ${template} ${res.status} matches docs/openapi.yaml: ` +
        `${ajv.errorsText(validate.errors)} in ${JSON.stringify(res.json)}`);
}

// ---- a client ----
// call sends one request (node:http, so a test can pick the source address) and resolves with
// {status, headers, json}; the response is checked against docs/openapi.yaml when `template` is given.
function call(base, method, path, { key, body, raw, template, localAddress, headers = {} } = {}) {
    const data = raw ?? (body === undefined ? undefined : JSON.stringify(body));
    const url = new URL(path, base);
    return new Promise((resolve, reject) => {
        const req = http.request(url, {
            method,
            localAddress,
            agent: false,
            headers: {
                ...(key ? { authorization: `Bearer ${key}` } : {}),
                ...(data !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}),
                ...headers,
            },
        }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => {
                const text = Buffer.concat(chunks).toString('utf8');
                let json;
                try {
                    json = JSON.parse(text);
                } catch {
                    json = undefined;
                }
                const out = { status: res.statusCode, headers: res.headers, json, text };
                try {
                    if (template) conforms(method, template, out);
                    resolve(out);
                } catch (err) {
                    reject(err);
                }
            });
        });
        req.on('error', reject);
        if (data !== undefined) req.write(data);
        req.end();
    });
}

function assertError(res, status, code) {
    assert.equal(res.status, status, `status (body ${res.text})`);
    assert.equal(res.json?.error?.code, code, `error code (body ${res.text})`);
    assert.equal(typeof res.json.error.message, 'string');
}

// setUp — a stack (the Bakery account on 'pro' with agents A and B, B in maintenance), an account key for it,
// and a second tenant on 'free' with one agent and its own key.
async function setUp(t, options = {}) {
    const stack = await useStack(t, cluster, {
        agents: [{ kind: 'http', name: 'agent-a' }, { kind: 'http', name: 'agent-b', status: 'maintenance' }],
        ...options,
    });
    const base = stack.worker.url;
    const { api_key: key } = await stack.db.one('SELECT * FROM darkspere.create_account_key($1, $2)', [stack.accountId, 'e2e']);
    const other = await stack.db.value("SELECT darkspere.create_account('Rival', 'free')");
    const { api_key: otherKey } = await stack.db.one('SELECT * FROM darkspere.create_account_key($1, $2)', [other, 'rival']);
    const api = (method, path, opts = {}) => call(base, method, path, opts);
    return { stack, base, key, other, otherKey, api };
}

describe('HTTP API', () => {
    test('happy paths: register, list, read, update, heartbeat, health, usage, deactivate', { timeout: 60000 }, async (t) => {
        const { stack, key, api } = await setUp(t);
        const [a] = stack.agents;

        const created = await api('POST', '/api/agents', {
            key, template: '/api/agents',
            body: { name: 'helper', endpoint: 'https://helper.example/turn', protocol: 'mcp', capacity: 7, tags: ['sales', 'en'] },
        });
        assert.equal(created.status, 201);
        assert.equal(created.headers['cache-control'], 'no-store');
        assert.deepEqual([created.json.name, created.json.protocol, created.json.capacity, created.json.status],
            ['helper', 'mcp', 7, 'active']);
        assert.deepEqual(created.json.tags, ['en', 'sales']);
        assert.match(created.json.api_key, /^dsk_/);
        const helper = created.json.agent_id;
        assert.equal(await stack.db.value('SELECT account_id FROM darkspere.agents WHERE agent_id = $1', [helper]), stack.accountId);

        const list = await api('GET', '/api/agents', { key, template: '/api/agents' });
        assert.equal(list.status, 200);
        assert.deepEqual(list.json.agents.map((g) => g.name), ['agent-a', 'agent-b', 'helper']);

        const one = await api('GET', `/api/agents/${a.agentId}`, { key, template: '/api/agents/{id}' });
        assert.equal(one.status, 200);
        assert.equal(one.json.endpoint, a.peer.url);
        assert.equal(one.json.health_score, 100);
        assert.equal(one.json.last_heartbeat_at, null);

        const patched = await api('PATCH', `/api/agents/${helper}`, {
            key, template: '/api/agents/{id}',
            body: { endpoint: 'https://helper.example/v2', capacity: 3, tags: [], status: 'maintenance' },
        });
        assert.equal(patched.status, 200);
        assert.deepEqual([patched.json.endpoint, patched.json.capacity, patched.json.tags, patched.json.status],
            ['https://helper.example/v2', 3, [], 'maintenance']);

        // The heartbeat takes the agent's own key and counts as a passing result.
        const beat = await api('POST', '/api/agents/heartbeat', {
            key: a.apiKey, template: '/api/agents/heartbeat', body: { status: 'ok', load: 2, version: '1.4.0' },
        });
        assert.equal(beat.status, 200);
        assert.equal(beat.json.agent_id, a.agentId);
        const health = await api('GET', `/api/agents/${a.agentId}/health`, { key, template: '/api/agents/{id}/health' });
        assert.equal(health.status, 200);
        assert.deepEqual(health.json.last_results, [{ ok: true }]);
        assert.deepEqual(health.json.last_heartbeat && [health.json.last_heartbeat.status, health.json.last_heartbeat.load,
            health.json.last_heartbeat.version], ['ok', 2, '1.4.0']);
        assert.deepEqual(health.json.score_parts, { uptime: 60, latency: 30, recent_failures: 10 });

        // A conversation makes traffic that shows in usage and in the health percentiles.
        const from = phone(1);
        assertAccepted(await stack.sms(from, 'hello'));
        await stack.waitForReplies(from, 1);
        const traffic = await waitFor(async () => {
            const h = await api('GET', `/api/agents/${a.agentId}/health`, { key, template: '/api/agents/{id}/health' });
            return h.json.traffic['1h'].calls >= 1 && h.json;
        }, { message: 'the agent call in the health percentiles' });
        assert.equal(typeof traffic.traffic['1h'].p50_ms, 'number');
        assert.equal(traffic.traffic['24h'].calls, traffic.traffic['1h'].calls);

        const usage = await api('GET', '/api/usage', { key, template: '/api/usage' });
        assert.equal(usage.status, 200);
        assert.equal(usage.json.account_id, stack.accountId);
        assert.deepEqual(usage.json.metrics.map((m) => m.metric), ['agent_messages', 'sms_in', 'sms_out']);
        assert.equal(usage.json.metrics.find((m) => m.metric === 'sms_in').used, 1);

        const deleted = await api('DELETE', `/api/agents/${helper}`, { key, template: '/api/agents/{id}' });
        assert.equal(deleted.status, 200);
        assert.equal(deleted.json.status, 'disabled');
        assert.equal(await stack.db.value('SELECT status FROM darkspere.agents WHERE agent_id = $1', [helper]), 'disabled');
    });

    test('a deleted agent takes no new turns: its session fails over at the next message', { timeout: 60000 }, async (t) => {
        const { stack, key, api } = await setUp(t);
        const [a, b] = stack.agents;
        const from = phone(2);
        assertAccepted(await stack.sms(from, 'first'));
        const [first] = await stack.waitForReplies(from, 1);
        assert.equal(first.body, 'agent-a: first [history 0]');

        const activated = await api('PATCH', `/api/agents/${b.agentId}`, { key, template: '/api/agents/{id}', body: { status: 'active' } });
        assert.equal(activated.json.status, 'active');
        const gone = await api('DELETE', `/api/agents/${a.agentId}`, { key, template: '/api/agents/{id}' });
        assert.equal(gone.json.status, 'disabled');

        assertAccepted(await stack.sms(from, 'second'));
        const replies = await stack.waitForReplies(from, 2);
        assert.match(replies[1].body, /^agent-b: second/);
        assert.equal(a.peer.requests.length, 1, 'agent A got no turn after it was deleted');
    });

    test('another tenant\'s agents are 404 and stay unchanged', { timeout: 60000 }, async (t) => {
        const { stack, otherKey, api } = await setUp(t);
        const [a] = stack.agents;
        const before = await stack.db.one('SELECT endpoint, capacity, status, api_key_hash FROM darkspere.agents WHERE agent_id = $1', [a.agentId]);
        const attempts = [
            ['GET', `/api/agents/${a.agentId}`, '/api/agents/{id}', undefined],
            ['PATCH', `/api/agents/${a.agentId}`, '/api/agents/{id}', { endpoint: 'https://evil.example/', capacity: 1 }],
            ['DELETE', `/api/agents/${a.agentId}`, '/api/agents/{id}', undefined],
            ['POST', `/api/agents/${a.agentId}/rotate-key`, '/api/agents/{id}/rotate-key', {}],
            ['GET', `/api/agents/${a.agentId}/health`, '/api/agents/{id}/health', undefined],
        ];
        for (const [method, path, template, body] of attempts) {
            const res = await api(method, path, { key: otherKey, template, body });
            assertError(res, 404, 'not_found');
        }
        // A missing agent answers exactly like someone else's.
        const missing = await api('GET', '/api/agents/999999', { key: otherKey, template: '/api/agents/{id}' });
        assertError(missing, 404, 'not_found');
        const list = await api('GET', '/api/agents', { key: otherKey, template: '/api/agents' });
        assert.deepEqual(list.json.agents, []);
        const afterRow = await stack.db.one('SELECT endpoint, capacity, status, api_key_hash FROM darkspere.agents WHERE agent_id = $1', [a.agentId]);
        assert.deepEqual(afterRow, before);
    });

    test('every error status: 400, 401, 403, 404, 405, 409, 413, 422', { timeout: 60000 }, async (t) => {
        const { stack, key, otherKey, api } = await setUp(t);
        const [a, b] = stack.agents;

        // 401: no key, another scheme, an unknown key, a revoked key.
        assertError(await api('GET', '/api/agents', { template: '/api/agents' }), 401, 'unauthorized');
        const basic = await api('GET', '/api/agents', { template: '/api/agents', headers: { authorization: `Basic ${Buffer.from(`x:${key}`).toString('base64')}` } });
        assertError(basic, 401, 'unauthorized');
        assertError(await api('GET', '/api/agents', { key: `dsk_${'A'.repeat(43)}`, template: '/api/agents' }), 401, 'unauthorized');
        const { key_id: revokedId, api_key: revoked } = await stack.db.one('SELECT * FROM darkspere.create_account_key($1, $2)', [stack.accountId, 'old']);
        assert.equal((await api('GET', '/api/usage', { key: revoked, template: '/api/usage' })).status, 200);
        await stack.db.query('SELECT darkspere.revoke_account_key($1)', [revokedId]);
        assertError(await api('GET', '/api/usage', { key: revoked, template: '/api/usage' }), 401, 'unauthorized');

        // 403: an agent key on an account route, an account key on the heartbeat, a plan limit.
        assertError(await api('GET', '/api/agents', { key: a.apiKey, template: '/api/agents' }), 403, 'forbidden');
        assertError(await api('POST', '/api/agents/heartbeat', { key, body: { status: 'ok' }, template: '/api/agents/heartbeat' }), 403, 'forbidden');
        const first = await api('POST', '/api/agents', { key: otherKey, body: { name: 'one', endpoint: 'https://one.example/' }, template: '/api/agents' });
        assert.equal(first.status, 201);
        const second = await api('POST', '/api/agents', { key: otherKey, body: { name: 'two', endpoint: 'https://two.example/', tags: ['x'] }, template: '/api/agents' });
        assertError(second, 403, 'plan_limit');
        assert.match(second.json.error.message, /plan "free" allows 1 agent/);

        // 404 and 405: unknown paths and ids, wrong methods.
        assertError(await api('GET', '/api/nothing', { key }), 404, 'not_found');
        assertError(await api('GET', '/api/agents/abc', { key }), 404, 'not_found');
        assertError(await api('GET', `/api/agents/${a.agentId}/other`, { key }), 404, 'not_found');
        const wrong = await api('PUT', `/api/agents/${a.agentId}`, { key, body: {} });
        assertError(wrong, 405, 'method_not_allowed');
        assert.equal(wrong.headers.allow, 'GET, PATCH, DELETE');

        // 409: a name taken in the account; a heartbeat of a disabled agent.
        assertError(await api('POST', '/api/agents', { key, body: { name: 'agent-a', endpoint: 'https://x.example/' }, template: '/api/agents' }), 409, 'conflict');
        await api('DELETE', `/api/agents/${b.agentId}`, { key, template: '/api/agents/{id}' });
        assertError(await api('POST', '/api/agents/heartbeat', { key: b.apiKey, body: { status: 'ok' }, template: '/api/agents/heartbeat' }), 409, 'agent_disabled');

        // 400: malformed JSON, a body that is not an object, a JSON text PostgreSQL refuses (\u0000).
        assertError(await api('POST', '/api/agents', { key, raw: '{"name": ', template: '/api/agents' }), 400, 'malformed_json');
        assertError(await api('PATCH', `/api/agents/${a.agentId}`, { key, raw: '[1,2]', template: '/api/agents/{id}' }), 400, 'bad_request');
        assertError(await api('POST', '/api/agents', { key, template: '/api/agents' }), 400, 'bad_request');
        assertError(await api('POST', '/api/agents', { key, raw: '{"name": "a\\u0000b", "endpoint": "https://x.example/"}', template: '/api/agents' }), 400, 'bad_request');

        // 413: a body over api-max-body-bytes (16 KiB by default), refused before it is parsed.
        const big = await api('POST', '/api/agents', { key, body: { name: 'big', endpoint: 'https://x.example/', pad: 'x'.repeat(20000) }, template: '/api/agents' });
        assertError(big, 413, 'body_too_large');

        // 422: each field named; nothing half-applied.
        const before = await stack.db.one('SELECT endpoint, capacity, tags, status FROM darkspere.agents WHERE agent_id = $1', [a.agentId]);
        const bad = [
            [{ endpoint: 'ftp://x.example/' }, 'endpoint'],
            [{ endpoint: 'https://' }, 'endpoint'],
            [{ endpoint: 42 }, 'endpoint'],
            [{ capacity: 0 }, 'capacity'],
            [{ capacity: 1001 }, 'capacity'],
            [{ capacity: 2.5 }, 'capacity'],
            [{ capacity: '5' }, 'capacity'],
            [{ tags: 'sales' }, 'tags'],
            [{ tags: ['ok', ''] }, 'tags'],
            [{ tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }, 'tags'],
            [{ status: 'disabled' }, 'status'],
            [{ name: 'renamed' }, 'name'],
            // A valid capacity beside a bad status: neither is applied.
            [{ capacity: 9, status: 'gone' }, 'status'],
        ];
        for (const [body, field] of bad) {
            const res = await api('PATCH', `/api/agents/${a.agentId}`, { key, body, template: '/api/agents/{id}' });
            assertError(res, 422, 'invalid_field');
            assert.equal(res.json.error.field, field, `field named for ${JSON.stringify(body)}`);
            assert.match(res.json.error.message, new RegExp(`^${field} `));
        }
        assert.deepEqual(await stack.db.one('SELECT endpoint, capacity, tags, status FROM darkspere.agents WHERE agent_id = $1', [a.agentId]), before);
        for (const [body, field] of [
            [{ endpoint: 'https://x.example/' }, 'name'],
            [{ name: '', endpoint: 'https://x.example/' }, 'name'],
            [{ name: 'n'.repeat(101), endpoint: 'https://x.example/' }, 'name'],
            [{ name: 'x', endpoint: 'https://x.example/', protocol: 'grpc' }, 'protocol'],
            [{ name: 'x' }, 'endpoint'],
        ]) {
            const res = await api('POST', '/api/agents', { key, body, template: '/api/agents' });
            assertError(res, 422, 'invalid_field');
            assert.equal(res.json.error.field, field);
        }
        for (const [body, field] of [[{ status: 'fine' }, 'status'], [{ status: 'ok', load: -1 }, 'load'], [{}, 'status'],
            [{ status: 'ok', version: '' }, 'version'], [{ status: 'ok', cpu: 3 }, 'cpu']]) {
            const res = await api('POST', '/api/agents/heartbeat', { key: a.apiKey, body, template: '/api/agents/heartbeat' });
            assertError(res, 422, 'invalid_field');
            assert.equal(res.json.error.field, field);
        }
        const grace = await api('POST', `/api/agents/${a.agentId}/rotate-key`, { key, body: { grace_seconds: -1 }, template: '/api/agents/{id}/rotate-key' });
        assertError(grace, 422, 'invalid_field');
        assert.equal(grace.json.error.field, 'grace_seconds');
        assert.equal(await stack.db.value('SELECT count(*) FROM darkspere.agents WHERE account_id = $1', [stack.accountId]), 2);
    });

    test('429 with Retry-After: per key, and per client address before the key is looked at', { timeout: 60000 }, async (t) => {
        const { stack, key, otherKey, api } = await setUp(t);
        const { key_id: limitedId, api_key: limited } = await stack.db.one('SELECT * FROM darkspere.create_account_key($1, $2)', [stack.accountId, 'limited']);
        await stack.db.query("INSERT INTO darkspere.rate_limit_overrides VALUES ('api_key', $1, 3, 60, 30)", [`key:${limitedId}`]);
        for (let i = 0; i < 3; i++) assert.equal((await api('GET', '/api/usage', { key: limited, template: '/api/usage' })).status, 200);
        const refused = await api('GET', '/api/usage', { key: limited, template: '/api/usage' });
        assertError(refused, 429, 'rate_limited');
        const wait = Number(refused.headers['retry-after']);
        assert.ok(Number.isInteger(wait) && wait >= 1 && wait <= 30, `Retry-After ${refused.headers['retry-after']}`);
        assert.equal((await api('GET', '/api/usage', { key, template: '/api/usage' })).status, 200, 'another key is not limited');

        // The server counts the address it accepted the connection from; a header cannot choose it.
        await stack.db.query("INSERT INTO darkspere.rate_limit_overrides VALUES ('ip', '127.0.0.9', 2, 60, 900)");
        const from9 = (k) => api('GET', '/api/usage', { key: k, template: '/api/usage', localAddress: '127.0.0.9' });
        assertError(await from9('dsk_guess'), 401, 'unauthorized');
        assert.equal((await from9(otherKey)).status, 200);
        const blocked = await from9(key);
        assertError(blocked, 429, 'rate_limited');
        assert.ok(Number(blocked.headers['retry-after']) > 30, 'blocked for the ip rule\'s block period');
        assert.equal((await api('GET', '/api/usage', { key, template: '/api/usage' })).status, 200, 'other addresses are not limited');
        const spoof = await api('GET', '/api/usage', { key, template: '/api/usage', localAddress: '127.0.0.9',
            headers: { 'x-darkspere-peer-address': '127.0.0.1', 'x-forwarded-for': '127.0.0.1' } });
        assert.equal(spoof.status, 429);
    });

    test('an agent key rotated with a 2-second grace: the old key works, then is refused', { timeout: 60000 }, async (t) => {
        const { stack, key, api } = await setUp(t);
        const [a] = stack.agents;
        const beat = (k) => api('POST', '/api/agents/heartbeat', { key: k, body: { status: 'ok' }, template: '/api/agents/heartbeat' });
        assert.equal((await beat(a.apiKey)).status, 200);

        const rotated = await api('POST', `/api/agents/${a.agentId}/rotate-key`, { key, body: { grace_seconds: 2 }, template: '/api/agents/{id}/rotate-key' });
        assert.equal(rotated.status, 200);
        const newKey = rotated.json.api_key;
        assert.notEqual(newKey, a.apiKey);
        assert.equal((await beat(newKey)).status, 200, 'the new key works at once');
        const validUntil = Date.parse(rotated.json.previous_key_valid_until);
        // Within the grace period the old key still works (checked only while the database's clock says so).
        const during = await beat(a.apiKey);
        const stillInGrace = await stack.db.value('SELECT now() < $1::timestamptz', [rotated.json.previous_key_valid_until]);
        if (stillInGrace) assert.equal(during.status, 200, 'the old key works during the grace period');
        await waitFor(async () => (await beat(a.apiKey)).status === 401, { timeoutMs: 30000, intervalMs: 200, message: 'the old key refused after its grace' });
        assert.ok(Date.now() >= validUntil - 1000, 'refused only once the grace period is over');
        assert.equal((await beat(newKey)).status, 200, 'the new key still works');

        // Without a body the grace is 24 hours.
        const again = await api('POST', `/api/agents/${a.agentId}/rotate-key`, { key, template: '/api/agents/{id}/rotate-key' });
        const hours = (Date.parse(again.json.previous_key_valid_until) - Date.now()) / 3600e3;
        assert.ok(hours > 23.9 && hours <= 24.01, `default grace ${hours} h`);
    });
});
