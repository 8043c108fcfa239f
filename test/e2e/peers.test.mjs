// test/e2e/peers.test.mjs — the loopback peers themselves behave like the services they stand in for.
// These run without PostgreSQL or the worker, so a failure elsewhere is never a broken test double.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import twilio from 'twilio';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startTwilioApi, countSegments } from './peers/twilio-api.mjs';
import { startHttpAgent } from './peers/http-agent.mjs';
import { startMcpAgent } from './peers/mcp-agent.mjs';
import { inboundParams, signedPost } from './lib/twilio-webhook.mjs';
import { startStatusSink } from './lib/status-sink.mjs';

const SID = 'AC0123456789abcdef0123456789abcdef';
const TOKEN = 'e2e-auth-token';

describe('twilio SDK signing matches the published vectors (docs/protocols.md#twilio-test-vectors)', () => {
    const P = { CallSid: 'CA1234567890ABCDE', Caller: '+14158675309', Digits: '1234', From: '+14158675309', To: '+18005551212' };
    test('T1 and the derived SMS vector sign as published', () => {
        assert.equal(twilio.getExpectedTwilioSignature('12345', 'https://mycompany.com/myapp.php?foo=1&bar=2', P),
            'RSOYDt4T1cUTdK1PDd93/VVr8B8=');
        const raw = 'AccountSid=AC00000000000000000000000000000000&ApiVersion=2010-04-01&Body=Hello%2C+world%21+%E2%9C%93+%F0%9F%98%80&From=%2B14155550100&MessageSid=SM11111111111111111111111111111111&NumMedia=0&NumSegments=1&SmsMessageSid=SM11111111111111111111111111111111&SmsSid=SM11111111111111111111111111111111&SmsStatus=received&To=%2B14155550199';
        const params = Object.fromEntries(new URLSearchParams(raw));
        assert.equal(twilio.getExpectedTwilioSignature('12345', 'https://example.com/sms/inbound', params),
            '1a3Rnwg3jZvCkd4uQVa+vvCfPz0=');
    });
    test('our inbound helper produces webhooks the SDK validates, and only for the signed URL', () => {
        const params = inboundParams({ accountSid: SID, from: '+14155550100', to: '+14155550199', body: 'hi ✓' });
        const url = 'http://127.0.0.1:4321/twilio/sms';
        const signature = twilio.getExpectedTwilioSignature(TOKEN, url, params);
        assert.ok(twilio.validateRequest(TOKEN, signature, url, params));
        assert.ok(!twilio.validateRequest(TOKEN, signature, 'http://127.0.0.1:4322/twilio/sms', params));
        assert.ok(!twilio.validateRequest('other-token', signature, url, params));
        assert.match(params.MessageSid, /^SM[0-9a-f]{32}$/);
        assert.equal(params.SmsSid, params.MessageSid);
    });
});

describe('Twilio Messages API stand-in', async () => {
    const sink = await startStatusSink({ accounts: { [SID]: TOKEN } });
    const api = await startTwilioApi({ accounts: { [SID]: TOKEN }, statusCallbacks: { delayMs: 5 } });
    after(async () => {
        await api.close();
        await sink.close();
    });
    const endpoint = `${api.url}/2010-04-01/Accounts/${SID}/Messages.json`;
    const auth = `Basic ${Buffer.from(`${SID}:${TOKEN}`).toString('base64')}`;
    const send = (fields, headers = {}) => fetch(endpoint, {
        method: 'POST',
        headers: { Authorization: auth, 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams(fields).toString(),
    });

    test('a raw form POST gets 201 with Message JSON, then signed sent/delivered callbacks', async () => {
        const form = { To: '+14155550100', From: '+14155550199', Body: 'hello there', StatusCallback: sink.url };
        const res = await send(form);
        assert.equal(res.status, 201);
        const message = await res.json();
        assert.match(message.sid, /^SM[0-9a-f]{32}$/);
        assert.equal(message.status, 'queued');
        assert.equal(message.num_segments, '1');
        assert.equal(message.direction, 'outbound-api');
        assert.match(message.date_created, /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
        await api.waitForMessages(1);
        const statuses = await sink.waitFor(2);
        assert.deepEqual(statuses.map((s) => [s.params.MessageSid, s.params.MessageStatus, s.valid]),
            [[message.sid, 'sent', true], [message.sid, 'delivered', true]]);
    });

    test('the twilio SDK client reads our 201 and error bodies as it reads Twilio\'s', async () => {
        const client = twilio(SID, TOKEN);
        client.api.baseUrl = api.url; // the SDK's REST domain, normally https://api.twilio.com
        const message = await client.messages.create({ to: '+14155550100', from: '+14155550199', body: 'from the SDK' });
        assert.match(message.sid, /^SM[0-9a-f]{32}$/);
        assert.equal(message.numSegments, '1');
        assert.ok(message.dateCreated instanceof Date && !Number.isNaN(message.dateCreated.getTime()));
        await assert.rejects(client.messages.create({ to: '12', from: '+14155550199', body: 'x' }),
            (err) => err.code === 21211 && err.status === 400);
    });

    test('bad credentials get 401 code 20003', async () => {
        const res = await send({ To: '+14155550100', From: '+14155550199', Body: 'x' },
            { Authorization: `Basic ${Buffer.from(`${SID}:wrong`).toString('base64')}` });
        assert.equal(res.status, 401);
        assert.deepEqual(await res.json(), {
            code: 20003, message: 'Authenticate', more_info: 'https://www.twilio.com/docs/errors/20003', status: 401,
        });
    });

    test('missing or malformed fields get Twilio error codes', async () => {
        const cases = [
            [{ From: '+14155550199', Body: 'x' }, 21604],
            [{ To: '12', From: '+14155550199', Body: 'x' }, 21211],
            [{ To: '+14155550100', Body: 'x' }, 21603],
            [{ To: '+14155550100', From: '+14155550199' }, 21602],
            [{ To: '+14155550100', From: '+14155550199', Body: 'x'.repeat(1601) }, 21617],
            [{ To: '+14155550100', From: '+14155550199', Body: 'x', StatusCallback: 'not a url' }, 21609],
        ];
        for (const [fields, code] of cases) {
            const res = await send(fields);
            assert.equal(res.status, 400, JSON.stringify(fields));
            assert.equal((await res.json()).code, code, JSON.stringify(fields));
        }
        const json = await fetch(endpoint, {
            method: 'POST', headers: { Authorization: auth, 'Content-Type': 'application/json' }, body: '{"To":"+14155550100"}',
        });
        assert.equal(json.status, 400);
    });

    test('programmed failures come first, then sends succeed again', async () => {
        api.fail({ to: '+14155550111', code: 429, times: 1 });
        api.fail({ to: '+14155550112', code: 21610, times: 1 });
        api.fail({ to: '+14155550113', code: 500, times: 2 });
        const f = (to) => ({ To: to, From: '+14155550199', Body: 'x' });
        let res = await send(f('+14155550111'));
        assert.equal(res.status, 429);
        assert.equal((await res.json()).code, 20429);
        res = await send(f('+14155550112'));
        assert.equal(res.status, 400);
        assert.equal((await res.json()).code, 21610);
        assert.equal((await send(f('+14155550113'))).status, 500);
        assert.equal((await send(f('+14155550113'))).status, 500);
        assert.equal((await send(f('+14155550113'))).status, 201);
        assert.equal((await send(f('+14155550111'))).status, 201);
    });

    test('segments are counted like Twilio: GSM-7 160/153, UCS-2 70/67', () => {
        assert.equal(countSegments('a'.repeat(160)), 1);
        assert.equal(countSegments('a'.repeat(161)), 2);
        assert.equal(countSegments('€'.repeat(80)), 1);
        assert.equal(countSegments('€'.repeat(81)), 2);
        assert.equal(countSegments('✓'.repeat(70)), 1);
        assert.equal(countSegments('✓'.repeat(71)), 2);
    });
});

describe('http agent (docs/protocols.md#http-agent-protocol)', async () => {
    const agent = await startHttpAgent({ name: 'h' });
    after(() => agent.close());
    const call = (body) => fetch(agent.url, {
        method: 'POST', headers: { 'Content-Type': 'application/json', 'Idempotency-Key': body.request_id }, body: JSON.stringify(body),
    });
    const turn = { request_id: 'rq-1', session_id: 's1', from: '+1', to: '+2', message: 'hi', history: [{ role: 'user', content: 'a' }] };

    test('echo answers {"reply"} and records the request', async () => {
        const res = await call(turn);
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), { reply: 'h: hi [history 1]' });
        assert.equal(agent.requests.at(-1).idempotency_key, 'rq-1');
        assert.equal(agent.requests.at(-1).session_id, 's1');
    });
    test('error500, malformed and timeout misbehave as asked', async () => {
        agent.setMode('error500');
        assert.equal((await call(turn)).status, 500);
        agent.setMode('malformed');
        const res = await call(turn);
        await assert.rejects(res.json());
        agent.setMode('timeout');
        await assert.rejects(fetch(agent.url, {
            method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(turn), signal: AbortSignal.timeout(300),
        }));
        agent.setMode('echo');
    });
});

describe('MCP agent through the SDK client (docs/protocols.md#mcp-sdk-peers)', () => {
    for (const transport of ['json', 'sse', 'stateful']) {
        test(`${transport}: initialize, list tools, call chat`, async () => {
            const agent = await startMcpAgent({ transport, name: `m-${transport}` });
            const client = new Client({ name: 'peer-test', version: '0.0.1' });
            try {
                await client.connect(new StreamableHTTPClientTransport(new URL(agent.url)));
                const { tools } = await client.listTools();
                assert.deepEqual(tools.map((t) => t.name), ['chat']);
                assert.deepEqual(Object.keys(tools[0].inputSchema.properties).sort(), ['from', 'history', 'message', 'session_id', 'to']);
                const result = await client.callTool({ name: 'chat', arguments: { message: 'hi', session_id: 7, history: [] } });
                assert.deepEqual(result.content, [{ type: 'text', text: `m-${transport}: hi [history 0]` }]);
                assert.equal(agent.calls.length, 1);
                if (transport === 'stateful') {
                    assert.equal(agent.sessions.size, 1);
                    assert.ok(agent.calls[0].mcp_session_id);
                }
                agent.setBehavior('isError');
                const failed = await client.callTool({ name: 'chat', arguments: { message: 'hi' } });
                assert.equal(failed.isError, true);
            } finally {
                await client.close();
                await agent.close();
            }
        });
    }

    test('stateful: an expired session answers 404 to the old id', async () => {
        const agent = await startMcpAgent({ transport: 'stateful' });
        const client = new Client({ name: 'peer-test', version: '0.0.1' });
        try {
            const t = new StreamableHTTPClientTransport(new URL(agent.url));
            await client.connect(t);
            const old = t.sessionId;
            await agent.expireSessions();
            const res = await fetch(agent.url, {
                method: 'POST',
                headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': old },
                body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
            });
            assert.equal(res.status, 404);
        } finally {
            await client.close().catch(() => {});
            await agent.close();
        }
    });
});
