-- 125_agent_secrets — agent request-signing secrets (issue #10 item 10) and the agent capacity ceiling (item 15).
-- A secret is returned once, by register_agent or rotate_agent_secret; no table holds it (it is derived from the
-- master key file and the agent's generation); claims hand the current one, and the previous one during the
-- grace period, to the worker in the agent_call payload.
\set VERBOSITY terse

SELECT regress.finish_leftover_work() \gset

-- regress.tables_holding — the darkspere tables with a row whose text contains needle.
CREATE FUNCTION regress.tables_holding(needle text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    t regclass;
    hit boolean;
    found text[] := '{}';
BEGIN
    FOR t IN SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'darkspere'::regnamespace AND c.relkind IN ('r', 'p')
    LOOP
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s x WHERE strpos(row_to_json(x)::text, $1) > 0)', t) INTO hit USING needle;
        IF hit THEN found := found || t::text; END IF;
    END LOOP;
    RETURN found;
END $$;

SELECT darkspere.create_account('signing', 'pro') AS acct \gset
SELECT darkspere.add_number(:acct, '+15551250001', 'AC125');

-- register_agent returns the signing secret beside the API key: "dsk_" and 64 hex digits, different per agent.
SELECT agent_id AS bot, api_key AS bot_key, signing_secret AS secret1
  FROM darkspere.register_agent(:acct, 'bot', 'https://agent.example/125', 'http', 10) \gset
SELECT signing_secret AS other_secret FROM darkspere.register_agent(:acct, 'other', 'https://agent.example/125b') \gset
SELECT :'secret1' ~ '^dsk_[0-9a-f]{64}$' AS secret_format, :'secret1' <> :'bot_key' AS not_the_api_key,
       :'secret1' <> :'other_secret' AS per_agent;
-- Only the generation is stored.
SELECT secret_generation, secret_rotated_at IS NULL AS never_rotated FROM darkspere.agents WHERE agent_id = :bot;

-- A claim hands the worker the current secret (derived again, the same as register_agent returned).
SELECT darkspere.set_agent_status(agent_id, 'disabled') FROM darkspere.agents WHERE agent_id <> :bot AND account_id = :acct;
SELECT disposition FROM darkspere.receive_sms('AC125', '+15551250001', '+16661250001', 'first', 'SM125-1');
SELECT payload->'signing_secrets' = jsonb_build_array(:'secret1') AS claim_has_current_secret
  FROM darkspere.claim_jobs('w-125', 10, '30 seconds') WHERE kind = 'agent_call';
-- The job row keeps its trace request id and nothing else: no secret, no endpoint.
SELECT payload = jsonb_build_object('request_id', 'msg-' || message_id) AS job_row_keeps_request_id_only FROM darkspere.jobs
 WHERE message_id = (SELECT message_id FROM darkspere.messages WHERE message_sid = 'SM125-1');

-- Rotation: a new secret, returned once; the generation and time are stored.
SELECT darkspere.rotate_agent_secret(:bot) AS secret2 \gset
SELECT :'secret2' ~ '^dsk_[0-9a-f]{64}$' AS secret_format, :'secret2' <> :'secret1' AS rotation_changes_it;
SELECT secret_generation, secret_rotated_at > now() - interval '1 minute' AS rotated_now FROM darkspere.agents WHERE agent_id = :bot;

-- During the grace period (darkspere.agent_secret_grace, default 24 h) claims carry both, current first.
SELECT current_setting('darkspere.agent_secret_grace') AS default_grace;
SELECT regress.finish_leftover_work() \gset
SELECT disposition FROM darkspere.receive_sms('AC125', '+15551250001', '+16661250002', 'second', 'SM125-2');
SELECT payload->'signing_secrets' = jsonb_build_array(:'secret2', :'secret1') AS claim_has_both
  FROM darkspere.claim_jobs('w-125', 10, '30 seconds') WHERE kind = 'agent_call';
-- … and the hand-off path (receive_sms_leased) likewise.
SELECT regress.finish_leftover_work() \gset
SELECT payload->'signing_secrets' = jsonb_build_array(:'secret2', :'secret1') AS handoff_has_both
  FROM darkspere.receive_sms_leased('AC125', '+15551250001', '+16661250003', 'third', 'SM125-3', 0, NULL, 'w-125', '30 seconds');
-- After the grace period only the current one.
SET darkspere.agent_secret_grace = 0;
SELECT regress.finish_leftover_work() \gset
SELECT disposition FROM darkspere.receive_sms('AC125', '+15551250001', '+16661250004', 'fourth', 'SM125-4');
SELECT payload->'signing_secrets' = jsonb_build_array(:'secret2') AS grace_over
  FROM darkspere.claim_jobs('w-125', 10, '30 seconds') WHERE kind = 'agent_call';
RESET darkspere.agent_secret_grace;
-- Rotating again: the secret of generation 3; generation 1 no longer signs even within the grace period.
SELECT darkspere.rotate_agent_secret(:bot) AS secret3 \gset
SELECT regress.finish_leftover_work() \gset
SELECT disposition FROM darkspere.receive_sms('AC125', '+15551250001', '+16661250005', 'fifth', 'SM125-5');
SELECT payload->'signing_secrets' = jsonb_build_array(:'secret3', :'secret2') AS current_and_previous_only
  FROM darkspere.claim_jobs('w-125', 10, '30 seconds') WHERE kind = 'agent_call';

-- Unknown or missing agent: 22023 / 22004 naming it; nothing changes.
SELECT regress.try($$SELECT darkspere.rotate_agent_secret(-1)$$) AS unknown_agent;
SELECT regress.try($$SELECT darkspere.rotate_agent_secret(NULL)$$) AS null_agent;

-- No table holds any secret, in full or its hex digits alone (so pg_dump carries none).
SELECT regress.tables_holding(:'secret1') AS has_secret1, regress.tables_holding(substr(:'secret2', 5)) AS has_secret2_hex,
       regress.tables_holding(:'secret3') AS has_secret3, regress.tables_holding(:'other_secret') AS has_other;

-- The master key file was created in the data directory on first use: 32 bytes.
SELECT size FROM pg_stat_file(current_setting('darkspere.secret_key_file'));

-- Item 15: an agent's capacity is at most 1,000 (22023 naming the value; a CHECK constraint behind it).
SELECT count(*) AS registered FROM darkspere.register_agent(:acct, 'big', 'https://agent.example/big', 'http', 1000);
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'huge', 'https://agent.example/huge', 'http', 1001)$$, :acct)) AS capacity_1001;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'huge', 'https://agent.example/huge', 'http', 2147483647)$$, :acct)) AS capacity_max_int;
SELECT regress.try(format($$UPDATE darkspere.agents SET capacity = 5000 WHERE agent_id = %s$$, :bot)) AS update_past_ceiling;

-- claim_jobs with busy_accounts passes over the agent calls of those accounts (the worker's per-account share).
SELECT regress.finish_leftover_work() \gset
SELECT disposition FROM darkspere.receive_sms('AC125', '+15551250001', '+16661250006', 'sixth', 'SM125-6');
SELECT count(*) AS claimed_while_account_busy
  FROM darkspere.claim_jobs('w-125', 10, '30 seconds', '{}', ARRAY[:acct]::bigint[]);
SELECT count(*) AS claimed_when_other_account_busy
  FROM darkspere.claim_jobs('w-125', 10, '30 seconds', '{}', ARRAY[-1]::bigint[]);
SELECT regress.try($$SELECT * FROM darkspere.claim_jobs('w-125', 10, '30 seconds', '{}', '{1,NULL}')$$) AS null_busy_account;

SELECT regress.finish_leftover_work() \gset
