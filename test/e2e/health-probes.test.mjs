// test/e2e/health-probes.test.mjs — health probes through a real worker: a flapping agent (its /health turned
// off and on through the peer's control API) is made 'unhealthy' after 3 failed probes, its session's next
// message is answered by the other agent, and it is 'active' again after 3 passing probes; agent_events holds
// both changes, made by the probes. Probes are off in the harness (lib/cluster.mjs); this test turns them on for
// its database (probe_interval 1 s) before the worker connects. An MCP agent is probed with a signed JSON-RPC
// ping, and answering 500 makes it unhealthy too.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { sleep } from './lib/net.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

// waitForStatus polls the agent's status until it is `want` (or fails after timeoutMs).
async function waitForStatus(db, agentId, want, timeoutMs = 30000) {
    const until = Date.now() + timeoutMs;
    let status;
    while (Date.now() < until) {
        status = await db.value('SELECT status FROM darkspere.agents WHERE agent_id = $1', [agentId]);
        if (status === want) return;
        await sleep(100);
    }
    assert.fail(`agent ${agentId} stayed ${status}, never ${want}`);
}

test('a flapping agent is taken out after 3 failed probes and put back after 3 passing ones', { timeout: 120000 }, async (t) => {
    const stack = await useStack(t, cluster, {
        agents: [{ kind: 'http', name: 'agent-a' }, { kind: 'http', name: 'agent-b', status: 'maintenance' }],
        withWorker: false,
    });
    await stack.db.query(`ALTER DATABASE ${stack.dbName} SET darkspere.probe_interval = 1`);
    await stack.startWorker();
    const [a, b] = stack.agents;
    const from = phone(1);

    // A owns the session (B is in maintenance for the first turn).
    assertAccepted(await stack.sms(from, 'first'));
    const [first] = await stack.waitForReplies(from, 1);
    assert.equal(first.body, 'agent-a: first [history 0]');
    await stack.db.query('SELECT darkspere.set_agent_status($1, $2)', [b.agentId, 'active']);

    // Probes reach A, signed, on its origin + /health, and pass.
    const until = Date.now() + 15000;
    while (a.peer.probes.length < 2 && Date.now() < until) await sleep(100);
    assert.ok(a.peer.probes.length >= 2, 'A is probed every interval');
    assert.ok(a.peer.probes.every((p) => p.signed && p.path === '/health'), JSON.stringify(a.peer.probes));
    assert.equal(await stack.db.value('SELECT status FROM darkspere.agents WHERE agent_id = $1', [a.agentId]), 'active');

    // A's health endpoint goes down: 3 failed probes in a row make it unhealthy.
    a.peer.setHealthy(false);
    await waitForStatus(stack.db, a.agentId, 'unhealthy');
    const failed = await stack.db.query(
        'SELECT ok, error FROM darkspere.agent_checks WHERE agent_id = $1 ORDER BY check_id DESC LIMIT 3', [a.agentId]);
    assert.deepEqual(failed.map((c) => c.ok), [false, false, false]);
    assert.equal(failed[0].error, 'probe http 503');
    let events = await stack.db.query(
        'SELECT actor, from_status, to_status, reason FROM darkspere.agent_events WHERE agent_id = $1 ORDER BY event_id',
        [a.agentId]);
    assert.equal(events.length, 1, JSON.stringify(events));
    assert.deepEqual([events[0].actor, events[0].from_status, events[0].to_status], ['probe', 'active', 'unhealthy']);
    assert.match(events[0].reason, /^3 consecutive failed health probes/);

    // The session's next message is answered by B (A still answers turns; the router no longer gives it any).
    assertAccepted(await stack.sms(from, 'second'));
    const replies = await stack.waitForReplies(from, 2, { timeoutMs: 30000 });
    assert.equal(replies[1].body, 'agent-b: second [history 2]');
    assert.equal(await stack.db.value('SELECT agent_id FROM darkspere.sessions WHERE phone = $1', [from]), b.agentId);

    // A comes back: 3 passing probes in a row make it active again.
    a.peer.setHealthy(true);
    await waitForStatus(stack.db, a.agentId, 'active');
    events = await stack.db.query(
        'SELECT actor, from_status, to_status, reason FROM darkspere.agent_events WHERE agent_id = $1 ORDER BY event_id',
        [a.agentId]);
    assert.equal(events.length, 2, JSON.stringify(events));
    assert.deepEqual([events[1].actor, events[1].from_status, events[1].to_status, events[1].reason],
        ['probe', 'unhealthy', 'active', '3 consecutive passing health probes']);
    const passed = await stack.db.query(
        'SELECT ok FROM darkspere.agent_checks WHERE agent_id = $1 ORDER BY check_id DESC LIMIT 3', [a.agentId]);
    assert.deepEqual(passed.map((c) => c.ok), [true, true, true]);

    // The view and B: B was probed too and stayed active; no probe job was dead-lettered.
    const health = await stack.db.one('SELECT status, failures_last_10, last_check_ok FROM darkspere.agent_health WHERE agent_id = $1',
        [a.agentId]);
    assert.equal(health.status, 'active');
    assert.ok(health.failures_last_10 >= 3);
    assert.equal(health.last_check_ok, true);
    assert.ok(b.peer.probes.length > 0, 'B is probed once active');
    assert.equal(await stack.db.value('SELECT status FROM darkspere.agents WHERE agent_id = $1', [b.agentId]), 'active');
    assert.equal(Number(await stack.db.value("SELECT count(*) FROM darkspere.jobs WHERE kind = 'health_probe' AND state = 'dead'")), 0);
});

test('an MCP agent is probed with a signed JSON-RPC ping; answering 500 makes it unhealthy', { timeout: 90000 }, async (t) => {
    const stack = await useStack(t, cluster, { agents: [{ kind: 'mcp', name: 'mcp-a' }], withWorker: false });
    await stack.db.query(`ALTER DATABASE ${stack.dbName} SET darkspere.probe_interval = 1`);
    await stack.startWorker();
    const [a] = stack.agents;

    const until = Date.now() + 15000;
    const pings = () => a.peer.rpc.filter((m) => m.method === 'ping');
    while (pings().length < 2 && Date.now() < until) await sleep(100);
    assert.ok(pings().length >= 2, `pings: ${JSON.stringify(a.peer.rpc.map((m) => m.method))}`);
    assert.ok(pings().every((m) => m.signature), 'every ping is signed');
    assert.equal(a.peer.refused.length, 0, 'no probe was refused for its signature');
    const ok = await stack.db.query('SELECT ok FROM darkspere.agent_checks WHERE agent_id = $1', [a.agentId]);
    assert.ok(ok.length >= 1 && ok.every((c) => c.ok), JSON.stringify(ok));

    a.peer.setBehavior('error500');
    await waitForStatus(stack.db, a.agentId, 'unhealthy');
    const events = await stack.db.query(
        'SELECT actor, from_status, to_status FROM darkspere.agent_events WHERE agent_id = $1 ORDER BY event_id', [a.agentId]);
    assert.deepEqual(events.map((e) => [e.actor, e.from_status, e.to_status]), [['probe', 'active', 'unhealthy']]);
});
