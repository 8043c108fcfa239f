// test/e2e/agent-tags.test.mjs — routing by agent tag through a real worker: the service number requires the tag
// "sales"; of two agents only B carries it. Every turn goes to B although A (untagged) has room; when B fails, the
// turn is retried on B only (failover stays within the tag) and, out of attempts, dead-lettered with the fallback
// text — A never sees a request. With the tag cleared, the next message goes to A.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { sleep } from './lib/net.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

test('a number that requires a tag is answered only by the tagged agent, and its failover stays there', { timeout: 120000 }, async (t) => {
    const stack = await useStack(t, cluster, {
        agents: [{ kind: 'http', name: 'agent-a' }, { kind: 'http', name: 'agent-b' }],
        fallbackText: 'Sorry, try again later',
        withWorker: false,
    });
    const [a, b] = stack.agents;
    await stack.db.query("UPDATE darkspere.agents SET tags = '{sales}' WHERE agent_id = $1", [b.agentId]);
    // A is the router's favourite whenever it may be chosen: a better score than B.
    await stack.db.query('UPDATE darkspere.agents SET health_score = CASE agent_id WHEN $1 THEN 100 ELSE 90 END WHERE account_id = $2',
        [a.agentId, stack.accountId]);
    await stack.db.query('SELECT darkspere.set_number_agent_tag($1, $2)', [stack.number, 'sales']);
    await stack.startWorker();

    const from = phone(1);
    assertAccepted(await stack.sms(from, 'first'));
    const [first] = await stack.waitForReplies(from, 1);
    assert.equal(first.body, 'agent-b: first [history 0]');

    // B fails every turn: the retries stay on B (the only tagged agent), then the turn is dead-lettered and the
    // account's fallback text goes out. A, free and healthy, is never asked.
    b.peer.setMode('error500');
    assertAccepted(await stack.sms(from, 'second'));
    const replies = await stack.waitForReplies(from, 2, { timeoutMs: 60000 });
    assert.equal(replies[1].body, 'Sorry, try again later');
    const job = await stack.db.one(
        "SELECT j.state, j.tried_agents, j.agent_id FROM darkspere.jobs j JOIN darkspere.messages m ON m.message_id = j.message_id"
        + " WHERE j.kind = 'agent_call' AND m.body = 'second'");
    assert.equal(job.state, 'dead');
    assert.ok(job.tried_agents.every((id) => String(id) === String(b.agentId)), JSON.stringify(job));
    assert.equal(a.peer.requests.length, 0, 'the untagged agent got no turn');
    assert.ok(b.peer.requests.length >= 2, `B was retried: ${b.peer.requests.length} requests`);

    // With the tag cleared the number takes any agent, and the favourite answers.
    b.peer.setMode('echo');
    await stack.db.query('SELECT darkspere.set_number_agent_tag($1, NULL)', [stack.number]);
    const other = phone(2);
    assertAccepted(await stack.sms(other, 'third'));
    const [third] = await stack.waitForReplies(other, 1, { timeoutMs: 30000 });
    assert.equal(third.body, 'agent-a: third [history 0]');
    await sleep(0);
});
