-- 130_retention — tick() applies the retention settings: old messages deleted, old bodies redacted (the rest of
-- the message kept), old delivery and consent events deleted, ended sessions without messages deleted; nothing
-- younger, nothing a job in flight still needs, no active session. Each kind one bounded batch per tick.
-- Rows are written with old timestamps directly (the functions always write now()).
\set VERBOSITY terse

-- Other test files share this database: finish the work they left, so claims and tick() see only this file's.
SELECT regress.finish_leftover_work() \gset

SELECT darkspere.create_account('retention', 'pro') AS acct \gset
SELECT darkspere.add_number(:acct, '+15551300001', 'AC130');
SELECT agent_id AS agent FROM darkspere.register_agent(:acct, 'bot', 'https://agent.example/130', 'http', 100) \gset

-- Defaults: messages, bodies and consent events are kept for ever; delivery events 30 days; sessions 30 days.
SELECT name, setting, unit, context FROM pg_settings
 WHERE name IN ('darkspere.message_retention', 'darkspere.body_retention', 'darkspere.consent_event_retention',
                'darkspere.delivery_event_retention', 'darkspere.session_retention') ORDER BY name;

-- Sessions: 'ended40' ended 40 days ago with messages; 'empty40' and 'empty10' ended 40 and 10 days ago without
-- any; 'active' is active (created 40 days ago, no messages); 'jobheld' ended 40 days ago, no messages, but a
-- pending job names it.
CREATE TEMP TABLE s (label text PRIMARY KEY, id bigint);
WITH ins AS (
    INSERT INTO darkspere.sessions (account_id, service_number, phone, state, created_at, last_activity_at, ended_at)
    SELECT :acct, '+15551300001', v.phone, v.state, now() - v.age, now() - v.age + interval '1 hour',
           CASE WHEN v.state = 'active' THEN NULL ELSE now() - v.ended END
      FROM (VALUES ('+16661300001', 'expired', interval '41 days', interval '40 days'),
                   ('+16661300002', 'expired', interval '41 days', interval '40 days'),
                   ('+16661300003', 'closed',  interval '11 days', interval '10 days'),
                   ('+16661300004', 'active',  interval '40 days', NULL),
                   ('+16661300005', 'expired', interval '41 days', interval '40 days')) v(phone, state, age, ended)
    RETURNING session_id, phone)
INSERT INTO s SELECT CASE phone WHEN '+16661300001' THEN 'ended40' WHEN '+16661300002' THEN 'empty40'
                                WHEN '+16661300003' THEN 'empty10' WHEN '+16661300004' THEN 'active'
                                ELSE 'jobheld' END, session_id FROM ins;
SELECT id AS ended40 FROM s WHERE label = 'ended40' \gset
SELECT id AS jobheld FROM s WHERE label = 'jobheld' \gset

-- Messages of 'ended40': four 40 days old (two of them still needed by a pending and a running job), one 20 days
-- old, one an hour old.
INSERT INTO darkspere.messages (account_id, session_id, direction, service_number, phone, body, status, message_sid,
                                segments, encoding, agent_id, created_at, updated_at)
SELECT :acct, :ended40, v.dir, '+15551300001', '+16661300001', v.body, v.status, v.sid, 1, 'GSM-7', :agent,
       now() - v.age, now() - v.age
  FROM (VALUES ('in',  'old question', 'answered',  'SM130-old-in',  interval '40 days'),
               ('out', 'old answer',   'delivered', 'SM130-old-out', interval '40 days'),
               ('in',  'old pending',  'routed',    'SM130-pending', interval '40 days'),
               ('in',  'old running',  'routed',    'SM130-running', interval '40 days'),
               ('in',  'mid question', 'answered',  'SM130-mid',     interval '20 days'),
               ('in',  'new question', 'answered',  'SM130-new',     interval '1 hour')) v(dir, body, status, sid, age);
INSERT INTO darkspere.jobs (account_id, kind, state, max_attempts, idempotency_key, session_id, message_id, attempt,
                            lease_until, claimed_by)
VALUES (:acct, 'test_job', 'pending', 3, 'job130-pending', :ended40,
        (SELECT message_id FROM darkspere.messages WHERE message_sid = 'SM130-pending'), 0, NULL, NULL),
       (:acct, 'test_job', 'running', 3, 'job130-running', :ended40,
        (SELECT message_id FROM darkspere.messages WHERE message_sid = 'SM130-running'), 1, now() + interval '1 hour', 'w130'),
       (:acct, 'test_job', 'pending', 3, 'job130-session', :jobheld, NULL, 0, NULL, NULL);

INSERT INTO darkspere.delivery_events (message_sid, status, applied, received_at)
VALUES ('SM130-old-out', 'sent', true, now() - interval '31 days'),
       ('SM130-old-out', 'delivered', true, now() - interval '29 days');
INSERT INTO darkspere.consent_events (account_id, service_number, phone, action, source, keyword, at)
VALUES (:acct, '+15551300001', '+16661300009', 'opt_out', 'keyword', 'STOP', now() - interval '400 days'),
       (:acct, '+15551300001', '+16661300009', 'opt_in', 'keyword', 'START', now() - interval '10 days');

CREATE FUNCTION pg_temp.messages() RETURNS TABLE (sid text, body text, redacted boolean, status text, direction text,
                                                   segments int, encoding text)
LANGUAGE sql AS $$
    SELECT message_sid, body, body_redacted_at IS NOT NULL, status, direction, segments, encoding
      FROM darkspere.messages WHERE message_sid LIKE 'SM130-%' ORDER BY message_id $$;
CREATE FUNCTION pg_temp.sessions() RETURNS SETOF text LANGUAGE sql AS $$
    SELECT label FROM s WHERE id IN (SELECT session_id FROM darkspere.sessions) ORDER BY label $$;
CREATE FUNCTION pg_temp.events() RETURNS TABLE (kind text, status text, age_days int) LANGUAGE sql AS $$
    SELECT 'delivery', status, extract(day FROM now() - received_at)::int FROM darkspere.delivery_events
     WHERE message_sid = 'SM130-old-out'
    UNION ALL
    SELECT 'consent', action, extract(day FROM now() - at)::int FROM darkspere.consent_events
     WHERE account_id = current_setting('regress.acct')::bigint
    ORDER BY 1, 3 DESC $$;
SELECT set_config('regress.acct', :'acct', false) \gset
-- r(t) — the retention part of a tick's report (keys appear only when their count is not 0).
CREATE FUNCTION pg_temp.r(t jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT COALESCE(jsonb_object_agg(key, value), '{}') FROM jsonb_each(t)
     WHERE key IN ('pruned_messages', 'redacted_bodies', 'pruned_sessions', 'pruned_delivery_events',
                   'pruned_consent_events') $$;

-- 1. Defaults: only the delivery event older than 30 days goes; everything else stays (sessions wait for their
-- messages' retention, which is for ever).
SELECT pg_temp.r(darkspere.tick()) AS tick;
SELECT * FROM pg_temp.events();
SELECT * FROM pg_temp.messages();
SELECT * FROM pg_temp.sessions();

-- 2. Bodies older than 7 days are redacted: '' and body_redacted_at, the rest of the row kept (segments,
-- encoding, direction, status for billing). Not the bodies jobs in flight still read, not the younger ones.
SET darkspere.body_retention = '7d';
SELECT pg_temp.r(darkspere.tick()) AS tick;
SELECT * FROM pg_temp.messages();
SELECT pg_temp.r(darkspere.tick()) AS tick_again;

-- 3. Messages older than 30 days are deleted, except those jobs in flight refer to. Ended sessions without
-- messages go 30 days after they ended ('empty40'); 'ended40' keeps younger messages, 'empty10' ended 10 days
-- ago, 'active' is active and a pending job names 'jobheld': they stay.
SET darkspere.message_retention = '30d';
SELECT pg_temp.r(darkspere.tick()) AS tick;
SELECT * FROM pg_temp.messages();
SELECT * FROM pg_temp.sessions();
-- Once the jobs have finished, their messages go (and their bodies are redacted first only if still there).
UPDATE darkspere.jobs SET state = 'done', finished_at = now(), lease_until = NULL
 WHERE idempotency_key IN ('job130-pending', 'job130-running');
SELECT pg_temp.r(darkspere.tick()) AS tick;
SELECT * FROM pg_temp.messages();
SELECT * FROM pg_temp.sessions();
-- session_retention = 0 keeps ended sessions for ever, even empty ones.
UPDATE darkspere.jobs SET state = 'done', finished_at = now() WHERE idempotency_key = 'job130-session';
SET darkspere.session_retention = 0;
SELECT pg_temp.r(darkspere.tick()) AS tick;
SELECT * FROM pg_temp.sessions();
RESET darkspere.session_retention;
SELECT pg_temp.r(darkspere.tick()) AS tick;
SELECT * FROM pg_temp.sessions();

-- 4. Consent events: kept for ever by default (checked in 1); with a retention of 365 days the older one goes.
SET darkspere.consent_event_retention = '365d';
SELECT pg_temp.r(darkspere.tick()) AS tick;
SELECT * FROM pg_temp.events();

-- 5. Bounded: one batch of 1000 rows per kind and tick; a backlog is worked off over several ticks.
INSERT INTO darkspere.delivery_events (message_sid, status, received_at)
SELECT 'SM130-bulk-' || i, 'sent', now() - interval '60 days' FROM generate_series(1, 1500) i;
SELECT pg_temp.r(darkspere.tick()) AS tick;
SELECT pg_temp.r(darkspere.tick()) AS tick;
SELECT pg_temp.r(darkspere.tick()) AS tick;

-- 6. A redacted turn is left out of the history an agent is sent (an empty turn would mislead it).
SELECT disposition FROM darkspere.receive_sms('AC130', '+15551300001', '+16661300010', 'first turn', 'SM130-h1');
SELECT c.job_id, c.attempt FROM darkspere.claim_jobs('w130', 1) c \gset
SELECT darkspere.complete_job(:job_id, :attempt, '{"reply": "first reply"}');
SELECT c.job_id, c.attempt FROM darkspere.claim_jobs('w130', 1) c \gset
SELECT darkspere.complete_job(:job_id, :attempt, '{"sid": "SM130-h1-out", "status": "queued"}');
UPDATE darkspere.messages SET created_at = now() - interval '8 days' WHERE message_sid = 'SM130-h1';
SELECT pg_temp.r(darkspere.tick()) AS tick;
SELECT disposition FROM darkspere.receive_sms('AC130', '+15551300001', '+16661300010', 'second turn', 'SM130-h2');
SELECT c.kind, c.payload->'history' AS history FROM darkspere.claim_jobs('w130', 1) c;

RESET darkspere.body_retention;
RESET darkspere.message_retention;
RESET darkspere.consent_event_retention;
SELECT regress.finish_leftover_work() \gset
