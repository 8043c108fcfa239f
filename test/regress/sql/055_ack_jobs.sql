-- 055_ack_jobs — many acks in one call: each exactly as complete_job / fail_job, counters written once, and the
-- SMS sends they create handed to the acking worker already leased (no claim needed).
-- Errors are printed as "SQLSTATE: message" by regress.try (000_setup.sql).
\set VERBOSITY terse

-- Other test files share this database: finish the work they left, so claims see only this file's.
SELECT regress.finish_leftover_work() \gset
\set QUIET off

-- Bad input is refused with the value named, before anything changes.
SELECT regress.try($$SELECT * FROM darkspere.ack_jobs(NULL)$$) AS null_acks;
SELECT regress.try($$SELECT * FROM darkspere.ack_jobs('{"job_id": 1}')$$) AS object_not_array;
SELECT regress.try($$SELECT * FROM darkspere.ack_jobs('7')$$) AS scalar_not_array;
SELECT regress.try($$SELECT * FROM darkspere.ack_jobs('[1, 2]')$$) AS elements_not_objects;
SELECT regress.try($$SELECT * FROM darkspere.ack_jobs('[{"attempt": 1, "complete": true}]')$$) AS missing_job_id;
SELECT regress.try($$SELECT * FROM darkspere.ack_jobs('[{"job_id": 1, "attempt": 1}]')$$) AS missing_complete;
SELECT regress.try($$SELECT * FROM darkspere.ack_jobs('[{"job_id": 1, "attempt": 1, "complete": true, "result": [1]}]')$$) AS result_not_object;
SELECT regress.try($$SELECT * FROM darkspere.ack_jobs('[]', 'w', '30 s', -1)$$) AS negative_handoff;
SELECT regress.try($$SELECT * FROM darkspere.ack_jobs('[]', NULL, '30 s', 5)$$) AS handoff_without_worker;
SELECT regress.try($$SELECT * FROM darkspere.ack_jobs('[]', 'w', NULL, 5)$$) AS handoff_without_lease;
SELECT regress.try($$SELECT * FROM darkspere.ack_jobs('[]', 'w', '2 days', 5)$$) AS lease_too_long;
SELECT count(*) AS empty_batch FROM darkspere.ack_jobs('[]');

-- An account with two agents and four people texting it.
SELECT darkspere.create_account('ack batch', 'pro') AS acct \gset
SELECT darkspere.add_number(:acct, '+15550550001', 'AC055');
SELECT agent_id AS alpha FROM darkspere.register_agent(:acct, 'alpha', 'https://agent.example/alpha', 'http', 100) \gset
SELECT agent_id AS beta FROM darkspere.register_agent(:acct, 'beta', 'https://agent.example/beta', 'http', 100) \gset
SELECT r.disposition
  FROM generate_series(1, 4) n,
       darkspere.receive_sms('AC055', '+15550550001', '+16660550000' || n, 'Question ' || n, 'SM055-' || n) r;
CREATE TEMP TABLE claimed AS
    SELECT c.job_id, c.attempt, c.payload->>'body' AS body, (c.payload->>'agent_id')::bigint AS agent_id
      FROM darkspere.claim_jobs('w-ack', 10, '30 seconds') c;
SELECT body FROM claimed ORDER BY body;

-- One batch: two answers, one stale attempt, a retryable failure; the worker has room for one more job.
CREATE TEMP TABLE acked AS
SELECT a.* FROM darkspere.ack_jobs(
    (SELECT jsonb_agg(x ORDER BY ord) FROM (
        SELECT 1 AS ord, jsonb_build_object('job_id', job_id, 'attempt', attempt, 'complete', true,
                                            'result', jsonb_build_object('reply', 'Answer to ' || body, 'latency_ms', 100)) AS x
          FROM claimed WHERE body IN ('Question 1')
        UNION ALL
        SELECT 2, jsonb_build_object('job_id', job_id, 'attempt', attempt + 1, 'complete', true, 'result', '{"reply": "stale"}'::jsonb)
          FROM claimed WHERE body = 'Question 2'
        UNION ALL
        SELECT 3, jsonb_build_object('job_id', job_id, 'attempt', attempt, 'complete', true,
                                     'result', jsonb_build_object('reply', 'Answer to ' || body, 'latency_ms', 300))
          FROM claimed WHERE body IN ('Question 3')
        UNION ALL
        SELECT 4, jsonb_build_object('job_id', job_id, 'attempt', attempt, 'complete', false, 'error', 'agent timed out', 'retryable', true)
          FROM claimed WHERE body = 'Question 4') acks),
    'w-ack', '30 seconds', 1) a;
-- One row per ack, in order: accepted, or refused by the fence; the handed-off sends follow with ord NULL.
SELECT ord, accepted FROM acked WHERE ord IS NOT NULL ORDER BY ord;
SELECT attempt, kind, payload->>'body' AS body, payload->>'to' AS "to" FROM acked WHERE ord IS NULL ORDER BY payload->>'body';
-- The handed-off sends are leased to the worker like a claim would have: running, attempt 1, a 30 s lease.
SELECT j.state, j.attempt, j.claimed_by, j.lease_until BETWEEN now() + interval '25 s' AND clock_timestamp() + interval '30 s' AS lease_30s
  FROM darkspere.jobs j JOIN acked a ON a.job_id = j.job_id WHERE a.ord IS NULL;
-- so no claim sees them again; the stale ack changed nothing (its job still runs under the real attempt).
SELECT count(*) AS claimable_sends FROM darkspere.jobs WHERE kind = 'sms_send' AND state = 'pending' AND account_id = :acct;
SELECT state FROM darkspere.jobs WHERE job_id = (SELECT job_id FROM claimed WHERE body = 'Question 2');
-- The failed call moved to the other agent, as fail_job does: it saw alpha's and beta's loads as written.
SELECT j.state, j.attempt, j.last_error, (SELECT name FROM darkspere.agents WHERE agent_id = j.agent_id) <>
       (SELECT name FROM darkspere.agents WHERE agent_id = c.agent_id) AS other_agent
  FROM darkspere.jobs j JOIN claimed c ON c.job_id = j.job_id WHERE c.body = 'Question 4';

-- Counters were written once per key, with the same totals as acking one by one: two agent messages, the
-- in-flight load of the finished calls released (the stale one's call still runs, the failed one moved to the
-- other agent), health fed by three results.
SELECT metric, used FROM darkspere.usage(:acct) WHERE metric = 'agent_messages';
SELECT count(*) AS usage_rows FROM darkspere.usage_counters WHERE account_id = :acct AND metric = 'agent_messages';
SELECT sum(l.in_flight) AS in_flight FROM darkspere.agent_load l JOIN darkspere.agents a USING (agent_id) WHERE a.account_id = :acct;
SELECT sum(results_count) AS results, sum(consecutive_failures) AS failures FROM darkspere.agents WHERE account_id = :acct;

-- Sends are acked the same way; a send's ack can hand nothing off (it creates no job).
SELECT count(*) FILTER (WHERE ord IS NOT NULL AND accepted) AS sent, count(*) FILTER (WHERE ord IS NULL) AS handed_off
  FROM darkspere.ack_jobs(
    (SELECT jsonb_agg(jsonb_build_object('job_id', job_id, 'attempt', attempt, 'complete', true,
                                         'result', jsonb_build_object('sid', 'SM055-out-' || job_id, 'status', 'queued')))
       FROM acked WHERE ord IS NULL), 'w-ack', '30 seconds', 10);
SELECT body, status FROM darkspere.messages WHERE account_id = :acct AND direction = 'out' ORDER BY body;
SELECT metric, used FROM darkspere.usage(:acct) WHERE metric = 'sms_out';
-- The reply that found no hand-off room waits for a claim, like any reply acked by complete_job.
SELECT kind, payload->>'body' AS body FROM darkspere.claim_jobs('w-other', 10, '30 seconds') WHERE kind = 'sms_send';

-- A long reply is split; only its first part may go now, the next waits behind it (one send per phone at a time).
-- (2,000 characters are 14 segments: above the default cap of darkspere.max_reply_segments, 052_reply_cap.)
SET darkspere.max_reply_segments = 20;
SELECT disposition FROM darkspere.receive_sms('AC055', '+15550550001', '+16660551000', 'Tell me a long story', 'SM055-long');
SELECT job_id AS long_job, attempt AS long_attempt FROM darkspere.claim_jobs('w-ack', 10, '30 seconds') WHERE kind = 'agent_call' \gset
SELECT count(*) FILTER (WHERE ord IS NULL) AS handed_off
  FROM darkspere.ack_jobs(jsonb_build_array(jsonb_build_object('job_id', :long_job, 'attempt', :long_attempt, 'complete', true,
                                                               'result', jsonb_build_object('reply', repeat('word ', 400)))),
                          'w-ack', '30 seconds', 10);
SELECT j.state, length(m.body) AS chars FROM darkspere.jobs j JOIN darkspere.messages m ON m.message_id = j.message_id
 WHERE m.reply_to = (SELECT message_id FROM darkspere.messages WHERE message_sid = 'SM055-long') ORDER BY j.job_id;
RESET darkspere.max_reply_segments;

-- Without hand-off room (the default) every send waits for a claim, as with complete_job.
SELECT disposition FROM darkspere.receive_sms('AC055', '+15550550001', '+16660552000', 'No room', 'SM055-noroom');
SELECT job_id AS nr_job, attempt AS nr_attempt FROM darkspere.claim_jobs('w-ack', 10, '30 seconds') WHERE kind = 'agent_call' \gset
SELECT ord, accepted FROM darkspere.ack_jobs(jsonb_build_array(jsonb_build_object('job_id', :nr_job, 'attempt', :nr_attempt,
                                                  'complete', true, 'result', '{"reply": "queued"}'::jsonb)));
SELECT state FROM darkspere.jobs WHERE kind = 'sms_send'
   AND message_id = (SELECT message_id FROM darkspere.messages WHERE body = 'queued' AND account_id = :acct);

-- An ack the database refuses fails the whole call and nothing of it stays — and the next ack outside a batch
-- counts its usage at once (the batch's deferred state did not outlive the error).
SELECT disposition FROM darkspere.receive_sms('AC055', '+15550550001', '+16660553000', 'Bad answer', 'SM055-bad');
SELECT job_id AS bad_job, attempt AS bad_attempt FROM darkspere.claim_jobs('w-ack', 10, '30 seconds') WHERE kind = 'agent_call' \gset
SELECT used AS agent_messages_before FROM darkspere.usage(:acct) WHERE metric = 'agent_messages' \gset
SELECT regress.try(format($$SELECT * FROM darkspere.ack_jobs('[{"job_id": %s, "attempt": %s, "complete": true, "result": {"reply": 42}}]', 'w-ack', '30 s', 5)$$,
                          :bad_job, :bad_attempt)) AS number_reply;
SELECT state FROM darkspere.jobs WHERE job_id = :bad_job;
SELECT darkspere.complete_job(:bad_job, :bad_attempt, '{"reply": "fine"}') AS completed_alone;
SELECT used - :agent_messages_before AS counted_at_once FROM darkspere.usage(:acct) WHERE metric = 'agent_messages';

UPDATE darkspere.jobs SET state = 'done', finished_at = now(), lease_until = NULL WHERE state IN ('pending', 'running');
