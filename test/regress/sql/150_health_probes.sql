-- 150_health_probes — tick() schedules health_probe jobs (never-probed agents first, at most 500 a tick, none
-- while one is in flight, none for an agent whose heartbeat is newer than the interval); the claim hands the
-- worker the agent's endpoint, probe path and signing secrets; each completed probe lands in agent_checks and
-- the health score; auto_disable_after failures in a row make an active agent 'unhealthy' (the router skips
-- it), auto_recover_after passes make it 'active'; a person's 'maintenance' / 'disabled' is never changed by a
-- probe; every status change is an agent_events row; agent_health and GET /api/agents/{id}/health show the
-- checks; tick() prunes old checks.
\set VERBOSITY terse

SELECT regress.finish_leftover_work() \gset

-- 000_setup turned probes off for this database: tick() schedules nothing.
SHOW darkspere.probe_interval;
SELECT darkspere.tick() ? 'probes_scheduled' AS scheduled_when_off;
-- Defaults (the library is loaded now, so its settings are listed); this file turns probes on for its session.
SELECT name, boot_val, unit, context FROM pg_settings
 WHERE name IN ('darkspere.probe_interval', 'darkspere.auto_disable_after', 'darkspere.auto_recover_after',
                'darkspere.agent_check_retention') ORDER BY name;
SET darkspere.probe_interval = 30;

SELECT darkspere.create_account('probes', 'pro') AS acct \gset
SELECT darkspere.add_number(:acct, '+15551500001', 'AC150');
SELECT agent_id AS a1 FROM darkspere.register_agent(:acct, 'flaky', 'https://agent.example/150/a?x=1', 'http', 10) \gset
SELECT agent_id AS a2 FROM darkspere.register_agent(:acct, 'steady', 'https://agent.example/150/b', 'mcp', 10) \gset
SELECT probe_path, next_probe_at IS NULL AS never_scheduled FROM darkspere.agents WHERE agent_id = :a1;

-- regress.probe_round(agent, ok, error): one probe of `agent` as the worker would run it: tick() schedules it
-- (its next probe time is reset first, so the round does not wait 30 s), the job is made available now (tick
-- spreads jobs over a fifth of the interval), claimed and completed with {ok, latency_ms, error}. Probes of
-- other files' agents are finished unseen. Returns the agent's status afterwards.
CREATE FUNCTION regress.probe_round(agent bigint, ok boolean, err text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    j record;
    st text;
BEGIN
    UPDATE darkspere.agents SET next_probe_at = NULL WHERE agent_id = agent;
    PERFORM darkspere.tick();
    UPDATE darkspere.jobs SET available_at = now() WHERE kind = 'health_probe' AND state = 'pending';
    FOR j IN SELECT * FROM darkspere.claim_jobs('w150', 1000, '1 minute') LOOP
        IF j.kind = 'health_probe' AND (j.payload ->> 'agent_id')::bigint = agent THEN
            PERFORM darkspere.complete_job(j.job_id, j.attempt,
                jsonb_build_object('ok', ok, 'latency_ms', 40, 'error', err));
        ELSE
            PERFORM darkspere.complete_job(j.job_id, j.attempt, '{"ok": true, "latency_ms": 1}');
        END IF;
    END LOOP;
    SELECT status INTO st FROM darkspere.agents WHERE agent_id = agent;
    RETURN st;
END $$;

-- The first tick schedules a probe of each never-probed agent: one job each, due within a fifth of the interval,
-- and the next probe about an interval away; a second tick schedules nothing more (one probe in flight).
SELECT (darkspere.tick() ->> 'probes_scheduled')::int >= 2 AS scheduled;
SELECT j.agent_id = :a1 AS is_a1, j.max_attempts, j.priority, j.ordering_key = 'probe:' || j.agent_id AS keyed,
       j.available_at <= now() + interval '6 seconds' AS spread_within_a_fifth
  FROM darkspere.jobs j WHERE j.kind = 'health_probe' AND j.agent_id IN (:a1, :a2) ORDER BY j.agent_id;
SELECT next_probe_at BETWEEN now() + interval '26 seconds' AND now() + interval '34 seconds' AS next_in_interval
  FROM darkspere.agents WHERE agent_id = :a1;
UPDATE darkspere.agents SET next_probe_at = NULL WHERE agent_id IN (:a1, :a2);
SELECT darkspere.tick() ->> 'probes_scheduled' AS scheduled_while_in_flight;
SELECT count(*) AS jobs_for_a1 FROM darkspere.jobs WHERE kind = 'health_probe' AND agent_id = :a1;

-- The claim builds the payload: endpoint, protocol, probe path, deadline and the signing secret (never stored).
UPDATE darkspere.jobs SET available_at = now() WHERE kind = 'health_probe' AND state = 'pending';
CREATE TEMP TABLE claimed AS SELECT * FROM darkspere.claim_jobs('w150', 1000, '1 minute');
SELECT c.kind, c.payload - 'signing_secrets' - 'request_id' - 'agent_id' - 'account_id' AS payload,
       jsonb_array_length(c.payload -> 'signing_secrets') AS secrets,
       (SELECT j.payload FROM darkspere.jobs j WHERE j.job_id = c.job_id) AS stored_payload
  FROM claimed c WHERE (c.payload ->> 'agent_id')::bigint = :a1;
SELECT count(*) FILTER (WHERE darkspere.complete_job(job_id, attempt,
           CASE WHEN (payload ->> 'agent_id')::bigint = :a1
                THEN '{"ok": false, "latency_ms": 5000, "error": "timeout"}' ELSE '{"ok": true, "latency_ms": 12}' END::jsonb))
       > 0 AS completed
  FROM claimed;
SELECT status, probe_failures, probe_passes, last_probe_at IS NOT NULL AS probed FROM darkspere.agents
 WHERE agent_id = :a1;

-- Two more failures: the third in a row makes it unhealthy; one event, by the probes.
SELECT regress.probe_round(:a1, false, 'probe http 503') AS after_2;
SELECT regress.probe_round(:a1, false, 'probe http 503') AS after_3;
SELECT actor, from_status, to_status, reason FROM darkspere.agent_events WHERE agent_id = :a1 ORDER BY event_id;

-- The router skips an unhealthy agent: a new conversation goes to the other one.
SELECT disposition FROM darkspere.receive_sms('AC150', '+15551500001', '+16661500001', 'hello', 'SM150a');
SELECT s.agent_id = :a2 AS routed_to_steady FROM darkspere.sessions s WHERE s.phone = '+16661500001';

-- An unhealthy agent keeps being probed, even with a fresh heartbeat; passing probes count up to recovery.
UPDATE darkspere.agents SET last_heartbeat_at = now() WHERE agent_id = :a1;
SELECT regress.probe_round(:a1, true) AS pass_1, regress.probe_round(:a1, false, 'flap') AS fail_again,
       regress.probe_round(:a1, true) AS pass_1b, regress.probe_round(:a1, true) AS pass_2;
SELECT regress.probe_round(:a1, true) AS pass_3;
SELECT actor, from_status, to_status, reason FROM darkspere.agent_events WHERE agent_id = :a1 ORDER BY event_id;

-- An active agent whose heartbeat is newer than the interval is not probed this round (its next time moves on).
UPDATE darkspere.agents SET next_probe_at = NULL, last_heartbeat_at = now() WHERE agent_id = :a1;
SELECT darkspere.tick() IS NOT NULL AS ticked;
SELECT count(*) AS pending_for_a1 FROM darkspere.jobs WHERE kind = 'health_probe' AND agent_id = :a1 AND state = 'pending';
SELECT next_probe_at > now() AS moved_on FROM darkspere.agents WHERE agent_id = :a1;
UPDATE darkspere.agents SET last_heartbeat_at = now() - interval '1 hour' WHERE agent_id = :a1;

-- A person's status is never changed by probes: maintenance stays through failures and passes; the person's
-- change is an event too, and starts the runs afresh.
SELECT darkspere.set_agent_status(:a1, 'maintenance');
SELECT darkspere.tick() IS NOT NULL AS ticked;
SELECT count(*) AS probes_scheduled_in_maintenance FROM darkspere.jobs
 WHERE kind = 'health_probe' AND agent_id = :a1 AND state = 'pending';
-- A probe queued before the change finds the agent in maintenance: the claim finishes it without running it.
INSERT INTO darkspere.jobs (account_id, kind, max_attempts, idempotency_key, agent_id)
VALUES (:acct, 'health_probe', 1, 'probe150-stale', :a1);
SELECT count(*) AS handed_out FROM darkspere.claim_jobs('w150', 1000, '1 minute') WHERE kind = 'health_probe'
   AND (payload ->> 'agent_id')::bigint = :a1;
SELECT state, result FROM darkspere.jobs WHERE idempotency_key = 'probe150-stale';
-- A result that arrives anyway (claimed before the change) is recorded but changes no status.
INSERT INTO darkspere.jobs (account_id, kind, max_attempts, idempotency_key, agent_id, state, attempt, lease_until)
VALUES (:acct, 'health_probe', 1, 'probe150-late', :a1, 'running', 1, now() + interval '1 minute');
SELECT darkspere.complete_job(job_id, 1, '{"ok": false, "error": "late"}') FROM darkspere.jobs
 WHERE idempotency_key = 'probe150-late';
SELECT darkspere.complete_job(job_id, 1, '{"ok": false, "error": "late"}') FROM darkspere.jobs
 WHERE idempotency_key = 'probe150-late';
SELECT status, probe_failures FROM darkspere.agents WHERE agent_id = :a1;
SELECT darkspere.set_agent_status(:a1, 'maintenance');  -- no change: no event
SELECT darkspere.set_agent_status(:a1, 'active');
SELECT status, probe_failures, probe_passes FROM darkspere.agents WHERE agent_id = :a1;
SELECT regexp_replace(actor, ':.*', ':<login>') AS actor, from_status, to_status, reason
  FROM darkspere.agent_events WHERE agent_id = :a1 ORDER BY event_id;
SELECT regress.try($$SELECT darkspere.set_agent_status(1, 'unhealthy')$$) AS person_cannot_set_unhealthy;

-- A probe the worker failed (it could not run it) counts as a failed probe and is not dead-lettered.
INSERT INTO darkspere.jobs (account_id, kind, max_attempts, idempotency_key, agent_id, state, attempt, lease_until)
VALUES (:acct, 'health_probe', 1, 'probe150-failed', :a1, 'running', 1, now() + interval '1 minute');
SELECT darkspere.fail_job(job_id, 1, 'unknown job kind: health_probe', false) FROM darkspere.jobs
 WHERE idempotency_key = 'probe150-failed';
SELECT state, last_error FROM darkspere.jobs WHERE idempotency_key = 'probe150-failed';
SELECT ok, error FROM darkspere.agent_checks WHERE agent_id = :a1 ORDER BY check_id DESC LIMIT 1;

-- A probe whose worker went away (lease expired) is done, not dead-lettered, and records no check.
INSERT INTO darkspere.jobs (account_id, kind, max_attempts, idempotency_key, agent_id, state, attempt, lease_until,
                            claimed_by)
VALUES (:acct, 'health_probe', 1, 'probe150-lost', :a1, 'running', 1, now() - interval '1 second', 'w-gone');
SELECT darkspere.tick() ->> 'dead_lettered' AS dead_lettered;
SELECT state, last_error, finished_at IS NOT NULL AS finished FROM darkspere.jobs WHERE idempotency_key = 'probe150-lost';

-- agent_checks: keyed by account first; every result, newest last.
SELECT count(*) AS checks, count(*) FILTER (WHERE NOT ok) AS failed FROM darkspere.agent_checks WHERE agent_id = :a1;
SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
 WHERE i.indrelid = 'darkspere.agent_checks'::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum);

-- agent_health: uptime over 24 h, probe percentiles, failures in the last 10, last check.
SELECT status, uptime_24h, probe_p50_ms, probe_p95_ms, probe_p99_ms, failures_last_10, last_check_at IS NOT NULL AS has_last,
       last_check_ok FROM darkspere.agent_health WHERE agent_id = :a1;

-- The API: probe_path is validated and settable; GET /api/agents/{id}/health shows the last 10 checks.
SELECT api_key AS key FROM darkspere.create_account_key(:acct, 'probes') \gset
SELECT http_status, response -> 'error' ->> 'field' AS field, response -> 'error' ->> 'message' AS message
  FROM darkspere.api_call('agents.update', :'key', '10.0.0.150', :a1, '{"probe_path": "health"}');
SELECT http_status, response -> 'error' ->> 'field' AS field
  FROM darkspere.api_call('agents.update', :'key', '10.0.0.150', :a1, '{"probe_path": "/a b"}');
SELECT http_status, response ->> 'probe_path' AS probe_path
  FROM darkspere.api_call('agents.update', :'key', '10.0.0.150', :a1, '{"probe_path": "/healthz?deep=1"}');
SELECT http_status, response ->> 'probe_path' AS probe_path
  FROM darkspere.api_call('agents.create', :'key', '10.0.0.150', NULL,
                          '{"name": "third", "endpoint": "https://agent.example/150/c", "probe_path": "/up"}');
SELECT http_status, jsonb_array_length(response -> 'last_checks') AS last_checks,
       response -> 'last_checks' -> 0 ->> 'ok' AS newest_ok, response -> 'last_checks' -> 0 ->> 'error' AS newest_error,
       response -> 'probes' -> '24h' ->> 'checks' AS checks_24h, response -> 'probes' -> '1h' ->> 'p50_ms' AS p50_1h
  FROM darkspere.api_call('agents.health', :'key', '10.0.0.150', :a1);

-- Retention: checks older than agent_check_retention go, one bounded batch per tick.
UPDATE darkspere.agent_checks SET checked_at = now() - interval '8 days'
 WHERE check_id IN (SELECT check_id FROM darkspere.agent_checks WHERE agent_id = :a1 ORDER BY check_id LIMIT 3);
SET darkspere.probe_interval = 0;
SELECT darkspere.tick() ->> 'pruned_agent_checks' AS pruned;
SELECT count(*) AS old_left FROM darkspere.agent_checks WHERE checked_at < now() - interval '7 days';

SELECT regress.finish_leftover_work() \gset
DROP FUNCTION regress.probe_round(bigint, boolean, text);
