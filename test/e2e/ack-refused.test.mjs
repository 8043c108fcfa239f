// test/e2e/ack-refused.test.mjs — an ack the database refuses for good (an SQL error that is not transient) is not
// retried until the lease expires and the job runs again (issue #10 item 16): after a few refusals the worker
// fails the job as non-retryable with the error, so the agent is called once and nothing is sent twice.
//
// The refusal is a test-only trigger (installed as superuser) that refuses only the *completion* of one turn's
// agent_call; the failure that replaces it passes, so the job reaches its final state (dead) on the first
// attempt. The lease is long, so no lease expiry can re-run the job while the worker retries, and the test reads
// the job's final state from the database before it counts the agent's calls.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { waitFor } from './lib/net.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

const POISON = 'refuse my ack';

const REFUSE_COMPLETION = `
CREATE FUNCTION public.refuse_completion() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.state = 'done' AND OLD.state = 'running' AND NEW.kind = 'agent_call'
       AND EXISTS (SELECT 1 FROM darkspere.messages m WHERE m.message_id = NEW.message_id AND m.body = '${POISON}') THEN
        RAISE EXCEPTION 'test trigger: this completion is refused';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_completion BEFORE UPDATE ON darkspere.jobs
    FOR EACH ROW EXECUTE FUNCTION public.refuse_completion();`;

describe('an ack refused by the database', () => {
    test('is replaced by a non-retryable failure: one agent call, no second send, the worker goes on', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, { worker: { leaseSeconds: 120 } });
        const [agent] = stack.agents;
        await stack.db.query(REFUSE_COMPLETION);

        const poisoned = phone(500);
        // Other turns around it share its ack batches: the batch falls back to one ack per statement, and only
        // the poisoned one is refused.
        const others = [phone(501), phone(502)];
        (await Promise.all([
            stack.sms(poisoned, POISON),
            ...others.map((p) => stack.sms(p, `fine from ${p}`)),
        ])).forEach(assertAccepted);

        const job = await waitFor(async () => {
            const row = await stack.db.one(
                `SELECT j.state, j.attempt, j.last_error FROM darkspere.jobs j JOIN darkspere.messages m USING (message_id)
                  WHERE j.kind = 'agent_call' AND m.body = $1`, [POISON]);
            return row?.state === 'dead' ? row : null;
        }, { timeoutMs: 30000, message: 'the refused turn reaches its final state' });
        assert.equal(job.attempt, 1, 'the job was never run again');
        assert.match(job.last_error, /refused the job's ack.*test trigger: this completion is refused/);
        assert.equal(agent.peer.requests.filter((r) => r.message === POISON).length, 1, 'the agent was called once');
        const status = await stack.db.value(
            "SELECT status FROM darkspere.messages WHERE direction = 'in' AND body = $1", [POISON]);
        assert.equal(status, 'failed');

        for (const p of others) {
            const [reply] = await stack.waitForReplies(p, 1);
            assert.equal(reply.body, `agent-a: fine from ${p} [history 0]`);
        }
        // The worker goes on: a later turn is answered, and still nothing is sent to the poisoned phone.
        const later = phone(503);
        assertAccepted(await stack.sms(later, 'still there?'));
        await stack.waitForReplies(later, 1);
        assert.equal(stack.repliesTo(poisoned).length, 0, 'no reply to the refused turn');
        assert.equal(agent.peer.requests.filter((r) => r.message === POISON).length, 1, 'and no second call');
    });
});
