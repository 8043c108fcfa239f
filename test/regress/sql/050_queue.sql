-- 050_queue — the job queue: claim with a lease, fenced acks, retries on the next agent, backoff, dead letters.
-- Errors are printed as "SQLSTATE: message" by regress.try (000_setup.sql).
\set VERBOSITY terse

-- Other test files share this database: finish the work they left, so claims and tick() see only this file's.
SELECT regress.finish_leftover_work() \gset
\set QUIET off

-- reset_queue() finishes whatever the previous section left queued, so each section claims only its own jobs.
CREATE FUNCTION pg_temp.reset_queue() RETURNS void LANGUAGE sql AS $$
    UPDATE darkspere.jobs SET state = 'done', finished_at = now(), lease_until = NULL WHERE state IN ('pending', 'running');
$$;
-- q(name, agents…) makes a pro account with a fallback text, one number and the named agents; returns its id.
CREATE FUNCTION pg_temp.q(name text, number text, agents text[]) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE id bigint; a text;
BEGIN
    id := darkspere.create_account(name, 'pro');
    UPDATE darkspere.accounts SET fallback_text = 'Sorry, we will get back to you' WHERE account_id = id;
    PERFORM darkspere.add_number(id, number, 'AC050');
    FOREACH a IN ARRAY agents LOOP
        PERFORM darkspere.register_agent(id, a, 'https://agent.example/' || a, 'http', 100);
    END LOOP;
    RETURN id;
END $$;
-- c(worker) claims everything claimable and shows it without ids (job ids depend on earlier tests).
CREATE FUNCTION pg_temp.c(worker text DEFAULT 'w', n int DEFAULT 10)
RETURNS TABLE (attempt int, kind text, agent text, body text, history jsonb)
LANGUAGE sql AS $$
    SELECT c.attempt, c.kind, (SELECT name FROM darkspere.agents WHERE agent_id = (c.payload->>'agent_id')::bigint),
           c.payload->>'body', c.payload->'history'
      FROM darkspere.claim_jobs(worker, n) c ORDER BY c.job_id
$$;
-- j(message_sid) shows the jobs of an inbound message and of its replies.
CREATE FUNCTION pg_temp.j(sid text)
RETURNS TABLE (kind text, state text, attempt int, max_attempts int, agent text, last_error text, body text)
LANGUAGE sql AS $$
    SELECT j.kind, j.state, j.attempt, j.max_attempts, (SELECT name FROM darkspere.agents WHERE agent_id = j.agent_id),
           j.last_error, m.body
      FROM darkspere.jobs j JOIN darkspere.messages m ON m.message_id = j.message_id
     WHERE m.message_sid = sid OR m.reply_to = (SELECT message_id FROM darkspere.messages WHERE message_sid = sid)
     ORDER BY j.job_id
$$;

-- claim_jobs leases a ready job once; the lease makes it invisible to other claimers.
SELECT pg_temp.q('queue basics', '+15550500001', ARRAY['alpha']) AS acct \gset
SELECT disposition FROM darkspere.receive_sms('AC050', '+15550500001', '+16660500001', 'What are your hours?', 'SM050-001');
SELECT job_id AS job, attempt, kind FROM darkspere.claim_jobs('worker-1', 10, '30 seconds') \gset
SELECT :attempt AS attempt, :'kind' AS kind;
SELECT state, claimed_by, lease_until BETWEEN now() + interval '25 s' AND clock_timestamp() + interval '30 s' AS lease_30s
  FROM darkspere.jobs WHERE job_id = :job;
SELECT count(*) AS claimed_again FROM darkspere.claim_jobs('worker-2');
SELECT count(*) AS max_jobs_zero FROM darkspere.claim_jobs('worker-2', 0);

-- The session's next message waits behind the running turn: one agent_call per session at a time.
SELECT disposition FROM darkspere.receive_sms('AC050', '+15550500001', '+16660500001', 'And on Sunday?', 'SM050-002');
SELECT count(*) AS claimable_while_first_runs FROM darkspere.claim_jobs('worker-2');

-- complete_job: fenced by attempt; stores the reply, counts the agent message, queues the SMS.
SELECT darkspere.complete_job(:job, :attempt + 1, '{"reply": "wrong attempt"}') AS future_attempt;
SELECT darkspere.complete_job(-1, 1, '{}') AS unknown_job;
SELECT darkspere.complete_job(:job, :attempt, '{"reply": "We open at 9.", "latency_ms": 120}') AS completed;
SELECT darkspere.complete_job(:job, :attempt, '{"reply": "twice"}') AS completed_twice;
SELECT state, result, finished_at IS NOT NULL AS finished, lease_until FROM darkspere.jobs WHERE job_id = :job;
SELECT direction, body, status, agent_id IS NOT NULL AS by_agent FROM darkspere.messages WHERE account_id = :acct ORDER BY message_id;
SELECT * FROM pg_temp.j('SM050-001');
SELECT metric, used FROM darkspere.usage(:acct) ORDER BY metric;
-- History is built at claim time: the next turn sees the previous reply.
SELECT job_id AS job2, attempt AS attempt2, kind, payload FROM darkspere.claim_jobs('worker-1', 1) \gset
SELECT :'kind' AS kind, :'payload'::jsonb->>'body' AS body, jsonb_pretty(:'payload'::jsonb->'history') AS history;
SELECT darkspere.complete_job(:job2, :attempt2, '{"reply": "Closed on Sunday."}') AS completed;

-- sms_send: the payload has everything to send; complete_job stores the provider's sid and counts segments.
-- one SMS per phone at a time, in order: the second reply waits for the first.
SELECT job_id AS sms_job, attempt AS sms_attempt, kind, payload FROM darkspere.claim_jobs('worker-1') \gset
SELECT :'kind' AS kind;
SELECT (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(:'payload'::jsonb) k) AS keys,
       :'payload'::jsonb->>'from' AS "from", :'payload'::jsonb->>'to' AS "to", :'payload'::jsonb->>'body' AS body,
       :'payload'::jsonb->>'provider_account' AS provider_account;
SELECT darkspere.complete_job(:sms_job, :sms_attempt, '{"sid": "SM050-out-1", "status": "queued", "segments": 1}') AS sent;
SELECT job_id AS sms_job, attempt AS sms_attempt, payload->>'body' AS body FROM darkspere.claim_jobs('worker-1') \gset
SELECT :'body' AS second_sms;
SELECT darkspere.complete_job(:sms_job, :sms_attempt, '{"sid": "SM050-out-2", "status": "sent"}') AS sent;
SELECT body, status, message_sid, segments FROM darkspere.messages WHERE message_sid LIKE 'SM050-out-%' ORDER BY message_sid;
SELECT metric, used FROM darkspere.usage(:acct) WHERE metric = 'sms_out';

-- sms_send failures back off exponentially (2 s, 4 s, … ±20 %) and dead-letter when not retryable.
SELECT disposition FROM darkspere.receive_sms('AC050', '+15550500001', '+16660500002', 'Backoff please', 'SM050-003');
SELECT job_id AS j3, attempt AS a3 FROM darkspere.claim_jobs('worker-1') \gset
SELECT darkspere.complete_job(:j3, :a3, '{"reply": "A reply that will not send"}');
SELECT job_id AS s3, attempt AS sa3 FROM darkspere.claim_jobs('worker-1') \gset
SELECT darkspere.fail_job(:s3, :sa3, 'Twilio 503') AS failed;
SELECT state, attempt, last_error, available_at BETWEEN now() + interval '1.6 s' AND clock_timestamp() + interval '2.4 s' AS backoff_2s
  FROM darkspere.jobs WHERE job_id = :s3;
SELECT count(*) AS claimable_during_backoff FROM darkspere.claim_jobs('worker-1');
UPDATE darkspere.jobs SET available_at = now() WHERE job_id = :s3;
SELECT attempt AS sa3 FROM darkspere.claim_jobs('worker-1') \gset
SELECT darkspere.fail_job(:s3, :sa3, 'Twilio 429') AS failed;
SELECT state, attempt, last_error, available_at BETWEEN now() + interval '3.2 s' AND clock_timestamp() + interval '4.8 s' AS backoff_4s
  FROM darkspere.jobs WHERE job_id = :s3;
UPDATE darkspere.jobs SET available_at = now() WHERE job_id = :s3;
SELECT attempt AS sa3 FROM darkspere.claim_jobs('worker-1') \gset
SELECT darkspere.fail_job(:s3, :sa3, 'Twilio 21211 invalid To', false) AS failed;
SELECT state, attempt, last_error, finished_at IS NOT NULL AS finished FROM darkspere.jobs WHERE job_id = :s3;
SELECT status FROM darkspere.messages WHERE message_id = (SELECT message_id FROM darkspere.jobs WHERE job_id = :s3);
SELECT kind, attempt, last_error FROM darkspere.dead_jobs WHERE job_id = :s3;
SELECT darkspere.fail_job(:s3, :sa3, 'again') AS fail_a_dead_job;

-- Fencing: a worker whose lease expired cannot ack; tick() made the job claimable, and the new attempt owns it.
SELECT disposition FROM darkspere.receive_sms('AC050', '+15550500001', '+16660500003', 'Slow worker', 'SM050-004');
SELECT job_id AS j4, attempt AS stale FROM darkspere.claim_jobs('slow-worker') \gset
UPDATE darkspere.jobs SET lease_until = now() - interval '1 second' WHERE job_id = :j4;
SELECT (darkspere.tick())->'reclaimed_jobs' AS reclaimed;
SELECT state, attempt, claimed_by, last_error FROM darkspere.jobs WHERE job_id = :j4;
SELECT attempt AS fresh FROM darkspere.claim_jobs('fast-worker') \gset
SELECT :stale AS stale_attempt, :fresh AS fresh_attempt;
SELECT darkspere.complete_job(:j4, :stale, '{"reply": "stale"}') AS stale_complete;
SELECT darkspere.fail_job(:j4, :stale, 'stale failure') AS stale_fail;
SELECT state, attempt, claimed_by FROM darkspere.jobs WHERE job_id = :j4;
SELECT darkspere.complete_job(:j4, :fresh, '{"reply": "fresh"}') AS fresh_complete;
SELECT body FROM darkspere.messages WHERE reply_to = (SELECT message_id FROM darkspere.messages WHERE message_sid = 'SM050-004');
-- a lease that expires on the last attempt dead-letters the job.
SELECT disposition FROM darkspere.receive_sms('AC050', '+15550500001', '+16660500004', 'Crashing workers', 'SM050-005');
SET darkspere.agent_call_max_attempts = 1;
SELECT disposition FROM darkspere.receive_sms('AC050', '+15550500001', '+16660500005', 'One attempt only', 'SM050-006');
RESET darkspere.agent_call_max_attempts;
SELECT job_id AS j5 FROM darkspere.jobs WHERE message_id = (SELECT message_id FROM darkspere.messages WHERE message_sid = 'SM050-006') \gset
SELECT count(*) AS claimed FROM darkspere.claim_jobs('crashing-worker');
UPDATE darkspere.jobs SET lease_until = now() - interval '1 second' WHERE state = 'running' AND account_id = :acct;
SELECT (darkspere.tick()) - 'pruned_jobs' - 'pruned_rate_limits' - 'expired_sessions' AS tick;
SELECT * FROM pg_temp.j('SM050-006');
SELECT * FROM pg_temp.j('SM050-005');

SELECT pg_temp.reset_queue();
-- agent_call failures move the turn to the next agent not yet tried; the session follows it.
SELECT pg_temp.q('queue failover', '+15550500002', ARRAY['first', 'second', 'third']) AS fo \gset
SELECT disposition FROM darkspere.receive_sms('AC050', '+15550500002', '+16660500010', 'Anyone there?', 'SM050-010');
SELECT job_id AS fj, attempt AS fa, (SELECT name FROM darkspere.agents WHERE agent_id = (payload->>'agent_id')::bigint) AS agent
  FROM darkspere.claim_jobs('w') \gset
SELECT :fa AS attempt, :'agent' AS agent;
SELECT darkspere.fail_job(:fj, :fa, 'agent timeout') AS failed;
SELECT * FROM pg_temp.j('SM050-010');
SELECT (SELECT name FROM darkspere.agents a WHERE a.agent_id = s.agent_id) AS session_agent
  FROM darkspere.sessions s WHERE s.phone = '+16660500010';
SELECT (SELECT array_agg(name ORDER BY name) FROM darkspere.agents a WHERE a.agent_id = ANY (j.tried_agents)) AS tried,
       available_at <= clock_timestamp() AS immediately
  FROM darkspere.jobs j WHERE job_id = :fj;
SELECT job_id AS fj, attempt AS fa FROM darkspere.claim_jobs('w') \gset
SELECT darkspere.fail_job(:fj, :fa, 'agent 500') AS failed;
SELECT * FROM pg_temp.j('SM050-010');
SELECT job_id AS fj, attempt AS fa FROM darkspere.claim_jobs('w') \gset
-- the third failure is the last attempt: dead letter, the message fails, the fallback text goes out instead.
SELECT darkspere.fail_job(:fj, :fa, 'agent 502') AS failed;
SELECT * FROM pg_temp.j('SM050-010');
SELECT direction, body, status, agent_id IS NOT NULL AS by_agent FROM darkspere.messages WHERE account_id = :fo ORDER BY message_id;
SELECT kind, attempt, last_error FROM darkspere.dead_jobs WHERE job_id = :fj;
SELECT name, consecutive_failures, health_score FROM darkspere.agents WHERE account_id = :fo ORDER BY name;

-- requeue_dead_job gives a dead job fresh attempts on an eligible agent; only dead jobs qualify.
UPDATE darkspere.agents SET results_mask = 0, results_count = 0, consecutive_failures = 0, health_score = 100 WHERE account_id = :fo;
SELECT darkspere.requeue_dead_job(:fj) AS requeued;
SELECT state, attempt, max_attempts, finished_at FROM darkspere.jobs WHERE job_id = :fj;
SELECT status FROM darkspere.messages WHERE message_sid = 'SM050-010';
SELECT darkspere.requeue_dead_job(:fj) AS requeue_a_pending_job;
SELECT darkspere.requeue_dead_job(-1) AS requeue_unknown_job;
SELECT attempt, kind, agent, body FROM pg_temp.c() WHERE kind = 'agent_call';
SELECT regress.try($$SELECT darkspere.requeue_dead_job(NULL)$$) AS null_job;
-- with no eligible agent, an agent_call cannot be requeued.
SELECT job_id AS fj, attempt AS fa FROM darkspere.jobs WHERE job_id = :fj \gset
SELECT darkspere.fail_job(:fj, :fa, 'gave up', false) AS failed_for_good;
UPDATE darkspere.agents SET status = 'maintenance' WHERE account_id = :fo;
SELECT regress.try(format($$SELECT darkspere.requeue_dead_job(%s)$$, :fj)) AS no_agent;
SELECT state FROM darkspere.jobs WHERE job_id = :fj;

SELECT pg_temp.reset_queue();
-- A non-retryable agent failure dead-letters at once (fallback text sent); an empty reply sends nothing;
-- a null reply sends the fallback text.
SELECT pg_temp.q('queue replies', '+15550500003', ARRAY['solo']) AS rp \gset
SELECT disposition FROM darkspere.receive_sms('AC050', '+15550500003', '+16660500020', 'bad request', 'SM050-020');
SELECT job_id AS rj, attempt AS ra FROM darkspere.claim_jobs('w') \gset
SELECT darkspere.fail_job(:rj, :ra, 'agent said 400', false) AS failed;
SELECT * FROM pg_temp.j('SM050-020');
UPDATE darkspere.agents SET results_mask = 0, results_count = 0, consecutive_failures = 0, health_score = 100 WHERE account_id = :rp;
SELECT count(*) FROM darkspere.claim_jobs('w');  -- the fallback SMS
SELECT disposition FROM darkspere.receive_sms('AC050', '+15550500003', '+16660500021', 'say nothing', 'SM050-021');
SELECT job_id AS rj, attempt AS ra FROM darkspere.claim_jobs('w') \gset
SELECT darkspere.complete_job(:rj, :ra, '{"reply": ""}') AS empty_reply;
SELECT * FROM pg_temp.j('SM050-021');
SELECT disposition FROM darkspere.receive_sms('AC050', '+15550500003', '+16660500022', 'say null', 'SM050-022');
SELECT job_id AS rj, attempt AS ra FROM darkspere.claim_jobs('w') \gset
SELECT darkspere.complete_job(:rj, :ra, '{"reply": null}') AS null_reply;
SELECT * FROM pg_temp.j('SM050-022');
SELECT count(*) FROM darkspere.claim_jobs('w');  -- the fallback SMS

SELECT pg_temp.reset_queue();
-- Opted-out recipients get no SMS: a reply stored after STOP is suppressed, and an sms_send queued before STOP
-- is finished unsent at claim time.
SELECT disposition FROM darkspere.receive_sms('AC050', '+15550500003', '+16660500030', 'question', 'SM050-030');
SELECT job_id AS oj, attempt AS oa FROM darkspere.claim_jobs('w') \gset
SELECT darkspere.complete_job(:oj, :oa, '{"reply": "answer queued before STOP"}') AS completed;
SELECT disposition FROM darkspere.receive_sms('AC050', '+15550500003', '+16660500030', 'STOP', 'SM050-031');
SELECT count(*) AS sms_claimed FROM darkspere.claim_jobs('w');
SELECT * FROM pg_temp.j('SM050-030');
SELECT result FROM darkspere.jobs j JOIN darkspere.messages m USING (message_id) WHERE m.body = 'answer queued before STOP';
SELECT status FROM darkspere.messages WHERE body = 'answer queued before STOP';
SELECT disposition FROM darkspere.receive_sms('AC050', '+15550500003', '+16660500031', 'question 2', 'SM050-032');
SELECT job_id AS oj, attempt AS oa FROM darkspere.claim_jobs('w') \gset
SELECT disposition FROM darkspere.receive_sms('AC050', '+15550500003', '+16660500031', 'stop', 'SM050-033');
SELECT darkspere.complete_job(:oj, :oa, '{"reply": "answer after STOP"}') AS completed;
SELECT body, status, (SELECT count(*) FROM darkspere.jobs j WHERE j.message_id = m.message_id) AS jobs
  FROM darkspere.messages m WHERE body = 'answer after STOP';

SELECT pg_temp.reset_queue();
-- busy_agents: a worker whose slots are full of one agent's calls passes over that agent's agent_calls and
-- still claims everything else; the passed-over jobs wait, untouched, for a claim that does not skip them.
SELECT pg_temp.q('queue busy agents', '+15550500009', ARRAY['slow']) AS busy_acct \gset
SELECT agent_id AS slow FROM darkspere.agents WHERE account_id = :busy_acct AND name = 'slow' \gset
SELECT disposition, agent_id = :slow AS to_slow
  FROM darkspere.receive_sms('AC050', '+15550500009', '+16660500090', 'for the slow agent', 'SM050-090');
SELECT darkspere.set_agent_status(:slow, 'maintenance');
SELECT count(*) FROM darkspere.register_agent(:busy_acct, 'fast', 'https://agent.example/fast', 'http', 100);
SELECT disposition FROM darkspere.receive_sms('AC050', '+15550500009', '+16660500091', 'for the fast agent', 'SM050-091');
SELECT darkspere.set_agent_status(:slow, 'active');
SELECT c.kind, (SELECT name FROM darkspere.agents WHERE agent_id = (c.payload->>'agent_id')::bigint) AS agent,
       c.payload->>'body' AS body
  FROM darkspere.claim_jobs('w', 10, '1 minute', ARRAY[:slow]::bigint[]) c;
SELECT state FROM darkspere.jobs j JOIN darkspere.messages m USING (message_id) WHERE m.message_sid = 'SM050-090';
SELECT c.kind, c.payload->>'body' AS body FROM darkspere.claim_jobs('w', 10, '1 minute', '{}') c;
SELECT regress.try($$SELECT darkspere.claim_jobs('w', 1, '1 minute', ARRAY[1, NULL]::bigint[])$$) AS busy_agents_with_null;
SELECT count(*) AS busy_agents_null_means_none FROM darkspere.claim_jobs('w', 1, '1 minute', NULL);

-- Bad input.
SELECT regress.try($$SELECT darkspere.claim_jobs(NULL)$$) AS null_worker;
SELECT regress.try($$SELECT darkspere.claim_jobs('')$$) AS empty_worker;
SELECT regress.try($$SELECT darkspere.claim_jobs('w', NULL)$$) AS null_max_jobs;
SELECT regress.try($$SELECT darkspere.claim_jobs('w', -1)$$) AS negative_max_jobs;
SELECT regress.try($$SELECT darkspere.claim_jobs('w', 10001)$$) AS too_many_jobs;
SELECT regress.try($$SELECT darkspere.claim_jobs('w', 1, NULL)$$) AS null_lease;
SELECT regress.try($$SELECT darkspere.claim_jobs('w', 1, '0 seconds')$$) AS zero_lease;
SELECT regress.try($$SELECT darkspere.claim_jobs('w', 1, '-1 minute')$$) AS negative_lease;
SELECT regress.try($$SELECT darkspere.claim_jobs('w', 1, '25 hours')$$) AS lease_over_a_day;
SELECT regress.try($$SELECT darkspere.claim_jobs('w', 1, '1 day')$$) AS lease_in_days;
SELECT regress.try($$SELECT darkspere.complete_job(NULL, 1)$$) AS complete_null_job;
SELECT regress.try($$SELECT darkspere.complete_job(1, NULL)$$) AS complete_null_attempt;
SELECT regress.try($$SELECT darkspere.complete_job(1, 1, '[]')$$) AS complete_array_result;
SELECT regress.try($$SELECT darkspere.complete_job(1, 1, '"done"')$$) AS complete_scalar_result;
SELECT regress.try($$SELECT darkspere.fail_job(NULL, 1, 'x')$$) AS fail_null_job;
SELECT regress.try($$SELECT darkspere.fail_job(1, NULL, 'x')$$) AS fail_null_attempt;
-- a reply that is not text is refused and leaves the job running for a correct ack.
SELECT disposition FROM darkspere.receive_sms('AC050', '+15550500003', '+16660500040', 'numbers', 'SM050-040');
SELECT job_id AS bj, attempt AS ba FROM darkspere.claim_jobs('w') \gset
SELECT regress.try(format($$SELECT darkspere.complete_job(%s, %s, '{"reply": 42}')$$, :bj, :ba)) AS reply_number;
SELECT regress.try(format($$SELECT darkspere.complete_job(%s, %s, '{"reply": ["a"]}')$$, :bj, :ba)) AS reply_array;
SELECT state FROM darkspere.jobs WHERE job_id = :bj;
SELECT darkspere.complete_job(:bj, :ba, NULL) AS null_result_means_no_reply;
SELECT pg_temp.reset_queue();
-- a NULL error text is recorded as "unspecified error".
SELECT disposition FROM darkspere.receive_sms('AC050', '+15550500003', '+16660500041', 'no reason', 'SM050-041');
SELECT job_id AS bj, attempt AS ba FROM darkspere.claim_jobs('w') \gset
SELECT darkspere.fail_job(:bj, :ba, NULL, NULL) AS failed;
SELECT state, last_error FROM darkspere.jobs WHERE job_id = :bj;
-- A lookup by job id with a running or dead state (every ack's fence; the retry of a dead job) can use only the
-- primary key: no partial index of jobs is implied by it, so no cached plan can scan a whole partial index per
-- ack. With the primary key gone (inside a rolled-back transaction) such a lookup has nothing but a seq scan.
BEGIN;
ALTER TABLE darkspere.jobs DROP CONSTRAINT jobs_pkey;
SET LOCAL enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT 1 FROM darkspere.jobs WHERE job_id = 1 AND attempt = 1 AND state = 'running';
EXPLAIN (COSTS OFF) SELECT 1 FROM darkspere.jobs WHERE job_id = 1 AND state = 'dead';
ROLLBACK;
