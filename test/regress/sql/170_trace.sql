-- 170_trace — every step of one message lands in darkspere.trace_events with its request_id, written by the
-- statements that take the step: received (with the agent and job when routed at once), agent call started
-- (claim) / finished, failover, reply stored, SMS send started / finished, replied, delivery status; dead
-- letters (reported and from expired leases), fallbacks and turns that send nothing; trace(),
-- trace_message(), latency() and its errors; trace_retention in tick(). Times and ids vary: shown normalised.
\set VERBOSITY terse

-- Other test files share this database: finish the work they left, so claims and tick() see only this file's.
SELECT regress.finish_leftover_work() \gset

SELECT darkspere.create_account('trace', 'pro') AS acct \gset
UPDATE darkspere.accounts SET fallback_text = 'Sorry, later' WHERE account_id = :acct;
SELECT darkspere.add_number(:acct, '+15551700001', 'AC170');
SELECT agent_id AS a1 FROM darkspere.register_agent(:acct, 'a1', 'https://agent.example/170a', 'http', 100) \gset
SELECT agent_id AS a2 FROM darkspere.register_agent(:acct, 'a2', 'https://agent.example/170b', 'http', 100) \gset

-- t(request) — the timeline without times and ids: step, the detail keys that do not vary, latency present.
CREATE FUNCTION pg_temp.t(rid text) RETURNS TABLE (step text, detail jsonb, has_latency boolean)
LANGUAGE sql AS $$
    SELECT step, detail - '{job_id,message_id,reply_message_id,agent_id,from_agent,to_agent,latency_ms,delay_s,session_id}'::text[],
           detail ? 'latency_ms'
      FROM darkspere.trace(rid)
$$;

-- One message: received and routed to one agent, which fails; fails over to the other, which answers.
SELECT disposition FROM darkspere.receive_sms('AC170', '+15551700001', '+16661700001', 'hello', 'SM170-in', 0, 'req-170');
SELECT job_id AS j1, attempt AS at1, payload->>'request_id' AS rid, (payload->>'agent_id')::bigint AS first_agent
  FROM darkspere.claim_jobs('w170', 10) \gset
SELECT :'rid' AS request_id_in_payload;
SELECT darkspere.fail_job(:j1, :at1, 'HTTP 500', true);
UPDATE darkspere.jobs SET available_at = now() WHERE job_id = :j1;
SELECT job_id AS j2, attempt AS at2, (payload->>'agent_id')::bigint <> :first_agent AS other_agent
  FROM darkspere.claim_jobs('w170', 10) \gset
SELECT :'other_agent' AS failed_over;
SELECT darkspere.complete_job(:j2, :at2, '{"reply": "hi there", "latency_ms": 42}');
SELECT job_id AS j3, attempt AS at3 FROM darkspere.claim_jobs('w170', 10) \gset
SELECT darkspere.complete_job(:j3, :at3, '{"sid": "SM170-out", "status": "queued", "segments": 1, "latency_ms": 7}');
SELECT darkspere.record_delivery_status('AC170', 'SM170-out', 'sent');
SELECT darkspere.record_delivery_status('AC170', 'SM170-out', 'delivered');
SELECT darkspere.record_delivery_status('AC170', 'SM170-out', 'sent');  -- older: no change, no trace row
SELECT * FROM pg_temp.t('req-170');

-- The same timeline by either MessageSid; ordered by time.
SELECT (SELECT array_agg(step) FROM darkspere.trace_message('SM170-in'))
     = (SELECT array_agg(step) FROM darkspere.trace('req-170')) AS by_inbound_sid,
       (SELECT array_agg(step) FROM darkspere.trace_message('SM170-out'))
     = (SELECT array_agg(step) FROM darkspere.trace('req-170')) AS by_outbound_sid;
SELECT bool_and(at >= prev) AS ordered
  FROM (SELECT at, lag(at, 1, at) OVER () AS prev FROM darkspere.trace('req-170')) s;
-- Nothing secret: no body, no phone number in any detail.
SELECT count(*) AS leaking FROM darkspere.trace_events
 WHERE request_id = 'req-170' AND (detail::text LIKE '%hello%' OR detail::text LIKE '%hi there%'
                                   OR detail::text LIKE '%+1666%');

-- A turn no agent answers: dead-lettered, the fallback stored.
SELECT disposition FROM darkspere.receive_sms('AC170', '+15551700001', '+16661700002', 'again', 'SM170-dead', 0, 'req-170-dead');
SELECT job_id AS j4, attempt AS at4 FROM darkspere.claim_jobs('w170', 10) \gset
SELECT darkspere.fail_job(:j4, :at4, 'agent refused', false);
SELECT * FROM pg_temp.t('req-170-dead');

-- A lease that expires with no attempt left (the worker went away): tick()'s reclaim traces the failed attempt,
-- the dead letter and the fallback, like a failure the worker reported. The failures above opened the first
-- agents' circuits: a fresh agent takes these turns.
SELECT agent_id AS a3 FROM darkspere.register_agent(:acct, 'a3', 'https://agent.example/170c', 'http', 100) \gset
SELECT darkspere.set_agent_status(:a1, 'maintenance'), darkspere.set_agent_status(:a2, 'maintenance');
SELECT disposition FROM darkspere.receive_sms('AC170', '+15551700001', '+16661700003', 'anyone?', 'SM170-lease', 0, 'req-170-lease');
SELECT job_id AS j5 FROM darkspere.claim_jobs('w170', 10) WHERE kind = 'agent_call' \gset
UPDATE darkspere.jobs SET lease_until = now() - interval '1 second', max_attempts = attempt WHERE job_id = :j5;
SELECT (darkspere.tick())->'dead_lettered' AS dead_lettered;
SELECT * FROM pg_temp.t('req-170-lease');

-- A turn the agent answers with "" (send nothing): the timeline says so instead of stopping.
SELECT disposition FROM darkspere.receive_sms('AC170', '+15551700001', '+16661700004', 'ok', 'SM170-quiet', 0, 'req-170-quiet');
SELECT job_id AS j6, attempt AS at6 FROM darkspere.claim_jobs('w170', 10) \gset
SELECT darkspere.complete_job(:j6, :at6, '{"reply": ""}');
SELECT * FROM pg_temp.t('req-170-quiet');

-- Unstored dispositions are traced too (a duplicate under a new request id).
SELECT disposition FROM darkspere.receive_sms('AC170', '+15551700001', '+16661700001', 'hello', 'SM170-in', 0, 'req-170-dup');
SELECT * FROM pg_temp.t('req-170-dup');

-- latency(): the stages, per agent, and the errors. Only this file's rows (earlier files traced theirs too).
DELETE FROM darkspere.trace_events WHERE account_id <> :acct;
SELECT count, p50_ms, p95_ms, p99_ms FROM darkspere.latency('agent_call');
SELECT count, p50_ms FROM darkspere.latency('sms_send', '1 hour');
SELECT count, p50_ms IS NOT NULL AS has_p50 FROM darkspere.latency('inbound_to_reply');
SELECT count FROM darkspere.latency('queue_wait');
SELECT count FROM darkspere.latency('agent_call', '1 hour', :first_agent);  -- it failed: no latency
SELECT count, p50_ms FROM darkspere.latency('agent_call', '1 hour', :a1 + :a2 - :first_agent);
-- Exact over the window: 1..100 ms within the hour, 100 rows of 10000 ms two hours ago (outside).
INSERT INTO darkspere.trace_events (account_id, request_id, at, step, agent_id, latency_ms)
SELECT :acct, 'req-170-p', now() - interval '10 minutes', 'agent_call_finished', -170, g FROM generate_series(1, 100) g
UNION ALL
SELECT :acct, 'req-170-p', now() - interval '2 hours', 'agent_call_finished', -170, 10000 FROM generate_series(1, 100);
SELECT count, p50_ms, p95_ms, p99_ms FROM darkspere.latency('agent_call', '1 hour', -170);
SELECT count, p99_ms FROM darkspere.latency('agent_call', '3 hours', -170);
SELECT regress.try($$SELECT * FROM darkspere.latency('agent_cal')$$);
SELECT regress.try($$SELECT * FROM darkspere.latency(NULL)$$);
SELECT regress.try($$SELECT * FROM darkspere.latency('sms_send', '-1 hour')$$);
SELECT regress.try($$SELECT * FROM darkspere.trace_message('SM-none')$$);
SELECT regress.try($$SELECT * FROM darkspere.trace('')$$);

-- Retention: 7 days by default, superuser-only; tick() deletes older rows in a bounded batch.
SELECT name, setting, unit, context FROM pg_settings WHERE name = 'darkspere.trace_retention';
INSERT INTO darkspere.trace_events (account_id, request_id, at, step)
SELECT :acct, 'req-170-old', now() - interval '8 days' + g * interval '1 second', 'received'
  FROM generate_series(1, 1005) g;
SELECT (darkspere.tick())->'pruned_trace_events' AS pruned;
SELECT (darkspere.tick())->'pruned_trace_events' AS pruned;
SELECT count(*) AS left_old FROM darkspere.trace_events WHERE request_id = 'req-170-old';
SELECT count(*) > 0 AS recent_kept FROM darkspere.trace_events WHERE request_id = 'req-170';
