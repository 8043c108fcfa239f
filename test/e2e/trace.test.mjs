// test/e2e/trace.test.mjs — one message followed through a failover: darkspere.trace() shows every step with the
// worker's request_id, and the worker's log lines for that request_id tell the same story (same agents, jobs,
// outcomes, latencies and Twilio sid) in the same order.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

const DEADLINE_MS = 1500;

test('a failed-over message: trace rows and worker log lines agree', { timeout: 60000 }, async (t) => {
    const stack = await useStack(t, cluster, {
        agents: [{ kind: 'http', name: 'agent-a' }, { kind: 'http', name: 'agent-b', status: 'maintenance' }],
        worker: { agentDeadlineMs: DEADLINE_MS },
    });
    const [a, b] = stack.agents;
    const from = phone(1);

    // A owns the session (B in maintenance); then B is activated and A answers 500: the next turn fails over.
    assertAccepted(await stack.sms(from, 'first'));
    await stack.waitForReplies(from, 1);
    await stack.db.query('SELECT darkspere.set_agent_status($1, $2)', [b.agentId, 'active']);
    a.peer.setMode('error500');
    const res = await stack.sms(from, 'second');
    assertAccepted(res);
    const replies = await stack.waitForReplies(from, 2, { timeoutMs: 30000 });
    assert.equal(replies[1].body, 'agent-b: second [history 2]');

    const sid = res.params.MessageSid;
    const logs = stack.worker.logs;
    const received = await stack.worker.waitForLog((l) => l.msg === 'sms received' && l.message_sid === sid);
    const rid = received.request_id;
    assert.ok(rid, 'the worker logs a request_id for the webhook');
    const outSid = replies[1].sid ?? replies[1].params?.MessageSid;

    // Wait for the reply's send to be acked and its status applied (the stand-in sends callbacks when asked to).
    let rows;
    for (let i = 0; i < 100; i++) {
        rows = await stack.db.query('SELECT at, step, detail FROM darkspere.trace($1)', [rid]);
        if (rows.some((r) => r.step === 'sms_send_finished') && rows.some((r) => r.step === 'replied')) break;
        await new Promise((r) => setTimeout(r, 100));
    }
    const steps = rows.map((r) => r.step);
    // Routed at once: received carries the agent and the job (one row: routed and queued are folded into it).
    const expected = ['received', 'agent_call_started', 'agent_call_finished', 'failover',
        'agent_call_started', 'agent_call_finished', 'reply_stored', 'sms_send_started', 'sms_send_finished',
        'replied'];
    assert.deepEqual(steps.filter((s) => s !== 'delivery_status'), expected, `timeline: ${JSON.stringify(steps)}`);
    for (let i = 1; i < rows.length; i++) assert.ok(rows[i].at >= rows[i - 1].at, 'ordered by time');

    // The same timeline by the inbound MessageSid.
    const byMessage = await stack.db.query('SELECT step FROM darkspere.trace_message($1)', [sid]);
    assert.deepEqual(byMessage.map((r) => r.step), steps);

    const d = (step, n = 0) => rows.filter((r) => r.step === step)[n].detail;
    assert.equal(d('received').disposition, 'routed');
    assert.equal(String(d('received').message_id), String(received.message_id));
    assert.equal(String(d('received').agent_id), String(a.agentId));
    assert.ok(d('received').job_id, 'the queued job is in the received row');
    assert.equal(String(d('failover').from_agent), String(a.agentId));
    assert.equal(String(d('failover').to_agent), String(b.agentId));

    // The worker's log lines for this request_id, in order, against the trace rows.
    const mine = logs.filter((l) => l.request_id === rid);
    const calls = mine.filter((l) => l.msg === 'agent call finished');
    assert.equal(calls.length, 2, `two agent calls logged: ${JSON.stringify(mine.map((l) => l.msg))}`);
    assert.equal(calls[0].ok, false);
    assert.equal(String(calls[0].agent_id), String(a.agentId));
    assert.equal(calls[1].ok, true);
    assert.equal(String(calls[1].agent_id), String(b.agentId));
    const fin0 = d('agent_call_finished', 0), fin1 = d('agent_call_finished', 1);
    assert.equal(fin0.ok, false);
    assert.equal(fin0.error, calls[0].error, 'the failure the worker logged is the one traced');
    assert.equal(String(fin0.job_id), String(calls[0].job_id));
    assert.equal(fin0.attempt, calls[0].attempt);
    assert.equal(fin1.ok, true);
    assert.equal(fin1.latency_ms, calls[1].latency_ms, 'the traced agent latency is the logged one');
    assert.equal(fin1.attempt, calls[1].attempt);
    assert.equal(String(d('agent_call_started', 1).job_id), String(calls[1].job_id));

    const sends = mine.filter((l) => l.msg === 'twilio send finished');
    assert.equal(sends.length, 1, 'one send logged for the reply');
    assert.equal(sends[0].outcome, 'sent');
    const sent = d('sms_send_finished');
    assert.equal(String(sent.job_id), String(sends[0].job_id));
    assert.equal(sent.latency_ms, sends[0].latency_ms, 'the traced send latency is the logged one');
    if (outSid) assert.equal(sent.sid, outSid);
    assert.ok(sent.sid, 'the Twilio sid is traced');
    assert.ok(d('replied').latency_ms >= 0);

    // Logged in the same order as traced: received, failed call, successful call, send.
    const order = mine.filter((l) => ['sms received', 'agent call finished', 'twilio send finished'].includes(l.msg))
        .map((l) => (l.msg === 'agent call finished' ? `call ${l.ok}` : l.msg));
    assert.deepEqual(order, ['sms received', 'call false', 'call true', 'twilio send finished']);

    // Nothing of the texts or phone numbers in the trace.
    const text = JSON.stringify(rows.map((r) => r.detail));
    assert.ok(!text.includes('second') && !text.includes(from.slice(2)), 'no body or phone in trace details');

    const lat = await stack.db.one("SELECT count, p50_ms FROM darkspere.latency('agent_call')");
    assert.ok(Number(lat.count) >= 2);
});
