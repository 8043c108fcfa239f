// test/e2e/hostile-agents.test.mjs — what an agent may send back and where the worker may call out (issue #10
// items 1, 2 and 8). A tenant's agent is hostile: it answers JSON nested 200,000 levels deep, streams 50 MB, or
// its URL points at the worker's own loopback. Each time the call fails (retryable, so the turn moves to the
// tenant's healthy agent), the worker stays up with its memory bounded, and nothing is sent to the address the
// policy refuses.
//
// The hostile agents are raw node:http servers rather than SDK peers: no SDK would send these answers.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { closeServer, listen, readBody, waitFor } from './lib/net.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

const DEEP = 200000; // levels of nesting: about 400 KB of brackets, enough to overflow a recursive copy
const FLOOD_BYTES = 50 * 1024 * 1024;
const RSS_LIMIT_KB = 100 * 1024;

// startHostileAgent — an agent that behaves ('echo') until told otherwise with setMode:
//   deep   the answer's payload is nested DEEP levels (http: inside the object; mcp: result.content)
//   flood  the answer streams FLOOD_BYTES (http: one JSON string; mcp: an SSE data line that never ends)
// protocol 'mcp' speaks the modern era in plain JSON (server/discover, tools/list, tools/call).
async function startHostileAgent(protocol) {
    const state = { mode: 'echo', requests: 0, floodBytesWritten: 0 };
    const server = createHttpServer(async (req, res) => {
        state.requests++;
        const body = JSON.parse((await readBody(req)).toString('utf8') || '{}');
        const json = (value) => {
            res.writeHead(200, { 'Content-Type': 'application/json' });
            res.end(typeof value === 'string' ? value : JSON.stringify(value));
        };
        if (protocol === 'mcp' && body.method === 'server/discover') {
            return json({ jsonrpc: '2.0', id: body.id, result: {
                resultType: 'complete', supportedVersions: ['2026-07-28'], capabilities: { tools: {} }, ttlMs: 600000, cacheScope: 'public' } });
        }
        if (protocol === 'mcp' && body.method === 'tools/list') {
            return json({ jsonrpc: '2.0', id: body.id, result: { tools: [{ name: 'chat',
                inputSchema: { type: 'object', properties: { message: { type: 'string' } } } }], ttlMs: 600000, cacheScope: 'public' } });
        }
        const message = protocol === 'mcp' ? body.params?.arguments?.message : body.message;
        if (state.mode === 'echo') {
            const reply = `hostile: ${message}`;
            return json(protocol === 'mcp'
                ? { jsonrpc: '2.0', id: body.id, result: { content: [{ type: 'text', text: reply }] } }
                : { reply });
        }
        if (state.mode === 'deep') {
            const deep = '['.repeat(DEEP) + ']'.repeat(DEEP);
            return json(protocol === 'mcp'
                ? `{"jsonrpc":"2.0","id":${body.id},"result":{"content":${deep}}}`
                : `{"reply":"deep","x":${deep}}`);
        }
        // flood: a well-formed beginning, then bytes until FLOOD_BYTES or the worker hangs up.
        res.writeHead(200, { 'Content-Type': protocol === 'mcp' ? 'text/event-stream' : 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 'a');
        let closed = false;
        res.on('close', () => {
            closed = true;
            res.emit('drain'); // wakes the writer below, which then stops
        });
        res.write(protocol === 'mcp' ? 'event: message\ndata: {"jsonrpc":"2.0","id":' + body.id + ',"result":{"content":[{"type":"text","text":"' : '{"reply":"');
        while (!closed && state.floodBytesWritten < FLOOD_BYTES) {
            state.floodBytesWritten += chunk.length;
            if (!res.write(chunk)) await once(res, 'drain');
        }
        if (!closed) res.end(protocol === 'mcp' ? '"}]}}\n\n' : '"}');
    });
    await listen(server);
    return {
        url: `http://127.0.0.1:${server.address().port}/`,
        state,
        setMode(mode) { state.mode = mode; },
        close: () => closeServer(server),
    };
}

function peakRssKb(pid) {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(status.match(/^VmHWM:\s+(\d+) kB$/m)[1]);
}

// stickyFailover — the hostile agent A answers the first turn (B is in maintenance, so A owns the session); then
// B is activated and A turns hostile: the second turn goes to A, fails, and must be answered by B.
async function stickyFailover(t, { protocol, mode, worker = {} }) {
    const hostile = await startHostileAgent(protocol);
    t.after(() => hostile.close());
    const stack = await useStack(t, cluster, {
        agents: [{ kind: 'http', name: 'agent-b', status: 'maintenance' }],
        worker: { agentDeadlineMs: 20000, ...worker },
    });
    const a = await stack.db.one('SELECT * FROM darkspere.register_agent($1, $2, $3, $4, 10)',
        [stack.accountId, 'hostile', hostile.url, protocol]);
    const b = stack.agentNamed('agent-b');
    const from = phone(1);

    assertAccepted(await stack.sms(from, 'first'));
    const [first] = await stack.waitForReplies(from, 1, { timeoutMs: 30000 });
    assert.equal(first.body, 'hostile: first');

    await stack.db.query('SELECT darkspere.set_agent_status($1, $2)', [b.agentId, 'active']);
    hostile.setMode(mode);
    const requestsBefore = hostile.state.requests;
    assertAccepted(await stack.sms(from, 'second'));
    const replies = await stack.waitForReplies(from, 2, { timeoutMs: 60000 });
    assert.equal(replies[1].body, 'agent-b: second [history 2]', 'B answers the turn the hostile agent failed');
    assert.ok(hostile.state.requests > requestsBefore, 'the hostile agent was tried first');
    const failure = stack.worker.logs.find((r) => r.msg === 'agent call finished' && r.agent_id === Number(a.agent_id) && r.ok === false);
    assert.ok(failure, 'the hostile call is logged as failed');

    assert.equal(stack.worker.exit, null, 'the worker is still running');
    assertAccepted(await stack.sms(from, 'third'));
    const later = await stack.waitForReplies(from, 3, { timeoutMs: 30000 });
    assert.equal(later[2].body, 'agent-b: third [history 4]', 'the worker answers the next message');
    return { stack, hostile, failure };
}

describe('an agent answering JSON nested 200,000 levels deep', () => {
    // The response cap is raised so that the depth limit, not the size limit, is what stops these answers.
    const worker = { extraArgs: ['--agent-max-response-bytes', String(4 * 1024 * 1024)] };
    for (const protocol of ['mcp', 'http']) {
        test(`${protocol}: the call fails, the turn fails over, the worker lives on`, { timeout: 120000 }, async (t) => {
            const { failure } = await stickyFailover(t, { protocol, mode: 'deep', worker });
            assert.match(failure.error, protocol === 'mcp' ? /unparsable response/ : /not a JSON object/);
        });
    }
});

describe('an agent streaming 50 MB', () => {
    for (const protocol of ['http', 'mcp']) {
        const how = protocol === 'mcp' ? 'an MCP SSE event' : 'an http JSON body';
        test(`${how}: aborted at agent-max-response-bytes, worker memory stays bounded`, { timeout: 120000 }, async (t) => {
            const { stack, hostile, failure } = await stickyFailover(t, { protocol, mode: 'flood' });
            assert.match(failure.error, /response larger than 262144 bytes/);
            assert.ok(hostile.state.floodBytesWritten < FLOOD_BYTES, `the worker hung up early (${hostile.state.floodBytesWritten} bytes written)`);
            const peak = peakRssKb(stack.worker.proc.pid);
            assert.ok(peak < RSS_LIMIT_KB, `worker peak RSS ${peak} kB stays under ${RSS_LIMIT_KB} kB`);
        });
    }
});

describe('an agent registered at a loopback address', () => {
    test('with agent-allow-private off, no connection is made and the job fails naming the address', { timeout: 120000 }, async (t) => {
        // A TCP listener this test owns stands in for any internal service: it must never see a connection.
        let accepted = 0;
        const target = createTcpServer((socket) => {
            accepted++;
            socket.destroy();
        });
        await listen(target);
        t.after(() => closeServer(target));
        const stack = await useStack(t, cluster, {
            agents: [],
            worker: { agentAllowPrivate: false, allowInsecureHttp: true },
        });
        const url = `http://127.0.0.1:${target.address().port}/`;
        const agent = await stack.db.one("SELECT * FROM darkspere.register_agent($1, 'internal', $2, 'http', 10)", [stack.accountId, url]);
        const from = phone(2);
        assertAccepted(await stack.sms(from, 'reach inside'));

        const expected = 'refused to connect to agent address 127.0.0.1 (loopback): agents may only be reached at public addresses unless agent-allow-private is on';
        const failure = await stack.worker.waitForLog(
            (r) => r.msg === 'agent call finished' && r.agent_id === Number(agent.agent_id) && r.ok === false,
            { timeoutMs: 30000, message: 'the refused agent call' });
        assert.equal(failure.error, expected);
        const job = await waitFor(async () => (await stack.db.one(
            "SELECT last_error FROM darkspere.jobs WHERE kind = 'agent_call' AND last_error IS NOT NULL")) ?? null,
        { timeoutMs: 30000, message: 'the job records the refusal' });
        assert.equal(job.last_error, expected);
        assert.equal(accepted, 0, 'the loopback listener accepted no connection');
    });
});
