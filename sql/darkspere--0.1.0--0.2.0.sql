-- sql/darkspere--0.1.0--0.2.0.sql — update script from 0.1.0 to 0.2.0 (ALTER EXTENSION darkspere UPDATE).
--
-- darkspere--0.1.0.sql is frozen: it is what 0.1.0 databases were created with. Every schema change since then is
-- written here, once. A fresh CREATE EXTENSION of 0.2.0 runs 0.1.0 and then this script (PostgreSQL follows the
-- update path when a version has no install script of its own), so a new database and an updated one are built
-- by the same statements; test/upgrade/run checks that they end up identical and that data survive.
--
-- Rules for this file (docs/upgrading.md):
--   * append; never edit darkspere--0.1.0.sql;
--   * new columns go at the end of their table (ALTER TABLE … ADD COLUMN), with a default that suits old rows;
--   * functions change with CREATE OR REPLACE FUNCTION (or DROP + CREATE when the signature changes);
--   * a statement must work on a 0.1.0 database holding data, not only on an empty one.
\echo Use "ALTER EXTENSION darkspere UPDATE TO '0.2.0'" to load this file. \quit

------------------------------------------------------------------------------------------------------------------
-- Issue #10 items 10 and 15: signed agent requests, and a ceiling on agent capacity
------------------------------------------------------------------------------------------------------------------

-- Item 10. Every request to an agent carries X-DarkSpere-Signature (docs/mcp-agents.md). The secret is derived
-- from a server master key file (darkspere.secret_key_file) and the agent's generation, so no table holds it:
-- only the generation and the time of the last rotation are stored. Rotating bumps the generation; the previous
-- secret still signs (both signatures are sent) for darkspere.agent_secret_grace after secret_rotated_at.
ALTER TABLE darkspere.agents ADD COLUMN secret_generation int NOT NULL DEFAULT 1 CHECK (secret_generation > 0);
ALTER TABLE darkspere.agents ADD COLUMN secret_rotated_at timestamptz;

-- register_agent also returns the signing secret (once: it is never stored).
DROP FUNCTION darkspere.register_agent(bigint, text, text, text, int);
CREATE FUNCTION darkspere.register_agent(account_id bigint, name text, endpoint text, protocol text DEFAULT 'http',
                                         capacity int DEFAULT 10)
RETURNS TABLE (agent_id bigint, api_key text, signing_secret text)
AS 'MODULE_PATHNAME', 'darkspere_register_agent' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- rotate_agent_secret — a new signing secret for the agent, returned once (admin).
CREATE FUNCTION darkspere.rotate_agent_secret(agent_id bigint)
RETURNS text AS 'MODULE_PATHNAME', 'darkspere_rotate_agent_secret' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Item 15. One agent may have at most 1,000 calls in flight; larger capacities from 0.1.0 are lowered to that.
UPDATE darkspere.agents SET capacity = 1000 WHERE capacity > 1000;
ALTER TABLE darkspere.agents ADD CONSTRAINT agents_capacity_max CHECK (capacity <= 1000);

-- claim_jobs passing over agent calls of busy_accounts as well (the worker's per-account share): one tenant's
-- backlog never takes every in-flight slot of a worker.
CREATE FUNCTION darkspere.claim_jobs(worker text, max_jobs int, lease interval, busy_agents bigint[],
                                     busy_accounts bigint[])
RETURNS TABLE (job_id bigint, attempt int, kind text, payload jsonb)
AS 'MODULE_PATHNAME', 'darkspere_claim_jobs' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- As every function of 0.1.0: not executable by PUBLIC (rotate_agent_secret returns a secret; the recreated
-- register_agent must not become callable by anyone). Grants to the DarkSpere roles: the privileges section.
REVOKE ALL ON FUNCTION darkspere.register_agent(bigint, text, text, text, int),
    darkspere.rotate_agent_secret(bigint),
    darkspere.claim_jobs(text, int, interval, bigint[], bigint[]) FROM PUBLIC;

------------------------------------------------------------------------------------------------------------------
-- Issue #10, items 3, 11 and 16 (first two parts): reply cap, routing in turns, waiting messages end with their
-- session, requeue_dead_job under concurrency, status callbacks tied to their AccountSid.
------------------------------------------------------------------------------------------------------------------

-- Item 3: a reply is cut after darkspere.max_reply_segments SMS segments. The message where it was cut records
-- the whole reply's length in bytes (UTF-8); NULL when the reply was not cut. Bytes, not characters: counting the
-- characters of a reply of megabytes would mean reading all of it.
ALTER TABLE darkspere.messages ADD COLUMN reply_truncated_from_bytes bigint;

-- Item 11: tick() routes waiting messages accounts in turns (src/ext/maintenance.cpp). This index lets it find
-- the accounts with waiting messages with one probe each, and one account's oldest waiting messages.
CREATE INDEX messages_waiting_account ON darkspere.messages (account_id, session_id, message_id)
    WHERE status = 'waiting';
-- The last account whose waiting messages tick() served; the next tick starts after it. A hint only: unlogged
-- (after a crash, or in a restored dump, routing starts again from the first account) and at most one row.
CREATE UNLOGGED TABLE darkspere.route_cursor (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    account_id bigint NOT NULL
);
-- A message still waiting for an agent when its session ends ends with it: status 'expired' (kept, never routed,
-- never answered). 0.1.0 left such messages waiting; end them now as they would have ended.
UPDATE darkspere.messages m SET status = 'expired', updated_at = pg_catalog.now()
  FROM darkspere.sessions s
 WHERE s.session_id = m.session_id AND s.state <> 'active' AND m.status = 'waiting';

-- Item 16, status callbacks: a callback names the AccountSid it was signed for; it changes a message only when
-- that account owns the message's number. Every callback keeps its AccountSid (NULL: recorded by 0.1.0).
ALTER TABLE darkspere.delivery_events ADD COLUMN provider_account text;
-- The signature and the result change (the outcome is returned), so the 0.1.0 function goes: an old caller
-- without an AccountSid must fail loudly rather than bypass the check.
DROP FUNCTION darkspere.record_delivery_status(text, text, int);
-- record_delivery_status — records one status callback signed for provider_account and returns what became of it:
-- 'applied' (the message's delivery state moved forward), 'unchanged' (an older or repeated status), 'pending' (no
-- outbound message has this sid yet; weighed when one does), 'account_mismatch' (the message's number belongs to
-- another AccountSid: nothing changes).
CREATE FUNCTION darkspere.record_delivery_status(provider_account text, message_sid text, status text,
                                                 error_code int DEFAULT NULL)
-- A new C symbol: a 0.1.0 database that loads this library before it is updated reaches the old symbol, which
-- refuses (the old arguments carry no AccountSid) instead of reading them as the new ones.
RETURNS text AS 'MODULE_PATHNAME', 'darkspere_record_delivery_status_v2' LANGUAGE C VOLATILE PARALLEL UNSAFE;
-- Like every tenant-facing function (0.1.0 revoked them all from PUBLIC); the role grants come in the last block.
REVOKE ALL ON FUNCTION darkspere.record_delivery_status(text, text, text, int) FROM PUBLIC;

------------------------------------------------------------------------------------------------------------------
-- Tenant isolation (issue #10, items 12–14)
------------------------------------------------------------------------------------------------------------------

-- Item 12: every service number names the Twilio AccountSid that owns it. In 0.1.0 a number without one accepted
-- webhooks signed by any configured AccountSid, so another tenant's Twilio account could inject messages, forge
-- opt-outs and spend quota on it. From 0.2.0 add_number requires provider_account (an AccountSid: "AC" and up
-- to 32 letters or digits), receive_sms, receive_sms_leased and receive_sms_batch require it for every message
-- and a number answers only to its own AccountSid.
--
-- No AccountSid can be guessed for an existing number without one, and such a number must not be left open or
-- silently shut: the update stops, naming the numbers, until the operator sets them; nothing is changed before.
DO $$
DECLARE
    missing bigint;
    listed text;
BEGIN
    SELECT count(*), string_agg(number, ', ' ORDER BY number) FILTER (WHERE rank <= 20)
      INTO missing, listed
      FROM (SELECT number, row_number() OVER (ORDER BY number) AS rank
              FROM darkspere.numbers WHERE provider_account IS NULL) n;
    IF missing > 0 THEN
        RAISE EXCEPTION 'darkspere 0.2.0 requires every service number to name its Twilio AccountSid; '
                        '% number(s) have none: %', missing, listed || CASE WHEN missing > 20 THEN ', …' ELSE '' END
            USING ERRCODE = 'not_null_violation',
                  HINT = 'Set each with UPDATE darkspere.numbers SET provider_account = ''AC…'' '
                         'WHERE number = ''+…'', '
                         'then run ALTER EXTENSION darkspere UPDATE again. '
                         'SELECT number FROM darkspere.numbers WHERE provider_account IS NULL lists them.';
    END IF;
END
$$;
ALTER TABLE darkspere.numbers ALTER COLUMN provider_account SET NOT NULL;

-- Item 13: per-phone rate limits are per tenant. In 0.1.0 the 'phone' rule (and 'phone_out') counted the bare
-- phone across every tenant, so one tenant forging 61 messages "from" a phone blocked that phone with every
-- tenant for 5 minutes. From 0.2.0 both count "<account_id>:<phone>"; one higher rule, 'phone_ceiling', still
-- counts the bare phone across tenants (a message the tenant's rule refuses is not counted by the ceiling, so
-- one tenant alone cannot push a phone over it).
-- Item 14: replies to STOP / START / HELP are throttled by 'keyword_reply': one per account, phone and keyword
-- per window (the rest are stored and consent recorded, without a reply). block_s = 0: refused until the
-- window ends, nothing longer.
INSERT INTO darkspere.rate_limit_rules VALUES
    ('phone_ceiling', 600,  60, 300, true),   -- inbound SMS per end-user phone, all tenants together
    ('keyword_reply',   1, 600,   0, true);   -- keyword replies per account, phone and keyword

-- A 0.1.0 override of 'phone' names a bare phone and limited it across tenants: that is the ceiling's subject
-- now, so it moves there and keeps its effect. (To let a phone past the per-tenant rule, add an override of
-- 'phone' for "<account_id>:<phone>".) An override of 'phone_out' for a bare phone no longer matches anything
-- and cannot be attributed to one tenant: it is kept, and the update says so.
UPDATE darkspere.rate_limit_overrides SET scope = 'phone_ceiling' WHERE scope = 'phone' AND subject !~ '^[0-9]+:';
DO $$
DECLARE
    stale bigint;
BEGIN
    SELECT count(*) INTO stale FROM darkspere.rate_limit_overrides WHERE scope = 'phone_out' AND subject !~ '^[0-9]+:';
    IF stale > 0 THEN
        RAISE WARNING '% override(s) of rate limit phone_out name a bare phone and no longer apply', stale
            USING HINT = 'Outbound per-phone limits are per tenant from 0.2.0: '
                         'the subject is ''<account_id>:<phone>''.';
    END IF;
END
$$;

------------------------------------------------------------------------------------------------------------------
-- Monitoring: agent health without the agents table's keys (read by darkspere_monitor, granted below)
------------------------------------------------------------------------------------------------------------------

-- agent_health — each agent's status, health and calls in flight; no endpoint, key hash or secret, so a
-- monitoring role can read it without being able to call or impersonate agents.
CREATE VIEW darkspere.agent_health AS
    SELECT a.account_id, a.agent_id, a.name, a.status, a.health_score, a.circuit, a.circuit_until,
           a.consecutive_failures, a.latency_ms, a.last_result_at,
           (SELECT pg_catalog.sum(l.in_flight) FROM darkspere.agent_load l WHERE l.agent_id = a.agent_id)::int
               AS in_flight
    FROM darkspere.agents a;

------------------------------------------------------------------------------------------------------------------
-- Retention and housekeeping (Operations issue): tick() deletes old rows and redacts old bodies in batches
------------------------------------------------------------------------------------------------------------------

-- Settings darkspere.message_retention, body_retention, consent_event_retention, delivery_event_retention and
-- session_retention (src/ext/module.cpp; docs/operations.md "Retention" gives each default and why). Each kind
-- is pruned by tick() one LIMITed batch per call, oldest first, through an index on its age.
--
-- Body redaction: after darkspere.body_retention, tick() replaces a message's body with '' and sets
-- body_redacted_at; the row stays with everything billing and usage read (direction, status, segments,
-- encoding, account, number, times). NULL: the body is there (every 0.1.0 row).
ALTER TABLE darkspere.messages ADD COLUMN body_redacted_at timestamptz;
-- The ages tick() looks up. Built by ALTER EXTENSION UPDATE on a 0.1.0 database, holding a lock that blocks
-- writes to each table while its index is built (docs/upgrading.md).
CREATE INDEX messages_created ON darkspere.messages (created_at);
-- Only the bodies still there: redacted rows leave it, so a redaction batch never walks past them again.
CREATE INDEX messages_unredacted ON darkspere.messages (created_at) WHERE body_redacted_at IS NULL;
-- Ended sessions by end time (the leading column is non-null in every row, as the jobs indexes of 0.1.0 say why).
CREATE INDEX sessions_ended ON darkspere.sessions (ended_at) WHERE ended_at IS NOT NULL AND state <> 'active';
CREATE INDEX delivery_events_received ON darkspere.delivery_events (received_at);
CREATE INDEX consent_events_at ON darkspere.consent_events (at);

------------------------------------------------------------------------------------------------------------------
-- Issue #13: API keys and the HTTP API for tenants and agents (src/ext/api_keys.cpp; docs/api.md)
------------------------------------------------------------------------------------------------------------------

-- Account keys: an account's bearer tokens for the HTTP API. Only the SHA-256 of a key is stored, and 8 leading
-- characters ("dsk_" and 4 more) to tell keys apart in a listing; the key itself is shown once by
-- create_account_key. Keys are found by hash, never by account: authentication does not know the
-- account yet.
CREATE TABLE darkspere.account_keys (
    account_id   bigint NOT NULL REFERENCES darkspere.accounts ON DELETE CASCADE,
    key_id       bigserial,
    name         text NOT NULL CHECK (name <> ''),
    key_prefix   text NOT NULL,
    key_hash     bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,            -- written at most once a minute per key
    revoked_at   timestamptz,
    PRIMARY KEY (account_id, key_id)
);
-- Lookups that do not know the account: authentication (by hash) and revoke_account_key (by id). Plain indexes,
-- not unique constraints, so the table can still be distributed by account (issue 16's rule); a SHA-256 of 32
-- random bytes does not collide, and key ids come from one sequence.
CREATE INDEX account_keys_hash ON darkspere.account_keys (key_hash);
CREATE INDEX account_keys_key_id ON darkspere.account_keys (key_id);
SELECT pg_catalog.pg_extension_config_dump('darkspere.account_keys', '');
SELECT pg_catalog.pg_extension_config_dump('darkspere.account_keys_key_id_seq', '');

-- Agent keys stay where register_agent puts them (agents.api_key_hash). rotate_agent_key moves the current hash
-- to api_key_prev_hash, valid until api_key_prev_until (the grace period). authenticate_key looks both up by
-- hash: the indexes below (0.1.0 had none, as nothing looked agents up by key).
ALTER TABLE darkspere.agents ADD COLUMN api_key_prev_hash bytea;
ALTER TABLE darkspere.agents ADD COLUMN api_key_prev_until timestamptz;
ALTER TABLE darkspere.agents ADD COLUMN api_key_last_used_at timestamptz;
CREATE INDEX agents_api_key_hash ON darkspere.agents (api_key_hash);
CREATE INDEX agents_api_key_prev_hash ON darkspere.agents (api_key_prev_hash) WHERE api_key_prev_hash IS NOT NULL;
-- Labels a tenant gives its agents (POST/PATCH /api/agents); at most 20, each 1–50 of [A-Za-z0-9_.:-].
ALTER TABLE darkspere.agents ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
-- The last heartbeat an agent sent (POST /api/agents/heartbeat): when, and what it said.
ALTER TABLE darkspere.agents ADD COLUMN last_heartbeat_at timestamptz;
ALTER TABLE darkspere.agents ADD COLUMN heartbeat_status text;
ALTER TABLE darkspere.agents ADD COLUMN heartbeat_load int;
ALTER TABLE darkspere.agents ADD COLUMN heartbeat_version text;

-- The API's per-key rule is 1,000 requests a minute (0.1.0 seeded 100 for a use that never came).
UPDATE darkspere.rate_limit_rules SET max_hits = 1000 WHERE scope = 'api_key' AND is_seed;

-- create_account_key — a new key for the account, shown once (admin). At most 20 unrevoked keys per account.
CREATE FUNCTION darkspere.create_account_key(account_id bigint, name text)
RETURNS TABLE (key_id bigint, api_key text)
AS 'MODULE_PATHNAME', 'darkspere_create_account_key' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- revoke_account_key — the key stops working at once (admin).
CREATE FUNCTION darkspere.revoke_account_key(key_id bigint)
RETURNS void AS 'MODULE_PATHNAME', 'darkspere_revoke_account_key' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- authenticate_key — whose key this is: kind 'account' (key_id set) or 'agent' (agent_id set); no row for an
-- unknown, malformed, revoked or expired key.
CREATE FUNCTION darkspere.authenticate_key(api_key text)
RETURNS TABLE (kind text, account_id bigint, agent_id bigint, key_id bigint)
AS 'MODULE_PATHNAME', 'darkspere_authenticate_key' LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1;

-- rotate_agent_key — a new agent key, shown once; the previous one works for `grace` more (0 to 30 days).
CREATE FUNCTION darkspere.rotate_agent_key(agent_id bigint, grace interval DEFAULT '24 hours')
RETURNS text AS 'MODULE_PATHNAME', 'darkspere_rotate_agent_key' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- api_error — the body of an API error: {"error": {"code", "message"[, "field"]}}.
CREATE FUNCTION darkspere.api_error(code text, message text, field text DEFAULT NULL)
RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.jsonb_build_object('error', pg_catalog.jsonb_strip_nulls(
        pg_catalog.jsonb_build_object('code', code, 'message', message, 'field', field)))
$$;

-- api_call — one HTTP API request, decided whole (the worker maps a route to this one call; docs/api.md).
-- route: agents.create, agents.list, agents.get, agents.update, agents.delete, agents.rotate_key,
-- agents.heartbeat, agents.health, usage. agent_id: the {id} of the path. body: the parsed JSON body or NULL.
-- In order: the client IP's rate limit ('ip' rule), the key (401), the key's rate limit ('api_key', subject
-- "key:<key_id>" or "agent:<agent_id>"), the key's kind (403), then the route. Returns the HTTP status, the
-- response body and, with 429, the seconds to wait. The route runs in a subtransaction: an error undoes all of
-- it (nothing is half-applied) while the rate-limit hits stay counted. Another account's agent is 404.
CREATE FUNCTION darkspere.api_call(route text, api_key text, client_ip text, agent_id bigint DEFAULT NULL,
                                   body jsonb DEFAULT NULL)
RETURNS TABLE (http_status int, response jsonb, retry_after int)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    p_route text := api_call.route;
    p_agent bigint := api_call.agent_id;
    p_body jsonb := api_call.body;
    who record;
    rl_scope text;
    rl_subject text;
    ag record;
    k text;
    v jsonb;
    problem text;
    n numeric;
    new_id bigint;
    new_key text;
    new_secret text;
    grace_s int;
    result jsonb;
    code int := 200;
    wait_s int;
BEGIN
    IF p_route IS NULL OR p_route NOT IN ('agents.create', 'agents.list', 'agents.get', 'agents.update',
                                          'agents.delete', 'agents.rotate_key', 'agents.heartbeat',
                                          'agents.health', 'usage') THEN
        RAISE EXCEPTION 'unknown API route: "%"', p_route USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF client_ip IS NULL OR client_ip = '' OR pg_catalog.length(client_ip) > 64 THEN
        RAISE EXCEPTION 'invalid client_ip: "%"', client_ip USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Rate limits: per client address before the key is even looked at (so guessing keys is limited too), then
    -- per key. A refused hit answers 429 with the seconds until the subject is let through again.
    FOR rl_scope, rl_subject IN SELECT 'ip', client_ip UNION ALL SELECT 'api_key', NULL LOOP
        IF rl_scope = 'api_key' THEN
            SELECT * INTO who FROM darkspere.authenticate_key(api_key);
            IF NOT FOUND THEN
                RETURN QUERY SELECT 401, darkspere.api_error('unauthorized', 'a valid API key is required'),
                                    NULL::int;
                RETURN;
            END IF;
            rl_subject := CASE who.kind WHEN 'account' THEN 'key:' || who.key_id ELSE 'agent:' || who.agent_id END;
        END IF;
        IF NOT darkspere.rate_limit(rl_scope, rl_subject) THEN
            SELECT GREATEST(1, pg_catalog.ceil(EXTRACT(epoch FROM
                       COALESCE(s.blocked_until, s.window_start + pg_catalog.make_interval(
                           secs => COALESCE(o.window_s, r.window_s))) - pg_catalog.clock_timestamp())))::int
              INTO wait_s
              FROM darkspere.rate_limit_state s JOIN darkspere.rate_limit_rules r ON r.scope = s.scope
              LEFT JOIN darkspere.rate_limit_overrides o ON o.scope = s.scope AND o.subject = s.subject
             WHERE s.scope = rl_scope AND s.subject = rl_subject;
            RETURN QUERY SELECT 429, darkspere.api_error('rate_limited', CASE rl_scope WHEN 'ip'
                                     THEN 'too many requests from this address'
                                     ELSE 'too many requests with this key' END),
                                COALESCE(wait_s, 1);
            RETURN;
        END IF;
    END LOOP;
    IF (p_route = 'agents.heartbeat') <> (who.kind = 'agent') THEN
        RETURN QUERY SELECT 403, darkspere.api_error('forbidden', CASE WHEN who.kind = 'agent'
                                 THEN 'this route needs an account key' ELSE 'this route needs an agent key' END),
                            NULL::int;
        RETURN;
    END IF;

    -- Bodies: an object where one is read; every field known and valid, or 422 naming the first bad one.
    IF p_route IN ('agents.create', 'agents.update', 'agents.heartbeat')
       OR (p_route = 'agents.rotate_key' AND p_body IS NOT NULL) THEN
        IF p_body IS NULL OR pg_catalog.jsonb_typeof(p_body) <> 'object' THEN
            RETURN QUERY SELECT 400, darkspere.api_error('bad_request', 'the body must be a JSON object'), NULL::int;
            RETURN;
        END IF;
        FOR k, v IN SELECT e.key, e.value FROM pg_catalog.jsonb_each(p_body) e ORDER BY e.key LOOP
            problem := NULL;
            IF p_route = 'agents.create' AND k NOT IN ('name', 'endpoint', 'protocol', 'capacity', 'tags')
               OR p_route = 'agents.update' AND k NOT IN ('endpoint', 'capacity', 'tags', 'status')
               OR p_route = 'agents.heartbeat' AND k NOT IN ('status', 'load', 'version')
               OR p_route = 'agents.rotate_key' AND k NOT IN ('grace_seconds') THEN
                problem := 'is not a field of this request';
            ELSIF p_route = 'agents.heartbeat' AND k = 'status' THEN
                IF pg_catalog.jsonb_typeof(v) <> 'string' OR v #>> '{}' NOT IN ('ok', 'degraded', 'draining') THEN
                    problem := 'must be "ok", "degraded" or "draining"';
                END IF;
            ELSIF k IN ('name', 'version') THEN
                IF pg_catalog.jsonb_typeof(v) <> 'string' OR v #>> '{}' = ''
                   OR pg_catalog.length(v #>> '{}') > 100 THEN
                    problem := 'must be a string of 1 to 100 characters';
                END IF;
            ELSIF k = 'endpoint' THEN
                IF pg_catalog.jsonb_typeof(v) <> 'string' OR pg_catalog.length(v #>> '{}') > 2048
                   OR v #>> '{}' !~ '^https?://[^/?#[:space:]@]+([/?#][^[:space:]]*)?$' THEN
                    problem := 'must be an http:// or https:// URL with a host, at most 2048 characters';
                END IF;
            ELSIF k = 'protocol' THEN
                IF pg_catalog.jsonb_typeof(v) <> 'string' OR v #>> '{}' NOT IN ('http', 'mcp') THEN
                    problem := 'must be "http" or "mcp"';
                END IF;
            ELSIF k IN ('capacity', 'load', 'grace_seconds') THEN
                n := CASE WHEN pg_catalog.jsonb_typeof(v) = 'number' THEN (v #>> '{}')::numeric END;
                IF n IS NULL OR n <> pg_catalog.trunc(n)
                   OR k = 'capacity' AND (n < 1 OR n > 1000)
                   OR k = 'load' AND (n < 0 OR n > 1000000)
                   OR k = 'grace_seconds' AND (n < 0 OR n > 2592000) THEN
                    problem := CASE k WHEN 'capacity' THEN 'must be an integer from 1 to 1000'
                                      WHEN 'load' THEN 'must be an integer from 0 to 1000000'
                                      ELSE 'must be an integer from 0 to 2592000 (30 days)' END;
                END IF;
            ELSIF k = 'tags' THEN
                IF pg_catalog.jsonb_typeof(v) <> 'array' OR pg_catalog.jsonb_array_length(v) > 20
                   OR EXISTS (SELECT FROM pg_catalog.jsonb_array_elements(v) t
                               WHERE pg_catalog.jsonb_typeof(t) <> 'string'
                                  OR t #>> '{}' !~ '^[A-Za-z0-9_.:-]{1,50}$') THEN
                    problem := 'must be an array of at most 20 strings of 1 to 50 characters [A-Za-z0-9_.:-]';
                END IF;
            ELSIF k = 'status' THEN
                IF pg_catalog.jsonb_typeof(v) <> 'string' OR v #>> '{}' NOT IN ('active', 'maintenance') THEN
                    problem := 'must be "active" or "maintenance"';
                END IF;
            END IF;
            IF problem IS NOT NULL THEN
                RETURN QUERY SELECT 422, darkspere.api_error('invalid_field', k || ' ' || problem, k), NULL::int;
                RETURN;
            END IF;
        END LOOP;
        FOREACH k IN ARRAY CASE p_route WHEN 'agents.create' THEN ARRAY['name', 'endpoint']
                                        WHEN 'agents.heartbeat' THEN ARRAY['status'] ELSE '{}'::text[] END LOOP
            IF NOT p_body ? k THEN
                RETURN QUERY SELECT 422, darkspere.api_error('invalid_field', k || ' is required', k), NULL::int;
                RETURN;
            END IF;
        END LOOP;
    END IF;

    -- Routes that name an agent: it must be the key's account's (the agent's own, for a heartbeat), else 404.
    IF p_route IN ('agents.get', 'agents.update', 'agents.delete', 'agents.rotate_key', 'agents.health') THEN
        IF NOT EXISTS (SELECT FROM darkspere.agents a WHERE a.agent_id = p_agent AND a.account_id = who.account_id)
        THEN
            RETURN QUERY SELECT 404, darkspere.api_error('not_found', 'agent ' || COALESCE(p_agent::text, '?')
                                                                      || ' not found'), NULL::int;
            RETURN;
        END IF;
    END IF;
    IF p_route = 'agents.heartbeat' THEN
        p_agent := who.agent_id;
    END IF;

    BEGIN
        CASE p_route
        WHEN 'agents.create' THEN
            SELECT r.agent_id, r.api_key, r.signing_secret INTO new_id, new_key, new_secret
              FROM darkspere.register_agent(who.account_id, p_body ->> 'name', p_body ->> 'endpoint',
                                            COALESCE(p_body ->> 'protocol', 'http'),
                                            COALESCE((p_body ->> 'capacity')::int, 10)) r;
            UPDATE darkspere.agents a
               SET tags = ARRAY(SELECT DISTINCT t FROM pg_catalog.jsonb_array_elements_text(p_body -> 'tags') t
                                 ORDER BY t)
             WHERE a.agent_id = new_id AND p_body ? 'tags';
            p_agent := new_id;
            code := 201;
        WHEN 'agents.update' THEN
            UPDATE darkspere.agents a
               SET endpoint = COALESCE(p_body ->> 'endpoint', a.endpoint),
                   capacity = COALESCE((p_body ->> 'capacity')::int, a.capacity),
                   tags = CASE WHEN p_body ? 'tags'
                               THEN ARRAY(SELECT DISTINCT t FROM pg_catalog.jsonb_array_elements_text(p_body -> 'tags') t
                                           ORDER BY t)
                               ELSE a.tags END
             WHERE a.agent_id = p_agent;
            IF p_body ? 'status' THEN
                -- set_agent_status takes a plan slot again for an agent coming back from 'disabled'.
                PERFORM darkspere.set_agent_status(p_agent, p_body ->> 'status');
            END IF;
        WHEN 'agents.delete' THEN
            PERFORM darkspere.set_agent_status(p_agent, 'disabled');
        WHEN 'agents.rotate_key' THEN
            grace_s := COALESCE((p_body ->> 'grace_seconds')::int, 86400);
            new_key := darkspere.rotate_agent_key(p_agent, pg_catalog.make_interval(secs => grace_s));
            SELECT pg_catalog.jsonb_build_object('agent_id', a.agent_id, 'api_key', new_key,
                                                 'previous_key_valid_until', a.api_key_prev_until)
              INTO result FROM darkspere.agents a WHERE a.agent_id = p_agent;
        WHEN 'agents.heartbeat' THEN
            IF EXISTS (SELECT FROM darkspere.agents a WHERE a.agent_id = p_agent AND a.status = 'disabled') THEN
                RETURN QUERY SELECT 409, darkspere.api_error('agent_disabled',
                                                             'agent ' || p_agent || ' is disabled'), NULL::int;
                RETURN;
            END IF;
            UPDATE darkspere.agents a
               SET last_heartbeat_at = pg_catalog.now(), heartbeat_status = p_body ->> 'status',
                   heartbeat_load = (p_body ->> 'load')::int, heartbeat_version = p_body ->> 'version'
             WHERE a.agent_id = p_agent;
            -- A heartbeat is a passing probe: it feeds the health score and closes a half-open circuit.
            PERFORM darkspere.record_agent_result(p_agent, true, NULL);
            result := pg_catalog.jsonb_build_object('agent_id', p_agent, 'received_at', pg_catalog.now());
        WHEN 'agents.health' THEN
            SELECT pg_catalog.jsonb_build_object(
                       'agent_id', a.agent_id, 'status', a.status, 'health_score', a.health_score,
                       'score_parts', pg_catalog.jsonb_build_object(
                           -- health.cpp: uptime of the last 20 results × 60, latency band, failures in the last 10
                           'uptime', CASE WHEN LEAST(a.results_count, 20) = 0 THEN 60
                                          ELSE pg_catalog.round(60.0 * (LEAST(a.results_count, 20)
                                                 - pg_catalog.bit_count((a.results_mask & 1048575)::bit(64)))
                                                 / LEAST(a.results_count, 20))::int END,
                           'latency', CASE WHEN a.latency_ms IS NULL OR a.latency_ms < 500 THEN 30
                                           WHEN a.latency_ms < 1000 THEN 20 WHEN a.latency_ms < 2000 THEN 10
                                           ELSE 0 END,
                           'recent_failures', CASE pg_catalog.bit_count((a.results_mask & 1023)::bit(64))
                                                  WHEN 0 THEN 10 WHEN 1 THEN 7 WHEN 2 THEN 3 ELSE 0 END),
                       'circuit', a.circuit, 'consecutive_failures', a.consecutive_failures,
                       'latency_ms', a.latency_ms,
                       'traffic', pg_catalog.jsonb_build_object(
                           '1h', (SELECT pg_catalog.jsonb_build_object('calls', pg_catalog.count(*),
                                      'p50_ms', pg_catalog.percentile_disc(0.5) WITHIN GROUP (ORDER BY l),
                                      'p95_ms', pg_catalog.percentile_disc(0.95) WITHIN GROUP (ORDER BY l),
                                      'p99_ms', pg_catalog.percentile_disc(0.99) WITHIN GROUP (ORDER BY l))
                                    FROM (SELECT (j.result ->> 'latency_ms')::numeric AS l FROM darkspere.jobs j
                                           WHERE j.finished_at > pg_catalog.now() - interval '1 hour'
                                             AND j.state = 'done' AND j.kind = 'agent_call'
                                             AND j.agent_id = a.agent_id
                                             AND pg_catalog.jsonb_typeof(j.result -> 'latency_ms') = 'number') t),
                           '24h', (SELECT pg_catalog.jsonb_build_object('calls', pg_catalog.count(*),
                                      'p50_ms', pg_catalog.percentile_disc(0.5) WITHIN GROUP (ORDER BY l),
                                      'p95_ms', pg_catalog.percentile_disc(0.95) WITHIN GROUP (ORDER BY l),
                                      'p99_ms', pg_catalog.percentile_disc(0.99) WITHIN GROUP (ORDER BY l))
                                    FROM (SELECT (j.result ->> 'latency_ms')::numeric AS l FROM darkspere.jobs j
                                           WHERE j.finished_at > pg_catalog.now() - interval '24 hours'
                                             AND j.state = 'done' AND j.kind = 'agent_call'
                                             AND j.agent_id = a.agent_id
                                             AND pg_catalog.jsonb_typeof(j.result -> 'latency_ms') = 'number') t)),
                       -- Probes (issue #13's health probes) are not run yet: null until they are.
                       'probes', NULL::jsonb,
                       -- Newest first, from the health history (results_mask: bit i = the i-th newest failed).
                       'last_results', (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                                   'ok', (a.results_mask >> i) & 1 = 0) ORDER BY i), '[]')
                                          FROM pg_catalog.generate_series(0, LEAST(a.results_count, 10) - 1) i),
                       'last_heartbeat', CASE WHEN a.last_heartbeat_at IS NOT NULL THEN
                           pg_catalog.jsonb_build_object('at', a.last_heartbeat_at, 'status', a.heartbeat_status,
                                                         'load', a.heartbeat_load, 'version', a.heartbeat_version)
                           END)
              INTO result FROM darkspere.agents a WHERE a.agent_id = p_agent;
        WHEN 'usage' THEN
            SELECT pg_catalog.jsonb_build_object(
                       'account_id', who.account_id,
                       'period', pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'YYYY-MM'),
                       'metrics', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                           'metric', u.metric, 'used', u.used, 'included', u.included, 'overage', u.overage,
                           'overage_cents', u.overage_cents) ORDER BY u.metric), '[]'))
              INTO result FROM darkspere.usage(who.account_id) u;
        ELSE
            NULL;  -- agents.list, agents.get: read below
        END CASE;
    EXCEPTION
        WHEN unique_violation THEN
            RETURN QUERY SELECT 409, darkspere.api_error('conflict', SQLERRM), NULL::int;
            RETURN;
        WHEN configuration_limit_exceeded THEN
            RETURN QUERY SELECT 403, darkspere.api_error('plan_limit', SQLERRM), NULL::int;
            RETURN;
        WHEN data_exception OR check_violation THEN
            RETURN QUERY SELECT 422, darkspere.api_error('invalid_field', SQLERRM), NULL::int;
            RETURN;
    END;

    IF p_route IN ('agents.create', 'agents.get', 'agents.update', 'agents.delete', 'agents.list') THEN
        SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'agent_id', a.agent_id, 'name', a.name, 'endpoint', a.endpoint, 'protocol', a.protocol,
                   'capacity', a.capacity, 'tags', pg_catalog.to_jsonb(a.tags), 'status', a.status,
                   'health_score', a.health_score, 'circuit', a.circuit,
                   'load', (SELECT COALESCE(pg_catalog.sum(l.in_flight), 0) FROM darkspere.agent_load l
                             WHERE l.agent_id = a.agent_id)::int,
                   'last_heartbeat_at', a.last_heartbeat_at, 'created_at', a.created_at) ORDER BY a.agent_id),
                   '[]')
          INTO result
          FROM darkspere.agents a
         WHERE a.account_id = who.account_id AND (p_route = 'agents.list' OR a.agent_id = p_agent);
        IF p_route = 'agents.list' THEN
            result := pg_catalog.jsonb_build_object('agents', result);
        ELSE
            result := result -> 0;
        END IF;
        IF p_route = 'agents.create' THEN
            -- Shown once: only hashes (key) or nothing (signing secret) are kept.
            result := result || pg_catalog.jsonb_build_object('api_key', new_key, 'signing_secret', new_secret);
        END IF;
    END IF;
    RETURN QUERY SELECT code, result, NULL::int;
END
$fn$;
REVOKE ALL ON FUNCTION darkspere.create_account_key(bigint, text), darkspere.revoke_account_key(bigint),
    darkspere.authenticate_key(text), darkspere.rotate_agent_key(bigint, interval),
    darkspere.api_error(text, text, text), darkspere.api_call(text, text, text, bigint, jsonb) FROM PUBLIC;

------------------------------------------------------------------------------------------------------------------
-- Issue #14: message traces and latency percentiles (src/ext/trace.cpp; docs/operations.md "Finding a message")
------------------------------------------------------------------------------------------------------------------

-- One row per step of a message, written by the statements that already take that step (receive_sms, claim_jobs,
-- ack_jobs, record_delivery_status, tick()), in their transactions. Keyed by (account_id, request_id) so that,
-- distributed by account_id, a trace lives on one shard. No foreign key: the row is evidence of what happened and
-- must not cost a lookup per insert; rows of a deleted account go with darkspere.trace_retention.
-- latency_ms is the duration of the stage the row ends (darkspere.latency): agent_call_finished → agent_call,
-- sms_send_finished → sms_send, agent_call_started → queue_wait, replied → inbound_to_reply.
-- detail holds ids, codes, latencies and errors only: never a body, a phone number or a secret.
CREATE TABLE darkspere.trace_events (
    account_id  bigint      NOT NULL,
    request_id  text        NOT NULL,
    event_id    bigint      GENERATED ALWAYS AS IDENTITY,
    at          timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    step        text        NOT NULL,
    agent_id    bigint,
    latency_ms  integer,
    detail      jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (account_id, request_id, event_id)
);
-- latency() windows and tick()'s retention, oldest first.
CREATE INDEX trace_events_at ON darkspere.trace_events (at);
SELECT pg_catalog.pg_extension_config_dump('darkspere.trace_events', '');
SELECT pg_catalog.pg_extension_config_dump('darkspere.trace_events_event_id_seq', '');

-- trace — the timeline of one request, in the order it happened. Looked up per account through the primary key
-- (one index probe per account; on Citus one probe per shard).
CREATE FUNCTION darkspere.trace(request_id text)
RETURNS TABLE(at timestamptz, step text, detail jsonb)
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    IF trace.request_id IS NULL OR trace.request_id = '' THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'request_id must not be null or empty';
    END IF;
    RETURN QUERY
    SELECT t.at, t.step,
           t.detail || pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
               'agent_id', t.agent_id, 'latency_ms', t.latency_ms))
      FROM darkspere.accounts a
     CROSS JOIN LATERAL (SELECT e.at, e.event_id, e.step, e.agent_id, e.latency_ms, e.detail
                           FROM darkspere.trace_events e
                          WHERE e.account_id = a.account_id AND e.request_id = trace.request_id) t
     ORDER BY t.at, t.event_id;
END
$fn$;

-- trace_message — the timeline of the request an inbound or outbound message belongs to, found by its Twilio
-- MessageSid (a reply carries the request id of the message it answers).
CREATE FUNCTION darkspere.trace_message(message_sid text)
RETURNS TABLE(at timestamptz, step text, detail jsonb)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    found_account bigint;
    found_request text;
BEGIN
    IF trace_message.message_sid IS NULL OR trace_message.message_sid = '' THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'message_sid must not be null or empty';
    END IF;
    SELECT m.account_id, COALESCE(m.request_id, 'msg-' || COALESCE(m.reply_to, m.message_id))
      INTO found_account, found_request
      FROM darkspere.messages m WHERE m.message_sid = trace_message.message_sid;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'P0002',
            MESSAGE = pg_catalog.format('no message with message_sid %s', trace_message.message_sid);
    END IF;
    RETURN QUERY
    SELECT e.at, e.step,
           e.detail || pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
               'agent_id', e.agent_id, 'latency_ms', e.latency_ms))
      FROM darkspere.trace_events e
     WHERE e.account_id = found_account AND e.request_id = found_request
     ORDER BY e.at, e.event_id;
END
$fn$;

-- latency — exact percentiles of one stage over the window ending now, from the trace rows that end that stage.
CREATE FUNCTION darkspere.latency(stage text, since interval DEFAULT '1 hour', agent_id bigint DEFAULT NULL)
RETURNS TABLE(count bigint, p50_ms numeric, p95_ms numeric, p99_ms numeric)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    ending_step text;
BEGIN
    ending_step := CASE latency.stage
                       WHEN 'inbound_to_reply' THEN 'replied'
                       WHEN 'agent_call' THEN 'agent_call_finished'
                       WHEN 'sms_send' THEN 'sms_send_finished'
                       WHEN 'queue_wait' THEN 'agent_call_started'
                   END;
    IF ending_step IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('unknown latency stage: %s', COALESCE(latency.stage, 'NULL')),
            HINT = 'Stages are inbound_to_reply, agent_call, sms_send and queue_wait.';
    END IF;
    IF latency.since IS NULL OR latency.since <= interval '0' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('since must be a positive interval: %s', COALESCE(latency.since::text, 'NULL'));
    END IF;
    RETURN QUERY
    SELECT pg_catalog.count(*),
           pg_catalog.round(pg_catalog.percentile_cont(0.50) WITHIN GROUP (ORDER BY e.latency_ms)::numeric, 1),
           pg_catalog.round(pg_catalog.percentile_cont(0.95) WITHIN GROUP (ORDER BY e.latency_ms)::numeric, 1),
           pg_catalog.round(pg_catalog.percentile_cont(0.99) WITHIN GROUP (ORDER BY e.latency_ms)::numeric, 1)
      FROM darkspere.trace_events e
     WHERE e.at >= pg_catalog.now() - latency.since AND e.step = ending_step AND e.latency_ms IS NOT NULL
       AND (latency.agent_id IS NULL OR e.agent_id = latency.agent_id);
END
$fn$;
REVOKE ALL ON FUNCTION darkspere.trace(text), darkspere.trace_message(text),
    darkspere.latency(text, interval, bigint) FROM PUBLIC;

------------------------------------------------------------------------------------------------------------------
-- Privileges: keep this block last; every function added above gets its line here
------------------------------------------------------------------------------------------------------------------
--
-- Why last: CREATE OR REPLACE FUNCTION resets SECURITY DEFINER, the SET clause and the grants of a function, so a
-- function replaced after this block would silently lose them. docs/security.md ("## Privileges") holds the
-- table of who may execute what; test/pgtap/030_privileges.sql compares it with the catalog and names every
-- function that is missing from it.
--
-- Roles (NOLOGIN; grant them to login roles: GRANT darkspere_worker TO my_worker_login):
--   darkspere_worker   exactly the functions darkspere-worker calls, and darkspere.queue_depth for /metrics;
--                      no table rights: every function it calls is SECURITY DEFINER
--   darkspere_admin    tenant management (accounts, numbers, agents, plans, rate-limit rules and overrides),
--                      dead-letter requeue, usage and history; reads every table
--   darkspere_monitor  read-only views (queue_depth, agent_health) and usage
-- Roles are cluster-wide: another database may have created them already, possibly concurrently.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['darkspere_worker', 'darkspere_admin', 'darkspere_monitor'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created by a concurrent CREATE EXTENSION in another database
            END;
        END IF;
    END LOOP;
END
$$;

GRANT USAGE ON SCHEMA darkspere TO darkspere_worker, darkspere_admin, darkspere_monitor;

-- Functions that read or write tables run as the extension's owner, with a search_path no caller can influence
-- (every statement inside is schema-qualified; pg_temp last so no temporary object can shadow anything).
ALTER FUNCTION darkspere.create_account(text, text, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.add_number(bigint, text, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.register_agent(bigint, text, text, text, int)
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.rotate_agent_secret(bigint) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.set_agent_status(bigint, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.record_agent_result(bigint, boolean, int)
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.receive_sms(text, text, text, text, text, int, text)
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.receive_sms_leased(text, text, text, text, text, int, text, text, interval, bigint[])
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.receive_sms_batch(jsonb, text, interval, bigint[])
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.get_or_create_session(bigint, text, text)
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.history(bigint, int) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.claim_jobs(text, int, interval) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.claim_jobs(text, int, interval, bigint[])
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.claim_jobs(text, int, interval, bigint[], bigint[])
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.complete_job(bigint, int, jsonb) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.fail_job(bigint, int, text, boolean) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.ack_jobs(jsonb, text, interval, int) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.requeue_dead_job(bigint) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.record_delivery_status(text, text, text, int)
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.record_provider_opt_out(text, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.rate_limit(text, text, int) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.usage(bigint) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.tick() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.create_account_key(bigint, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.revoke_account_key(bigint) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.authenticate_key(text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.rotate_agent_key(bigint, interval) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.trace(text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.trace_message(text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.latency(text, interval, bigint) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.api_call(text, text, text, bigint, jsonb)
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
-- sms_segments, twilio_signature, twilio_signature_valid and stripe_signature_valid touch no table: they stay
-- SECURITY INVOKER and executable by PUBLIC, as in 0.1.0.

-- Nothing is executable by PUBLIC unless granted back below (0.1.0 did the same; repeated so that functions added
-- by this script are covered too).
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA darkspere FROM PUBLIC;
GRANT EXECUTE ON FUNCTION darkspere.sms_segments(text), darkspere.twilio_signature(text, text, jsonb),
    darkspere.twilio_signature_valid(text, text, jsonb, text),
    darkspere.stripe_signature_valid(text, text, text, int, timestamptz) TO PUBLIC;

-- darkspere_worker: what src/worker runs (receive_batcher.cpp, job_runner.cpp, routes_twilio.cpp, main.cpp).
GRANT EXECUTE ON FUNCTION
    darkspere.receive_sms(text, text, text, text, text, int, text),
    darkspere.receive_sms_leased(text, text, text, text, text, int, text, text, interval, bigint[]),
    darkspere.receive_sms_batch(jsonb, text, interval, bigint[]),
    darkspere.claim_jobs(text, int, interval, bigint[], bigint[]),
    darkspere.ack_jobs(jsonb, text, interval, int),
    darkspere.record_provider_opt_out(text, text),
    darkspere.record_delivery_status(text, text, text, int),
    darkspere.tick(),
    darkspere.api_call(text, text, text, bigint, jsonb)
    TO darkspere_worker;
GRANT SELECT ON darkspere.queue_depth TO darkspere_worker;

-- darkspere_admin: managing tenants and the queue's dead letters.
GRANT EXECUTE ON FUNCTION
    darkspere.create_account(text, text, text),
    darkspere.add_number(bigint, text, text),
    darkspere.register_agent(bigint, text, text, text, int),
    darkspere.rotate_agent_secret(bigint),
    darkspere.set_agent_status(bigint, text),
    darkspere.requeue_dead_job(bigint),
    darkspere.usage(bigint),
    darkspere.history(bigint, int),
    darkspere.create_account_key(bigint, text),
    darkspere.revoke_account_key(bigint),
    darkspere.rotate_agent_key(bigint, interval),
    darkspere.trace(text),
    darkspere.trace_message(text),
    darkspere.latency(text, interval, bigint)
    TO darkspere_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA darkspere TO darkspere_admin;
GRANT INSERT, UPDATE, DELETE ON darkspere.plans, darkspere.rate_limit_rules, darkspere.rate_limit_overrides
    TO darkspere_admin;
GRANT UPDATE, DELETE ON darkspere.accounts TO darkspere_admin;  -- texts, plan; create with create_account
GRANT DELETE ON darkspere.numbers TO darkspere_admin;           -- release a number; add with add_number

-- darkspere_monitor: read-only.
GRANT EXECUTE ON FUNCTION darkspere.usage(bigint), darkspere.trace(text), darkspere.trace_message(text),
    darkspere.latency(text, interval, bigint) TO darkspere_monitor;
GRANT SELECT ON darkspere.queue_depth, darkspere.agent_health TO darkspere_monitor;
