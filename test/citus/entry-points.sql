-- test/citus/entry-points.sql — the SQL entry points test/citus/run calls on the distributed layout, one per
-- line as `name|statement`. The account, number and agent of :acct / +15552000001 / :agent were made before
-- the tables were distributed. Each runs in its own session; its outcome (ok, or the SQLSTATE and message) is
-- compared with entry-points.expected, so a change either way — a call that starts working or one that breaks —
-- shows up and the list stays the true state of the port. `1 / (…)::int` turns a wrong answer into an error
-- (division by zero), so `ok` means the call ran and answered as it does on one node.
create_account|SELECT darkspere.create_account('citus-two', 'pro')
add_number|SELECT darkspere.add_number(:acct, '+15552000002', 'ACcitus')
register_agent|SELECT agent_id FROM darkspere.register_agent(:acct, 'second', 'https://agent.example/citus2')
set_agent_status|SELECT darkspere.set_agent_status(:agent, 'maintenance')
feature_access|SELECT allowed FROM darkspere.feature_access(:acct, 'mcp_protocol')
usage|SELECT count(*) FROM darkspere.usage(:acct)
receive_sms|SELECT 1 / (disposition = 'routed')::int FROM darkspere.receive_sms('ACcitus', '+15552000001', '+15557200001', 'hi', 'SMcitus1')
receive_sms_stop|SELECT 1 / (disposition = 'opted_out')::int FROM darkspere.receive_sms('ACcitus', '+15552000001', '+15557200002', 'STOP', 'SMcitus2')
record_delivery_status|SELECT darkspere.record_delivery_status('ACcitus', 'SMcitusout', 'delivered')
claim_jobs|SELECT count(*) FROM darkspere.claim_jobs('citus-worker', 10, '1 minute')
tick|SELECT darkspere.tick() IS NOT NULL
rate_limit|SELECT darkspere.rate_limit('ip', '203.0.113.9', 1)
agent_health|SELECT count(*) FROM darkspere.agent_health
dashboard_usage|SELECT count(*) FROM darkspere.dashboard_usage
receive_sms_duplicate|DO $$ BEGIN PERFORM darkspere.receive_sms('ACcitus', '+15552000001', '+15557200004', 'twice', 'SMcitusdup'); IF (SELECT disposition FROM darkspere.receive_sms('ACcitus', '+15552000001', '+15557200004', 'twice', 'SMcitusdup')) <> 'duplicate' THEN RAISE 'not a duplicate'; END IF; END $$
message_path|DO $$ DECLARE j record; BEGIN PERFORM darkspere.receive_sms('ACcitus', '+15552000001', '+15557200003', 'hello', 'SMcitus3'); SELECT * INTO j FROM darkspere.claim_jobs('citus-worker', 10, '1 minute') WHERE kind = 'agent_call'; IF NOT darkspere.complete_job(j.job_id, j.attempt, '{"reply": "hi back", "latency_ms": 5}') THEN RAISE 'agent call not acked'; END IF; SELECT * INTO j FROM darkspere.claim_jobs('citus-worker', 10, '1 minute') WHERE kind = 'sms_send'; IF NOT darkspere.complete_job(j.job_id, j.attempt, '{"sid": "SMcitusout3", "status": "queued", "segments": 1}') THEN RAISE 'send not acked'; END IF; IF (SELECT count(*) FROM darkspere.messages WHERE message_sid = 'SMcitusout3' AND status = 'queued' AND body = 'hi back') <> 1 THEN RAISE 'reply not stored'; END IF; END $$
failover|DO $$ DECLARE j record; second bigint; BEGIN SELECT agent_id INTO second FROM darkspere.register_agent((SELECT account_id FROM darkspere.numbers WHERE number = '+15552000001'), 'second', 'https://agent.example/citus2'); PERFORM darkspere.receive_sms('ACcitus', '+15552000001', '+15557200005', 'hello', 'SMcitus5'); SELECT * INTO j FROM darkspere.claim_jobs('citus-worker', 10, '1 minute') WHERE kind = 'agent_call'; IF NOT darkspere.fail_job(j.job_id, j.attempt, 'agent timed out', true) THEN RAISE 'failure not acked'; END IF; IF (SELECT agent_id FROM darkspere.jobs WHERE job_id = j.job_id AND state = 'pending') IS DISTINCT FROM second THEN RAISE 'not failed over'; END IF; END $$
