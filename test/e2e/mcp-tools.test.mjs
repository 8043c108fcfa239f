// test/e2e/mcp-tools.test.mjs — MCP tool discovery through a real worker and the official SDK server stand-in
// (peers/mcp-agent.mjs) exposing two tools, `chat` and `weather`: the first probe lists the tools and stores them
// (GET /api/agents/{id} shows tools and tools_checked_at); PATCH tool_name picks the tool a turn calls (validated:
// 422 naming the field; null goes back to the default, `chat`); the server's notifications/tools/list_changed
// makes the worker read and store the new list without a probe. A server without ping (-32601) passes its
// probes through tools/list.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { sleep } from './lib/net.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

async function api(stack, key, method, path, body) {
    const res = await fetch(new URL(path, stack.worker.url), {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: await res.json() };
}

// waitForTools polls GET /api/agents/{id} until `check(agent)` holds.
async function waitForTools(stack, key, agentId, check, timeoutMs = 20000) {
    const until = Date.now() + timeoutMs;
    let last;
    while (Date.now() < until) {
        last = await api(stack, key, 'GET', `/api/agents/${agentId}`);
        if (last.status === 200 && check(last.json)) return last.json;
        await sleep(200);
    }
    assert.fail(`tools never as expected: ${JSON.stringify(last)}`);
}

test('tools are listed at the first probe, the configured tool is called, list_changed refreshes the list', { timeout: 120000 }, async (t) => {
    const stack = await useStack(t, cluster, {
        agents: [{ kind: 'mcp', name: 'mcp-a', transport: 'sse', extraTools: ['weather'] }],
        withWorker: false,
    });
    await stack.db.query(`ALTER DATABASE ${stack.dbName} SET darkspere.probe_interval = 1`);
    await stack.startWorker();
    const [a] = stack.agents;
    const key = await stack.db.value('SELECT api_key FROM darkspere.create_account_key($1, $2)', [stack.accountId, 'e2e']);

    // The first probe (ping, then tools/list) stores both tools.
    const listed = await waitForTools(stack, key, a.agentId, (g) => Array.isArray(g.tools));
    assert.deepEqual(listed.tools.map((x) => x.name).sort(), ['chat', 'weather']);
    assert.equal(listed.tools.find((x) => x.name === 'weather').description, 'The weather tool');
    assert.ok(Date.parse(listed.tools_checked_at) > Date.now() - 60000, listed.tools_checked_at);
    assert.equal(listed.tool_name, null);
    const methods = a.peer.rpc.map((m) => m.method);
    assert.ok(methods.indexOf('tools/list') > methods.indexOf('ping'), JSON.stringify(methods));

    // The default tool is `chat`; PATCH tool_name makes turns call `weather`.
    const from = phone(1);
    assertAccepted(await stack.sms(from, 'hello'));
    const [first] = await stack.waitForReplies(from, 1);
    assert.equal(first.body, 'mcp-a: hello [history 0]');
    let patched = await api(stack, key, 'PATCH', `/api/agents/${a.agentId}`, { tool_name: 'weather' });
    assert.equal(patched.status, 200, JSON.stringify(patched.json));
    assert.equal(patched.json.tool_name, 'weather');
    assertAccepted(await stack.sms(from, 'rain?'));
    const replies = await stack.waitForReplies(from, 2);
    assert.equal(replies[1].body, 'weather: rain?');
    assert.equal(a.peer.calls.at(-1).tool, 'weather');

    // Validated, nothing applied on a bad value.
    for (const bad of ['', 7, 'x'.repeat(129), 'tab\there']) {
        const refused = await api(stack, key, 'PATCH', `/api/agents/${a.agentId}`, { tool_name: bad, capacity: 3 });
        assert.equal(refused.status, 422, JSON.stringify(bad));
        assert.equal(refused.json.error.field, 'tool_name');
    }
    assert.equal(await stack.db.value('SELECT capacity FROM darkspere.agents WHERE agent_id = $1', [a.agentId]), 10);

    // Back to the default; probes stop (next probe a day away), so only the notification can refresh the list.
    patched = await api(stack, key, 'PATCH', `/api/agents/${a.agentId}`, { tool_name: null });
    assert.equal(patched.json.tool_name, null);
    await stack.db.query("UPDATE darkspere.agents SET next_probe_at = now() + interval '1 day' WHERE agent_id = $1", [a.agentId]);
    await sleep(1500); // a probe already scheduled runs out
    const rpcBefore = a.peer.rpc.length;
    a.peer.setBehavior('announce');
    assertAccepted(await stack.sms(from, 'news?'));
    const third = await stack.waitForReplies(from, 3);
    assert.equal(third[2].body, 'mcp-a: news? [history 4]');
    const refreshed = await waitForTools(stack, key, a.agentId, (g) => g.tools.some((x) => x.name === 'news'));
    assert.deepEqual(refreshed.tools.map((x) => x.name).sort(), ['chat', 'news', 'weather']);
    const after = a.peer.rpc.slice(rpcBefore).map((m) => m.method);
    assert.ok(!after.includes('ping'), `no probe ran: ${JSON.stringify(after)}`);
    assert.ok(after.lastIndexOf('tools/list') > after.indexOf('tools/call'), JSON.stringify(after));
});

test('a server without ping passes its probes through tools/list', { timeout: 60000 }, async (t) => {
    const stack = await useStack(t, cluster, { agents: [{ kind: 'mcp', name: 'mcp-np', noPing: true }], withWorker: false });
    await stack.db.query(`ALTER DATABASE ${stack.dbName} SET darkspere.probe_interval = 1`);
    await stack.startWorker();
    const [a] = stack.agents;
    const until = Date.now() + 20000;
    let checks = [];
    while (Date.now() < until) {
        checks = await stack.db.query('SELECT ok, error FROM darkspere.agent_checks WHERE agent_id = $1', [a.agentId]);
        if (checks.length >= 2) break;
        await sleep(200);
    }
    assert.ok(checks.length >= 2 && checks.every((c) => c.ok), JSON.stringify(checks));
    const methods = a.peer.rpc.map((m) => m.method);
    assert.ok(methods.includes('ping') && methods.includes('tools/list'), JSON.stringify(methods));
    assert.equal(await stack.db.value('SELECT status FROM darkspere.agents WHERE agent_id = $1', [a.agentId]), 'active');
    assert.deepEqual(await stack.db.value('SELECT tools FROM darkspere.agents WHERE agent_id = $1', [a.agentId]), [{ name: 'chat', description: 'Answer one SMS of a conversation' }]);
});
