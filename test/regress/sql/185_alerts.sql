-- 185_alerts — alert rules evaluated by tick(): the five seeds, firing once per subject, no re-fire within the
-- cooldown, resolving, acknowledge_alert, channels (alert_notify jobs whose URL and signing secret are added
-- at claim time, never stored), the worker's signature-failure reports, bad input. (NOTIFY darkspere_alerts
-- carries a PID in psql's output; it is not checked here.)
\set VERBOSITY terse

SELECT regress.finish_leftover_work() \gset
-- Only this file's data: the rules read every account's traces and agents.
DELETE FROM darkspere.trace_events;
UPDATE darkspere.agents SET status = 'disabled' WHERE status IN ('active', 'unhealthy');

SELECT name, metric, op, threshold, "window", severity, cooldown, enabled, channel FROM darkspere.alert_rules ORDER BY name;

SELECT darkspere.create_account('alerts', 'pro') AS acct \gset
SELECT agent_id AS a1 FROM darkspere.register_agent(:acct, 'a1', 'https://agent.example/175a', 'http', 10) \gset

-- error_rate: 2 of 10 agent calls failed in the window (20 % > 10 %): fires once.
INSERT INTO darkspere.trace_events (account_id, request_id, step, agent_id, latency_ms, detail)
SELECT :acct, 'req-175-' || g, 'agent_call_finished', :a1, 100, jsonb_build_object('ok', g > 2)
  FROM generate_series(1, 10) g;
UPDATE darkspere.alert_rules SET enabled = true, cooldown = '1 hour' WHERE name = 'error_rate';
SELECT (darkspere.tick())->'alerts_fired' AS fired;
SELECT rule, subject, severity, state, value, threshold FROM darkspere.alerts ORDER BY alert_id;
SELECT (darkspere.tick())->'alerts_fired' AS fired_again;  -- still firing: no second alert
SELECT count(*) AS alerts FROM darkspere.alerts;
-- The calls recover (the failures leave the window): resolved.
UPDATE darkspere.trace_events SET at = now() - interval '1 hour' WHERE detail->>'ok' = 'false';
SELECT (darkspere.tick())->'alerts_resolved' AS resolved;
SELECT rule, state, resolved_at IS NOT NULL AS resolved_at_set FROM darkspere.alerts ORDER BY alert_id;
-- Failing again within the cooldown: no new alert.
UPDATE darkspere.trace_events SET at = now() WHERE detail->>'ok' = 'false';
SELECT darkspere.tick() ? 'alerts_fired' AS fired_in_cooldown;
SELECT count(*) AS alerts FROM darkspere.alerts;
-- After the cooldown (here: a cooldown of 0), it fires again.
UPDATE darkspere.alert_rules SET cooldown = '0' WHERE name = 'error_rate';
SELECT (darkspere.tick())->'alerts_fired' AS fired_after_cooldown;
SELECT rule, state FROM darkspere.alerts ORDER BY alert_id;
UPDATE darkspere.alert_rules SET enabled = false WHERE name = 'error_rate';
SELECT (darkspere.tick())->'alerts_resolved' AS resolved_when_disabled;

-- acknowledge_alert: recorded once; errors name the value.
SELECT max(alert_id) AS last_alert FROM darkspere.alerts \gset
SELECT acknowledged_by, acknowledged_at IS NOT NULL AS acked FROM darkspere.acknowledge_alert(:last_alert, 'ops@example');
SELECT acknowledged_by FROM darkspere.acknowledge_alert(:last_alert, 'someone-else');
SELECT regress.try(format('SELECT darkspere.acknowledge_alert(%s, %L)', :last_alert + 1000, 'ops'))
       = format('P0002: no alert with alert_id %s', :last_alert + 1000) AS unknown_alert;
SELECT regress.try(format('SELECT darkspere.acknowledge_alert(%s, %L)', :last_alert, ' '));

-- agent_p95_ms and agent_health: per agent.
INSERT INTO darkspere.trace_events (account_id, request_id, step, agent_id, latency_ms, detail)
SELECT :acct, 'req-175-slow', 'agent_call_finished', :a1, 1500, '{"ok": true}' FROM generate_series(1, 5);
UPDATE darkspere.agents SET health_score = 50 WHERE agent_id = :a1;
UPDATE darkspere.alert_rules SET enabled = true WHERE name IN ('agent_latency_p95', 'agent_health');
SELECT (darkspere.tick())->'alerts_fired' AS fired;
SELECT rule, subject = 'agent:' || :a1 AS this_agent, severity, value FROM darkspere.alerts
 WHERE state = 'firing' ORDER BY rule;
UPDATE darkspere.alert_rules SET enabled = false WHERE name IN ('agent_latency_p95', 'agent_health');
SELECT (darkspere.tick())->'alerts_resolved' AS resolved;

-- capacity_use: 9 of 10 slots in flight (90 % > 85 %).
UPDATE darkspere.agent_load SET in_flight = 9 WHERE agent_id = :a1 AND shard = 0;
UPDATE darkspere.alert_rules SET enabled = true WHERE name = 'capacity';
SELECT (darkspere.tick())->'alerts_fired' AS fired;
SELECT rule, subject, value FROM darkspere.alerts WHERE state = 'firing';
UPDATE darkspere.agent_load SET in_flight = 0 WHERE agent_id = :a1;
SELECT (darkspere.tick())->'alerts_resolved' AS resolved;
UPDATE darkspere.alert_rules SET enabled = false WHERE name = 'capacity';

-- failed_signatures: the worker's batched reports, per source; 3 in the hour from one source fire.
SELECT darkspere.report_signature_failures('{192.0.2.7, 198.51.100.1}', '{2, 1}');
SELECT darkspere.report_signature_failures('{192.0.2.7}', '{1}');
SELECT source, failures FROM darkspere.signature_failures ORDER BY source;
UPDATE darkspere.alert_rules SET enabled = true WHERE name = 'failed_signatures';
SELECT (darkspere.tick())->'alerts_fired' AS fired;
SELECT rule, subject, severity, value FROM darkspere.alerts WHERE state = 'firing';
SELECT regress.try($$SELECT darkspere.report_signature_failures('{192.0.2.7}', '{1, 2}')$$);
SELECT regress.try($$SELECT darkspere.report_signature_failures('{192.0.2.7}', '{0}')$$);
UPDATE darkspere.alert_rules SET enabled = false WHERE name = 'failed_signatures';
SELECT (darkspere.tick())->'alerts_resolved' AS resolved;

-- A channel: each change queues one alert_notify job; its payload gets the URL and the signing secret only
-- when claimed, and the secret is the channel's (derived, never in a table).
INSERT INTO darkspere.alert_channels (channel, webhook_url) VALUES ('ops', 'https://hooks.example/ops?token=t175');
UPDATE darkspere.alert_rules SET enabled = true, channel = 'ops', cooldown = '0' WHERE name = 'error_rate';
SELECT (darkspere.tick())->'alerts_fired' AS fired;
SELECT kind, payload->'body'->>'text' AS text, payload->'body'->>'state' AS state,
       payload ? 'webhook_url' OR payload ? 'signing_secrets' AS secret_stored
  FROM darkspere.jobs WHERE kind = 'alert_notify' AND state = 'pending';
SELECT payload->>'webhook_url' AS url, payload->'signing_secrets'->>0 = darkspere.alert_channel_secret('ops') AS signed_with_channel_secret,
       payload->'signing_secrets'->>0 ~ '^dsk_[0-9a-f]{64}$' AS secret_shape, payload->'body'->>'rule' AS rule
  FROM darkspere.claim_jobs('w175', 10);
SELECT count(*) AS tables_holding_the_secret FROM darkspere.jobs WHERE payload::text LIKE '%dsk_%';
SELECT regress.try($$SELECT darkspere.alert_channel_secret('nope')$$);
-- A disabled channel gets no job (a job queued before it was disabled finishes unsent at claim).
UPDATE darkspere.trace_events SET at = now() - interval '1 hour' WHERE detail->>'ok' = 'false';
UPDATE darkspere.alert_channels SET enabled = false WHERE channel = 'ops';
SELECT (darkspere.tick())->'alerts_resolved' AS resolved;
UPDATE darkspere.alert_channels SET enabled = true WHERE channel = 'ops';
SELECT count(*) AS queued_for_disabled FROM darkspere.jobs WHERE kind = 'alert_notify' AND state = 'pending';
UPDATE darkspere.alert_rules SET enabled = false, channel = NULL WHERE name = 'error_rate';

-- Bad rules: the message names the value.
SELECT regress.try($$INSERT INTO darkspere.alert_rules (name, metric, op, threshold, severity) VALUES ('x', 'cpu', '>', 1, 'warning')$$);
SELECT regress.try($$INSERT INTO darkspere.alert_rules (name, metric, op, threshold, severity) VALUES ('x', 'error_rate', '=>', 1, 'warning')$$);
SELECT regress.try($$INSERT INTO darkspere.alert_rules (name, metric, op, threshold, severity) VALUES ('x', 'error_rate', '>', 1, 'loud')$$);
SELECT regress.try($$INSERT INTO darkspere.alert_rules (name, metric, op, threshold, severity, "window") VALUES ('x', 'error_rate', '>', 1, 'info', '-5 minutes')$$);
SELECT regress.try($$UPDATE darkspere.alert_rules SET cooldown = '-1 hour' WHERE name = 'capacity'$$);
SELECT regress.try($$INSERT INTO darkspere.alert_channels (channel, webhook_url) VALUES ('bad', 'ftp://x')$$);

-- darkspere.alert_interval: tick() evaluates the rules at most that often (this file's database says 0).
SET darkspere.alert_interval = '1h';
UPDATE darkspere.alert_rules SET enabled = true, cooldown = '0' WHERE name = 'agent_health';  -- a1's health is 50
SELECT darkspere.tick() ? 'alerts_fired' AS fired_while_not_due;
RESET darkspere.alert_interval;
SELECT (darkspere.tick())->'alerts_fired' AS fired_when_due;

UPDATE darkspere.alert_rules SET enabled = false;
SELECT (darkspere.tick())->'alerts_resolved' AS resolved;
