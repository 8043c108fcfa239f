// test/e2e/alerts.test.mjs — the error-rate alert through a real worker: an agent made to fail makes tick() fire
// the rule once, the webhook stand-in receives one notification signed with the channel's secret (Slack-style
// {"text": …} plus structured fields) and a NOTIFY darkspere_alerts arrives; once the agent recovers and the
// failure leaves the rule's window, the alert resolves (a "resolved" notification follows); failing again inside
// the cooldown fires nothing.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { closeServer, listen, readBody, sleep, waitFor } from './lib/net.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { inboundParams, signedPost } from './lib/twilio-webhook.mjs';
import { assertAccepted } from './lib/twiml.mjs';
import { verifySignature } from './peers/signature.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

// startWebhookSink — a loopback stand-in for a Slack incoming webhook: keeps each request's headers and raw body.
async function startWebhookSink() {
    const received = [];
    const server = createServer((req, res) => {
        readBody(req).then((raw) => {
            received.push({ headers: req.headers, raw: raw.toString('utf8'), path: req.url });
            res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
        }, () => res.writeHead(400).end());
    });
    const port = await listen(server);
    return { url: `http://127.0.0.1:${port}/hooks/ops`, received, close: () => closeServer(server) };
}

// failures — how many failed agent calls are traced.
const failures = (db) => db.value(
    "SELECT count(*)::int FROM darkspere.trace_events WHERE step = 'agent_call_finished' AND NOT (detail->>'ok')::boolean");

test('a failing agent fires the error-rate alert once, signed to the webhook, and it resolves on recovery', { timeout: 150000 }, async (t) => {
    const sink = await startWebhookSink();
    t.after(() => sink.close());
    const stack = await useStack(t, cluster, { agents: [{ kind: 'http', name: 'agent-a' }], withWorker: false });
    const db = stack.db;
    // Health probes on (every second): a failed call lowers the agent's health below what routing takes, and
    // its passing probes bring it back, as in production.
    await db.query(`ALTER DATABASE ${stack.dbName} SET darkspere.probe_interval = 1`);
    await db.query(`ALTER DATABASE ${stack.dbName} SET darkspere.alert_interval = 1`);

    // Only the error-rate rule, on a short window so recovery shows within the test; a long cooldown.
    await db.query('INSERT INTO darkspere.alert_channels (channel, webhook_url) VALUES ($1, $2)', ['ops', sink.url]);
    await db.query("UPDATE darkspere.alert_rules SET enabled = (name = 'error_rate')");
    await db.query(`UPDATE darkspere.alert_rules SET channel = 'ops', "window" = '10 seconds', cooldown = '1 hour'
                     WHERE name = 'error_rate'`);
    const secret = await db.value("SELECT darkspere.alert_channel_secret('ops')");
    // A pooled client of the stack's own: released in the finally below, before the stack's teardown ends the pool.
    const listener = await db.pool.connect();
    try {
        await scenario(stack, sink, listener, secret);
    } finally {
        listener.release();
    }
});

async function scenario(stack, sink, listener, secret) {
    const [a] = stack.agents;
    const db = stack.db;
    const notifications = [];
    listener.on('notification', (n) => notifications.push(n));
    await listener.query('LISTEN darkspere_alerts');
    await stack.startWorker();

    // The agent fails: its call is traced as failed, the worker's tick fires the rule.
    a.peer.setMode('error500');
    assertAccepted(await stack.sms(phone(1), 'are you there?'));
    await waitFor(() => sink.received.length >= 1, { timeoutMs: 30000, message: 'a webhook notification' });
    const alerts = await db.query("SELECT alert_id, state, value FROM darkspere.alerts WHERE rule = 'error_rate'");
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0].state, 'firing');

    const first = sink.received[0];
    assert.equal(first.path, '/hooks/ops');
    assert.equal(first.headers['content-type'], 'application/json');
    assert.ok(verifySignature(first.headers['x-darkspere-signature'], first.raw, [secret]),
        `signed with the channel secret: ${first.headers['x-darkspere-signature']}`);
    assert.ok(!verifySignature(first.headers['x-darkspere-signature'], first.raw, ['dsk_wrong']));
    const body = JSON.parse(first.raw);
    assert.match(body.text, /^\[CRITICAL\] error_rate firing: value [0-9.]+ \(threshold 10\)$/);
    assert.equal(body.state, 'firing');
    assert.equal(body.rule, 'error_rate');
    assert.equal(String(body.alert_id), String(alerts[0].alert_id));
    assert.ok(!first.raw.includes(secret), 'the secret signs, it is not sent');
    await waitFor(() => notifications.length >= 1, { message: 'NOTIFY darkspere_alerts' });
    assert.equal(notifications[0].payload, String(alerts[0].alert_id));

    // The agent recovers (answers again; its probes pass): the failure leaves the 10 s window, the alert resolves.
    a.peer.setMode('echo');
    assertAccepted(await stack.sms(phone(3), 'back?'));
    await stack.waitForReplies(phone(3), 1, { timeoutMs: 40000 });
    await waitFor(async () => (await db.value(
        'SELECT state FROM darkspere.alerts WHERE alert_id = $1', [alerts[0].alert_id])) === 'resolved',
    { timeoutMs: 45000, intervalMs: 250, message: 'the alert resolved' });
    await waitFor(() => sink.received.length >= 2, { timeoutMs: 20000, message: 'the resolved notification' });
    assert.equal(JSON.parse(sink.received[1].raw).state, 'resolved');
    assert.ok(verifySignature(sink.received[1].headers['x-darkspere-signature'], sink.received[1].raw, [secret]));

    // It fails again inside the cooldown: the condition holds, but nothing fires and nothing is sent.
    const before = await failures(db);
    a.peer.setMode('error500');
    assertAccepted(await stack.sms(phone(4), 'and now?'));
    await waitFor(async () => (await failures(db)) > before, { timeoutMs: 40000, message: 'another failed call' });
    await sleep(2000);  // eight ticks
    assert.equal(await db.value("SELECT count(*)::int FROM darkspere.alerts WHERE rule = 'error_rate'"), 1,
        'no second alert inside the cooldown');
    assert.deepEqual(sink.received.map((r) => JSON.parse(r.raw).state), ['firing', 'resolved']);

    const jobs = await db.query("SELECT state, payload::text AS payload FROM darkspere.jobs WHERE kind = 'alert_notify'");
    assert.equal(jobs.length, 2);
    assert.ok(jobs.every((j) => j.state === 'done' && !j.payload.includes('dsk_') && !j.payload.includes('/hooks/ops')),
        'the job rows hold neither the secret nor the URL');
}

test('refused webhook signatures reach the database batched and fire the security rule', { timeout: 60000 }, async (t) => {
    const stack = await useStack(t, cluster, { agents: [{ kind: 'http', name: 'agent-a' }] });
    const db = stack.db;
    await db.query("UPDATE darkspere.alert_rules SET enabled = (name = 'failed_signatures')");
    for (let i = 0; i < 3; i++) {
        const params = inboundParams({ accountSid: stack.sid, from: phone(50 + i), to: stack.number, body: 'forged' });
        const res = await signedPost({ target: stack.webhookUrl, params, signature: 'not-a-signature' });
        assert.equal(res.status, 403);
    }
    // One report a second, per source: 3 from 127.0.0.1 (possibly split over two batches).
    await waitFor(async () => (await db.value(
        "SELECT COALESCE(sum(failures), 0)::int FROM darkspere.signature_failures WHERE source = '127.0.0.1'")) === 3,
    { timeoutMs: 10000, message: '3 failures reported for 127.0.0.1' });
    const rows = await db.value('SELECT count(*)::int FROM darkspere.signature_failures');
    assert.ok(rows <= 2, `batched: ${rows} rows for 3 refusals`);
    await waitFor(async () => (await db.value(
        "SELECT count(*)::int FROM darkspere.alerts WHERE rule = 'failed_signatures' AND subject = 'source:127.0.0.1' AND state = 'firing'")) === 1,
    { timeoutMs: 30000, message: 'the failed_signatures alert (rules evaluated every 10 s)' });
});
