-- 056_receive_sms_leased — receive_sms for a worker with room: the routed message's agent_call comes back already
-- leased to that worker, so it calls the agent without a claim; everything else is receive_sms exactly.
\set VERBOSITY terse

-- Other test files share this database: finish the work they left, so claims see only this file's.
SELECT regress.finish_leftover_work() \gset
\set QUIET off

SELECT darkspere.create_account('leased receive', 'pro') AS acct \gset
SELECT darkspere.add_number(:acct, '+15550560001', 'AC056');
SELECT agent_id AS bot FROM darkspere.register_agent(:acct, 'bot', 'https://agent.example/bot', 'http', 100) \gset

-- The worker and lease must be given and valid; busy_agents may not hold NULL. Nothing is stored.
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_leased('AC056', '+15550560001', '+16660560001', 'hi', 'SM056-x', 0, NULL, NULL, '30 s')$$) AS no_worker;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_leased('AC056', '+15550560001', '+16660560001', 'hi', 'SM056-x', 0, NULL, '', '30 s')$$) AS empty_worker;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_leased('AC056', '+15550560001', '+16660560001', 'hi', 'SM056-x', 0, NULL, 'w', NULL)$$) AS no_lease;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_leased('AC056', '+15550560001', '+16660560001', 'hi', 'SM056-x', 0, NULL, 'w', '0 s')$$) AS zero_lease;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_leased('AC056', '+15550560001', '+16660560001', 'hi', 'SM056-x', 0, NULL, 'w', '30 s', '{1,NULL}')$$) AS null_busy_agent;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_leased('AC056', '15550560001', '+16660560001', 'hi', 'SM056-x', 0, NULL, 'w', '30 s')$$) AS bad_number;
SELECT count(*) AS stored FROM darkspere.messages WHERE message_sid = 'SM056-x';

-- A routed message: the disposition as receive_sms gives it, plus the call leased to the worker (attempt 1) with
-- the payload a claim would have built.
SELECT disposition, agent_id = :bot AS bot, reply, attempt, payload->>'body' AS body, payload->>'endpoint' AS endpoint,
       payload->>'request_id' AS request_id, payload->'history' AS history
  FROM darkspere.receive_sms_leased('AC056', '+15550560001', '+16660560001', 'What time is it?', 'SM056-1', 0, 'req-056-1',
                                    'w-leased', '30 seconds');
SELECT state, attempt, claimed_by, lease_until BETWEEN now() + interval '25 s' AND clock_timestamp() + interval '30 s' AS lease_30s
  FROM darkspere.jobs WHERE message_id = (SELECT message_id FROM darkspere.messages WHERE message_sid = 'SM056-1');
SELECT count(*) AS claimable FROM darkspere.claim_jobs('w-other', 10, '30 seconds');
SELECT sum(in_flight) AS in_flight FROM darkspere.agent_load WHERE agent_id = :bot;

-- The session's next turn while the first still runs: routed, but its call waits (one per session at a time).
SELECT disposition, job_id IS NULL AS not_handed_off
  FROM darkspere.receive_sms_leased('AC056', '+15550560001', '+16660560001', 'And the date?', 'SM056-2', 0, NULL,
                                    'w-leased', '30 seconds');
SELECT darkspere.complete_job(job_id, attempt, '{"reply": "Noon."}') AS first_done
  FROM darkspere.jobs WHERE message_id = (SELECT message_id FROM darkspere.messages WHERE message_sid = 'SM056-1');
SELECT kind, payload->>'body' AS body, payload->'history' AS history
  FROM darkspere.claim_jobs('w-other', 10, '30 seconds') WHERE kind = 'agent_call';

-- An agent at the worker's share is left to a later claim; Twilio's retry of a stored message hands nothing off.
SELECT disposition, job_id IS NULL AS not_handed_off
  FROM darkspere.receive_sms_leased('AC056', '+15550560001', '+16660560002', 'Busy agent', 'SM056-3', 0, NULL,
                                    'w-leased', '30 seconds', ARRAY[:bot]::bigint[]);
SELECT state FROM darkspere.jobs WHERE message_id = (SELECT message_id FROM darkspere.messages WHERE message_sid = 'SM056-3');
SELECT disposition, job_id IS NULL AS not_handed_off
  FROM darkspere.receive_sms_leased('AC056', '+15550560001', '+16660560002', 'Busy agent', 'SM056-3', 0, NULL,
                                    'w-leased', '30 seconds');
-- Keywords and opted-out phones create no call at all.
SELECT disposition, reply IS NOT NULL AS has_reply, job_id IS NULL AS no_job
  FROM darkspere.receive_sms_leased('AC056', '+15550560001', '+16660560003', 'STOP', 'SM056-4', 0, NULL, 'w-leased', '30 seconds');
SELECT disposition, job_id IS NULL AS no_job
  FROM darkspere.receive_sms_leased('AC056', '+15550560001', '+16660560003', 'hello?', 'SM056-5', 0, NULL, 'w-leased', '30 seconds');

UPDATE darkspere.jobs SET state = 'done', finished_at = now(), lease_until = NULL WHERE state IN ('pending', 'running');
