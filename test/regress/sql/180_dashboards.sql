-- 180_dashboards — the dashboard views (dashboard_health, _traffic, _latency, _usage, _security) and
-- status_snapshot() over a seeded account: each shows the account's rows, a darkspere_monitor login reads them
-- without any table right, a darkspere_worker login runs status_snapshot() and reads nothing else, no view shows
-- an endpoint, key, body or phone, and each view's scans go through the indexes its comment names.
\set VERBOSITY terse

SELECT regress.finish_leftover_work() \gset

SELECT darkspere.create_account('dashboards', 'pro') AS acct \gset
SELECT darkspere.add_number(:acct, '+15551800001', 'AC180');
SELECT agent_id AS a1 FROM darkspere.register_agent(:acct, '<script>alert(1)</script>', 'https://agent.example/180/a', 'http', 4) \gset
SELECT agent_id AS a2 FROM darkspere.register_agent(:acct, 'steady', 'https://agent.example/180/b', 'http', 10) \gset

-- Three conversations answered end to end (agent call, reply, SMS sent), and a STOP.
SELECT disposition FROM darkspere.receive_sms('AC180', '+15551800001', '+15557500001', 'hello', 'SM180a');
SELECT disposition FROM darkspere.receive_sms('AC180', '+15551800001', '+15557500002', 'hello', 'SM180b');
SELECT disposition FROM darkspere.receive_sms('AC180', '+15551800001', '+15557500003', 'hello', 'SM180c');
SELECT disposition FROM darkspere.receive_sms('AC180', '+15551800001', '+15557500004', 'STOP', 'SM180d');
DO $$
DECLARE
    j record;
    n int := 0;
BEGIN
    FOR round IN 1..2 LOOP
        FOR j IN SELECT * FROM darkspere.claim_jobs('w175', 100, '1 minute') LOOP
            IF j.kind = 'agent_call' THEN
                PERFORM darkspere.complete_job(j.job_id, j.attempt,
                                               jsonb_build_object('latency_ms', 100 + n * 10, 'reply', 'hi'));
            ELSE
                PERFORM darkspere.complete_job(j.job_id, j.attempt,
                                               jsonb_build_object('sid', 'SM180out' || j.job_id, 'status', 'queued'));
            END IF;
            n := n + 1;
        END LOOP;
    END LOOP;
END $$;
-- One job left pending for the queue section; a passing probe; a blocked IP; a callback for no message.
SELECT disposition FROM darkspere.receive_sms('AC180', '+15551800001', '+15557500005', 'still there?', 'SM180e');
INSERT INTO darkspere.agent_checks (account_id, agent_id, ok, latency_ms) VALUES (:acct, :a2, true, 35);
SELECT darkspere.rate_limit('ip', '203.0.113.175', 1000) AS allowed;
SELECT darkspere.record_delivery_status('AC180', 'SM180nosuch', 'delivered');
-- Two more calls in flight, added (the routed one above may already sit on shard 0: this backend's shard).
UPDATE darkspere.agent_load SET in_flight = in_flight + 2 WHERE agent_id = :a1 AND shard = 0;

-- Health: both agents, load against capacity, nothing an agent could be called or impersonated with.
SELECT name, status, health_score, circuit, in_flight, capacity, load_pct
  FROM darkspere.dashboard_health WHERE account_id = :acct ORDER BY agent_id;
SELECT string_agg(attname, ', ') AS leaked
  FROM pg_attribute WHERE attrelid IN ('darkspere.dashboard_health'::regclass, 'darkspere.dashboard_traffic'::regclass,
                                       'darkspere.dashboard_latency'::regclass, 'darkspere.dashboard_usage'::regclass,
                                       'darkspere.dashboard_security'::regclass)
   AND attnum > 0 AND attname ~ 'endpoint|key|secret|hash|body|phone|subject';

-- Traffic: this minute's messages by direction and disposition (other files' rows are older or not this
-- account's; the counts below are at least this file's).
SELECT what, sum(messages) >= CASE what WHEN 'in keyword' THEN 1 ELSE 3 END AS counted
  FROM (SELECT direction || CASE direction WHEN 'in' THEN ' ' || disposition ELSE '' END AS what, messages
          FROM darkspere.dashboard_traffic WHERE minute >= date_trunc('minute', now()) - interval '1 minute') t
 WHERE what IN ('in routed', 'in keyword', 'out')
 GROUP BY 1 ORDER BY 1;

-- Latency: every stage and window has a row; the stages this file produced have samples.
SELECT count(*) AS rows, count(DISTINCT stage) AS stages, count(DISTINCT "window") AS windows
  FROM darkspere.dashboard_latency;
SELECT stage, count >= 1 AS sampled, p50_ms <= p95_ms AND p95_ms <= p99_ms AS ordered
  FROM darkspere.dashboard_latency WHERE "window" = '5 minutes' ORDER BY stage;
SELECT p50_ms >= 100 AND p99_ms <= 1000 AS agent_call_plausible
  FROM darkspere.dashboard_latency WHERE stage = 'agent_call' AND "window" = '5 minutes';

-- Usage: the pro plan's metered features with this month's use.
SELECT plan, feature, metric, used, monthly_limit, used_pct, remaining
  FROM darkspere.dashboard_usage WHERE account_id = :acct ORDER BY feature;
-- An override replaces the plan's limit, as feature_access says.
INSERT INTO darkspere.account_features (account_id, feature, enabled, monthly_limit, reason)
VALUES (:acct, 'custom_agents', true, 2, 'test');
SELECT monthly_limit, used_pct, remaining FROM darkspere.dashboard_usage
 WHERE account_id = :acct AND feature = 'custom_agents';
-- The view writes out feature_access's rules: both agree on every metered feature, with the override, and when
-- the account is held to the free plan for a payment past due (the free plan has no custom_agents).
SELECT count(*) AS features, count(*) FILTER (WHERE (d.plan, d.monthly_limit, d.used, d.remaining)
                                                 IS NOT DISTINCT FROM (fa.plan, fa.monthly_limit, fa.used, fa.remaining))
                                 AS agree
  FROM darkspere.dashboard_usage d, darkspere.feature_access(d.account_id, d.feature) fa WHERE d.account_id = :acct;
INSERT INTO darkspere.subscriptions (account_id, stripe_customer_id, past_due_since)
VALUES (:acct, 'cus_175', now() - interval '30 days');
SELECT count(*) AS features, count(*) FILTER (WHERE (d.plan, d.monthly_limit, d.used, d.remaining)
                                                 IS NOT DISTINCT FROM (fa.plan, fa.monthly_limit, fa.used, fa.remaining))
                                 AS agree, min(d.plan) AS plan
  FROM darkspere.dashboard_usage d, darkspere.feature_access(d.account_id, d.feature) fa WHERE d.account_id = :acct;
DELETE FROM darkspere.subscriptions WHERE account_id = :acct;

-- Security: the blocked IP (no account), the opt-out, the callback for no message.
SELECT kind, account_id = :acct AS this_account, detail, count >= 1 AS counted
  FROM darkspere.dashboard_security
 WHERE (kind = 'blocked_now' AND detail = 'ip') OR (kind = 'opt_out_24h' AND account_id = :acct)
    OR kind = 'unmatched_callback_24h'
 ORDER BY kind;

-- status_snapshot: one jsonb with the sections the page shows.
SELECT array(SELECT jsonb_object_keys(darkspere.status_snapshot()) ORDER BY 1) AS keys;
SELECT jsonb_array_length(s->'traffic') AS minutes, jsonb_array_length(s->'latency_p95') AS latency_minutes,
       (s->'traffic'->>58)::int + (s->'traffic'->>59)::int >= 5 AS last_two_minutes,
       (SELECT count(*) FROM jsonb_array_elements(s->'agents') a WHERE (a->>'account_id')::bigint = :acct) AS agents,
       EXISTS (SELECT FROM jsonb_array_elements(s->'queue') q WHERE q->>'kind' = 'agent_call') AS queued
  FROM darkspere.status_snapshot() s;

-- Alerts: status_snapshot shows the 10 newest rows of darkspere.alerts, newest first.
BEGIN;
INSERT INTO darkspere.alerts (rule, subject, severity, value, threshold)
SELECT 'error_rate', 'snapshot ' || g, 'warning', g, 1 FROM generate_series(1, 12) g;
SELECT jsonb_array_length(s->'alerts') AS alerts, s->'alerts'->0->>'subject' AS newest
  FROM darkspere.status_snapshot() s;
ROLLBACK;

-- Roles: a darkspere_monitor login reads every view and the snapshot; a darkspere_worker login runs the snapshot
-- and still reads no view or table; PUBLIC neither.
CREATE ROLE regress175_monitor LOGIN IN ROLE darkspere_monitor;
CREATE ROLE regress175_worker LOGIN IN ROLE darkspere_worker;
CREATE ROLE regress175_nobody LOGIN;
SET ROLE regress175_monitor;
SELECT (SELECT count(*) FROM darkspere.dashboard_health) > 0 AS health,
       (SELECT count(*) FROM darkspere.dashboard_traffic) > 0 AS traffic,
       (SELECT count(*) FROM darkspere.dashboard_latency) = 15 AS latency,
       (SELECT count(*) FROM darkspere.dashboard_usage) > 0 AS usage,
       (SELECT count(*) FROM darkspere.dashboard_security) > 0 AS security,
       darkspere.status_snapshot() ? 'agents' AS snapshot;
SELECT count(*) FROM darkspere.latency_samples;
RESET ROLE;
SET ROLE regress175_worker;
SELECT darkspere.status_snapshot() ? 'queue' AS snapshot;
SELECT count(*) FROM darkspere.dashboard_health;
RESET ROLE;
SET ROLE regress175_nobody;
SELECT darkspere.status_snapshot();
SELECT count(*) FROM darkspere.dashboard_traffic;
RESET ROLE;
DROP ROLE regress175_monitor, regress175_worker, regress175_nobody;

-- Bounded cost: with sequential scans discouraged (the test tables are tiny), every time window is read through
-- the index the view's comment names. regress.plan_uses(query, index) says whether the plan mentions the index.
CREATE FUNCTION regress.plan_uses(q text, idx text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN ' || q LOOP
        IF line LIKE '%' || idx || '%' THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END $$;
SET enable_seqscan = off;
SELECT regress.plan_uses('SELECT * FROM darkspere.dashboard_traffic', 'messages_created') AS traffic,
       regress.plan_uses('SELECT * FROM darkspere.dashboard_latency', 'messages_created') AS latency_messages,
       regress.plan_uses('SELECT * FROM darkspere.dashboard_latency', 'jobs_finished') AS latency_jobs,
       regress.plan_uses('SELECT * FROM darkspere.dashboard_latency', 'agent_checks_checked') AS latency_checks,
       regress.plan_uses('SELECT * FROM darkspere.dashboard_security', 'consent_events_at') AS security_consent,
       regress.plan_uses('SELECT * FROM darkspere.dashboard_security', 'delivery_events_received') AS security_callbacks,
       regress.plan_uses('SELECT * FROM darkspere.dashboard_usage', 'usage_counters_pkey') AS usage_counters;
RESET enable_seqscan;

SELECT regress.finish_leftover_work() \gset
