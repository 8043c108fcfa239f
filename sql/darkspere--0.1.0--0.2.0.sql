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
-- And the tenant its From number (ours) names for that AccountSid (issue #16: the statements on messages are then
-- pinned to one account). NULL: recorded without From (0.1.0, or a caller that does not pass it), or a From that
-- is no number of that AccountSid.
ALTER TABLE darkspere.delivery_events ADD COLUMN account_id bigint;
-- The signature and the result change (the outcome is returned), so the 0.1.0 function goes: an old caller
-- without an AccountSid must fail loudly rather than bypass the check.
DROP FUNCTION darkspere.record_delivery_status(text, text, int);
-- record_delivery_status — records one status callback signed for provider_account and returns what became of it:
-- 'applied' (the message's delivery state moved forward), 'unchanged' (an older or repeated status), 'pending' (no
-- outbound message has this sid yet; weighed when one does), 'account_mismatch' (the message's number, or the
-- callback's From, belongs to another AccountSid: nothing changes). from_number: the callback's From, our number
-- that sent the message (NULL: the message is found by its sid alone).
CREATE FUNCTION darkspere.record_delivery_status(provider_account text, message_sid text, status text,
                                                 error_code int DEFAULT NULL, from_number text DEFAULT NULL)
-- A new C symbol: a 0.1.0 database that loads this library before it is updated reaches the old symbol, which
-- refuses (the old arguments carry no AccountSid) instead of reading them as the new ones.
RETURNS text AS 'MODULE_PATHNAME', 'darkspere_record_delivery_status_v2' LANGUAGE C VOLATILE PARALLEL UNSAFE;
-- Like every tenant-facing function (0.1.0 revoked them all from PUBLIC); the role grants come in the last block.
REVOKE ALL ON FUNCTION darkspere.record_delivery_status(text, text, text, int, text) FROM PUBLIC;

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

-- A state row keeps the rule in force at its last hit: the limit upsert reads the rule in its own SELECT and the
-- update takes it from EXCLUDED, so no CTE stands between the rule and the ON CONFLICT (on Citus the rules are
-- reference tables, and Citus plans such a CTE apart from the update that reads it). NULL until the next hit.
ALTER TABLE darkspere.rate_limit_state ADD COLUMN max_hits int, ADD COLUMN window_s int, ADD COLUMN block_s int;

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

-- API requests are counted per account and month like SMS and agent messages (metric api_requests; feature
-- api_access, issue #15).
ALTER TABLE darkspere.usage_counters DROP CONSTRAINT usage_counters_metric_check;
ALTER TABLE darkspere.usage_counters ADD CONSTRAINT usage_counters_metric_check
    CHECK (metric IN ('sms_in', 'sms_out', 'agent_messages', 'api_requests'));

-- api_error — the body of an API error: {"error": {"code", "message"[, "field"]}}.
CREATE FUNCTION darkspere.api_error(code text, message text, field text DEFAULT NULL)
RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.jsonb_build_object('error', pg_catalog.jsonb_strip_nulls(
        pg_catalog.jsonb_build_object('code', code, 'message', message, 'field', field)))
$$;

-- api_call — one HTTP API request, decided whole (the worker maps a route to this one call; docs/api.md).
-- route: agents.create, agents.list, agents.get, agents.update, agents.delete, agents.rotate_key,
-- agents.heartbeat, agents.health, usage, billing.checkout, billing.portal, billing.cancel (these answer status 0
-- with the Stripe request to make: billing_prepare). agent_id: the {id} of the path. body: the parsed JSON body or NULL.
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
    api_ok boolean;
    api_limit bigint;
    api_plan text;
BEGIN
    PERFORM darkspere.commit_atomically();  -- on Citus: one atomic commit over the nodes it writes
    IF p_route IS NULL OR p_route NOT IN ('agents.create', 'agents.list', 'agents.get', 'agents.update',
                                          'agents.delete', 'agents.rotate_key', 'agents.heartbeat',
                                          'agents.health', 'usage', 'billing.checkout', 'billing.portal',
                                          'billing.cancel') THEN
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
    -- api_access (issue #15): each request of an account (its keys and its agents' keys) counts toward its
    -- monthly API requests (usage metric api_requests); past the plan's limit the API answers 429 until the month
    -- ends. Billing routes and usage stay open and are not counted, so an account at its limit can upgrade.
    IF p_route NOT IN ('usage', 'billing.checkout', 'billing.portal', 'billing.cancel') THEN
        SELECT f.allowed, f.monthly_limit, f.plan INTO api_ok, api_limit, api_plan
          FROM darkspere.feature_access(who.account_id, 'api_access') f;
        IF NOT api_ok THEN
            RETURN QUERY SELECT 429, darkspere.api_error('plan_limit',
                'the monthly limit of ' || api_limit || ' API requests on plan ' || api_plan
                || ' is reached (feature api_access): upgrade the plan, or wait for the next month'),
                GREATEST(1, pg_catalog.ceil(EXTRACT(epoch FROM
                    (pg_catalog.date_trunc('month', pg_catalog.now() AT TIME ZONE 'UTC') + interval '1 month')
                    AT TIME ZONE 'UTC' - pg_catalog.now())))::int;
            RETURN;
        END IF;
        INSERT INTO darkspere.usage_counters AS u (account_id, period, metric, shard, used)
        VALUES (who.account_id, pg_catalog.date_trunc('month', pg_catalog.now() AT TIME ZONE 'UTC')::date,
                'api_requests', (pg_catalog.pg_backend_pid() % 16)::smallint, 1)
        ON CONFLICT (account_id, period, metric, shard) DO UPDATE SET used = u.used + 1;
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
            IF p_route = 'agents.create' AND k NOT IN ('name', 'endpoint', 'protocol', 'capacity', 'tags',
                                                       'probe_path', 'tool_name')
               OR p_route = 'agents.update' AND k NOT IN ('endpoint', 'capacity', 'tags', 'status', 'probe_path',
                                                          'tool_name')
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
            ELSIF k = 'probe_path' THEN
                IF pg_catalog.jsonb_typeof(v) <> 'string'
                   OR v #>> '{}' !~ '^/[A-Za-z0-9._~!$&''()*+,;=:@/%?-]{0,199}$' THEN
                    problem := 'must be a path starting with "/", at most 200 characters of '
                               '[A-Za-z0-9._~!$&''()*+,;=:@/%?-]';
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
            ELSIF k = 'tool_name' THEN
                -- null: back to the default (the tool named "chat", else the only tool)
                IF pg_catalog.jsonb_typeof(v) <> 'null' AND (pg_catalog.jsonb_typeof(v) <> 'string'
                   OR pg_catalog.length(v #>> '{}') NOT BETWEEN 1 AND 128 OR v #>> '{}' ~ '[[:cntrl:]]') THEN
                    problem := 'must be null or a string of 1 to 128 characters without control characters';
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
            UPDATE darkspere.agents a SET probe_path = p_body ->> 'probe_path'
             WHERE a.agent_id = new_id AND p_body ? 'probe_path';
            UPDATE darkspere.agents a SET tool_name = p_body ->> 'tool_name'
             WHERE a.agent_id = new_id AND p_body ? 'tool_name';
            p_agent := new_id;
            code := 201;
        WHEN 'agents.update' THEN
            UPDATE darkspere.agents a
               SET endpoint = COALESCE(p_body ->> 'endpoint', a.endpoint),
                   capacity = COALESCE((p_body ->> 'capacity')::int, a.capacity),
                   probe_path = COALESCE(p_body ->> 'probe_path', a.probe_path),
                   tool_name = CASE WHEN p_body ? 'tool_name' THEN p_body ->> 'tool_name' ELSE a.tool_name END,
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
                       -- Health probes (darkspere.agent_checks): latency percentiles of the passing ones,
                       -- uptime (share passing) over 1 h and 24 h, and the last 10 results, newest first.
                       'probes', (SELECT pg_catalog.jsonb_object_agg(w.label, (
                                      SELECT pg_catalog.jsonb_build_object('checks', pg_catalog.count(*),
                                          'failed', pg_catalog.count(*) FILTER (WHERE NOT c.ok),
                                          'uptime', pg_catalog.round(100.0 * pg_catalog.count(*) FILTER (WHERE c.ok)
                                                                     / NULLIF(pg_catalog.count(*), 0), 1),
                                          'p50_ms', pg_catalog.percentile_disc(0.5) WITHIN GROUP (ORDER BY c.latency_ms)
                                                        FILTER (WHERE c.ok),
                                          'p95_ms', pg_catalog.percentile_disc(0.95) WITHIN GROUP (ORDER BY c.latency_ms)
                                                        FILTER (WHERE c.ok),
                                          'p99_ms', pg_catalog.percentile_disc(0.99) WITHIN GROUP (ORDER BY c.latency_ms)
                                                        FILTER (WHERE c.ok))
                                        FROM darkspere.agent_checks c
                                       WHERE c.account_id = a.account_id AND c.agent_id = a.agent_id
                                         AND c.checked_at > pg_catalog.now() - w.span))
                                    FROM (VALUES ('1h', interval '1 hour'), ('24h', interval '24 hours')) w(label, span)),
                       'probe_path', a.probe_path,
                       'consecutive_probe_failures', a.probe_failures,
                       'consecutive_probe_passes', a.probe_passes,
                       'last_checks', (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                                  'check_id', c.check_id, 'at', c.checked_at, 'ok', c.ok,
                                                  'latency_ms', c.latency_ms, 'error', c.error)
                                                  ORDER BY c.check_id DESC), '[]')
                                         FROM (SELECT * FROM darkspere.agent_checks c
                                                WHERE c.account_id = a.account_id AND c.agent_id = a.agent_id
                                                ORDER BY c.check_id DESC LIMIT 10) c),
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
        WHEN 'billing.checkout', 'billing.portal', 'billing.cancel' THEN
            -- Stripe is called by the worker: status 0 hands it the request to send, billing_result takes the
            -- answer (issue #15; docs/billing.md "Checkout, portal and cancel").
            RETURN QUERY SELECT b.http_status, b.response, NULL::int
                           FROM darkspere.billing_prepare(who.account_id, p_route, p_body) b;
            RETURN;
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
                   'probe_path', a.probe_path, 'tool_name', a.tool_name,
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
            -- One agent: with its MCP tools as last listed (a list of agents leaves them out: up to 100 each).
            SELECT result -> 0 || pg_catalog.jsonb_build_object('tools', a.tools, 'tools_checked_at', a.tools_checked_at)
              INTO result FROM darkspere.agents a WHERE a.agent_id = p_agent;
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
-- Issue #13: health probes, auto-disable and recovery (src/ext/probes.cpp, src/ext/agent_events.cpp;
-- docs/operations.md "Agent health probes")
------------------------------------------------------------------------------------------------------------------

-- 'unhealthy': taken out of rotation by failing probes (darkspere.auto_disable_after in a row), put back by
-- passing ones (darkspere.auto_recover_after). The router takes only 'active' agents, so an unhealthy agent gets
-- no new turns and its sessions move at their next message. Only probes set or clear it; 'maintenance' and
-- 'disabled', which a person sets, are never changed by probes.
ALTER TABLE darkspere.agents DROP CONSTRAINT agents_status_check;
ALTER TABLE darkspere.agents ADD CONSTRAINT agents_status_check
    CHECK (status IN ('active', 'maintenance', 'disabled', 'unhealthy'));
-- The path probed on the endpoint's origin (http agents: GET {origin}{probe_path}); set by POST/PATCH
-- /api/agents.
ALTER TABLE darkspere.agents ADD COLUMN probe_path text NOT NULL DEFAULT '/health'
    CONSTRAINT agents_probe_path_check CHECK (probe_path ~ '^/[A-Za-z0-9._~!$&''()*+,;=:@/%?-]{0,199}$');
-- Probe bookkeeping: when tick() schedules the next probe, when the last result came, and the run of
-- consecutive failed / passed probes (one of the two is 0).
ALTER TABLE darkspere.agents ADD COLUMN next_probe_at timestamptz;
ALTER TABLE darkspere.agents ADD COLUMN last_probe_at timestamptz;
ALTER TABLE darkspere.agents ADD COLUMN probe_failures int NOT NULL DEFAULT 0 CHECK (probe_failures >= 0);
ALTER TABLE darkspere.agents ADD COLUMN probe_passes int NOT NULL DEFAULT 0 CHECK (probe_passes >= 0);
-- tick() looks up the agents due for a probe.
CREATE INDEX agents_probe_due ON darkspere.agents (next_probe_at NULLS FIRST)
    WHERE status IN ('active', 'unhealthy');

-- One row per probe result, kept darkspere.agent_check_retention (7 days) and pruned by tick(). Keyed by
-- account first, so the table can be distributed by account_id.
CREATE TABLE darkspere.agent_checks (
    account_id bigint NOT NULL REFERENCES darkspere.accounts ON DELETE CASCADE,
    agent_id   bigint NOT NULL,
    check_id   bigserial,
    checked_at timestamptz NOT NULL DEFAULT now(),
    ok         boolean NOT NULL,
    latency_ms int CHECK (latency_ms >= 0),
    error      text,                      -- why it failed (never the agent's own text)
    PRIMARY KEY (account_id, agent_id, check_id)
);
CREATE INDEX agent_checks_checked ON darkspere.agent_checks (checked_at);
SELECT pg_catalog.pg_extension_config_dump('darkspere.agent_checks', '');
SELECT pg_catalog.pg_extension_config_dump('darkspere.agent_checks_check_id_seq', '');

-- Every change of an agent's status: by whom (actor: 'probe', or 'person:<login>' for set_agent_status and the
-- API), from, to, why. Kept for ever (an audit trail; a few rows per agent and incident). Each row is also a
-- NOTIFY darkspere_agents with the agent id.
CREATE TABLE darkspere.agent_events (
    account_id  bigint NOT NULL REFERENCES darkspere.accounts ON DELETE CASCADE,
    agent_id    bigint NOT NULL,
    event_id    bigserial,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    from_status text NOT NULL,
    to_status   text NOT NULL,
    reason      text NOT NULL,
    PRIMARY KEY (account_id, agent_id, event_id)
);
SELECT pg_catalog.pg_extension_config_dump('darkspere.agent_events', '');
SELECT pg_catalog.pg_extension_config_dump('darkspere.agent_events_event_id_seq', '');

-- agent_health with the probes: uptime over 24 h (share of passing checks), latency percentiles of the passing
-- probes over 24 h, failures among the last 10 checks and the last check. New columns at the end.
CREATE OR REPLACE VIEW darkspere.agent_health AS
    SELECT a.account_id, a.agent_id, a.name, a.status, a.health_score, a.circuit, a.circuit_until,
           a.consecutive_failures, a.latency_ms, a.last_result_at,
           (SELECT pg_catalog.sum(l.in_flight) FROM darkspere.agent_load l WHERE l.agent_id = a.agent_id)::int
               AS in_flight,
           p.uptime_24h, p.probe_p50_ms, p.probe_p95_ms, p.probe_p99_ms,
           (SELECT pg_catalog.count(*) FILTER (WHERE NOT c.ok)
              FROM (SELECT c.ok FROM darkspere.agent_checks c
                     WHERE c.account_id = a.account_id AND c.agent_id = a.agent_id
                     ORDER BY c.check_id DESC LIMIT 10) c)::int AS failures_last_10,
           a.last_probe_at AS last_check_at,
           (SELECT c.ok FROM darkspere.agent_checks c WHERE c.account_id = a.account_id AND c.agent_id = a.agent_id
             ORDER BY c.check_id DESC LIMIT 1) AS last_check_ok,
           a.capacity, a.last_heartbeat_at
    FROM darkspere.agents a
    LEFT JOIN LATERAL (
        SELECT pg_catalog.round(100.0 * pg_catalog.count(*) FILTER (WHERE c.ok)
                                / NULLIF(pg_catalog.count(*), 0), 1) AS uptime_24h,
               pg_catalog.percentile_disc(0.5) WITHIN GROUP (ORDER BY c.latency_ms) FILTER (WHERE c.ok)
                   AS probe_p50_ms,
               pg_catalog.percentile_disc(0.95) WITHIN GROUP (ORDER BY c.latency_ms) FILTER (WHERE c.ok)
                   AS probe_p95_ms,
               pg_catalog.percentile_disc(0.99) WITHIN GROUP (ORDER BY c.latency_ms) FILTER (WHERE c.ok)
                   AS probe_p99_ms
          FROM darkspere.agent_checks c
         WHERE c.account_id = a.account_id AND c.agent_id = a.agent_id
           AND c.checked_at > pg_catalog.now() - interval '24 hours') p ON true;
-- Issue #15 (first slice): feature gates, Stripe subscriptions from signed webhooks (docs/billing.md)
------------------------------------------------------------------------------------------------------------------

-- The features a plan may gate. usage_metric: the usage_counters metric a monthly limit is counted in, or
-- 'agents' / 'numbers' (what the account has now), or NULL (an on/off gate). Rows of an operator's own are
-- dumped; the seed comes with the extension.
CREATE TABLE darkspere.features (
    feature      text PRIMARY KEY,
    usage_metric text,
    description  text NOT NULL,
    is_seed      boolean NOT NULL DEFAULT false
);
INSERT INTO darkspere.features (feature, usage_metric, description) VALUES
    ('sms_inbound',         'sms_in',         'inbound SMS segments a month'),
    ('sms_outbound',        'sms_out',        'outbound SMS segments a month'),
    ('agent_routing',       'agent_messages', 'agent messages (answered turns) a month'),
    ('api_access',          'api_requests',   'HTTP API requests a month'),
    ('mcp_protocol',        NULL,             'agents that speak MCP'),
    ('priority_routing',    NULL,             'jobs ahead of other accounts under contention'),
    ('health_monitoring',   NULL,             'agent health checks and their history'),
    ('analytics_dashboard', NULL,             'the analytics dashboard'),
    ('custom_agents',       'agents',         'agents of the account'),
    ('multi_phone',         'numbers',        'service numbers of the account'),
    ('advanced_security',   NULL,             'advanced security controls'),
    ('dedicated_support',   NULL,             'dedicated support');
UPDATE darkspere.features SET is_seed = true;
SELECT pg_catalog.pg_extension_config_dump('darkspere.features', 'WHERE NOT is_seed');

-- What each plan includes. monthly_limit NULL: no limit. A plan without a row for a feature does not have it.
-- The quota (src/ext/billing.cpp) reads sms_inbound, sms_outbound and agent_routing from here; plans'
-- *_included columns are kept for 0.1.0 callers but no longer decide anything.
CREATE TABLE darkspere.plan_features (
    plan          text NOT NULL REFERENCES darkspere.plans ON UPDATE CASCADE ON DELETE CASCADE,
    feature       text NOT NULL REFERENCES darkspere.features,
    enabled       boolean NOT NULL,
    monthly_limit bigint CHECK (monthly_limit >= 0),
    is_seed       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (plan, feature)
);
INSERT INTO darkspere.plan_features (plan, feature, enabled, monthly_limit, is_seed)
SELECT v.plan, v.feature, v.enabled, v.monthly_limit, true
  FROM (VALUES
    ('free', 'sms_inbound', true, 100::bigint), ('pro', 'sms_inbound', true, 5000), ('enterprise', 'sms_inbound', true, NULL),
    ('free', 'sms_outbound', true, 50), ('pro', 'sms_outbound', true, 2000), ('enterprise', 'sms_outbound', true, NULL),
    ('free', 'agent_routing', true, 500), ('pro', 'agent_routing', true, 10000), ('enterprise', 'agent_routing', true, NULL),
    ('free', 'api_access', true, 1000), ('pro', 'api_access', true, 50000), ('enterprise', 'api_access', true, NULL),
    ('free', 'mcp_protocol', false, NULL), ('pro', 'mcp_protocol', true, NULL), ('enterprise', 'mcp_protocol', true, NULL),
    ('free', 'priority_routing', false, NULL), ('pro', 'priority_routing', true, NULL),
    ('enterprise', 'priority_routing', true, NULL),
    ('free', 'health_monitoring', false, NULL), ('pro', 'health_monitoring', true, NULL),
    ('enterprise', 'health_monitoring', true, NULL),
    ('free', 'analytics_dashboard', false, NULL), ('pro', 'analytics_dashboard', true, NULL),
    ('enterprise', 'analytics_dashboard', true, NULL),
    ('free', 'custom_agents', false, NULL), ('pro', 'custom_agents', true, 5), ('enterprise', 'custom_agents', true, NULL),
    ('free', 'multi_phone', false, NULL), ('pro', 'multi_phone', true, 10), ('enterprise', 'multi_phone', true, NULL),
    ('free', 'advanced_security', false, NULL), ('pro', 'advanced_security', false, NULL),
    ('enterprise', 'advanced_security', true, NULL),
    ('free', 'dedicated_support', false, NULL), ('pro', 'dedicated_support', false, NULL),
    ('enterprise', 'dedicated_support', true, NULL)
  ) v(plan, feature, enabled, monthly_limit)
  JOIN darkspere.plans p ON p.plan = v.plan;  -- an operator who deleted a seed plan in 0.1.0 gets no rows for it
SELECT pg_catalog.pg_extension_config_dump('darkspere.plan_features', 'WHERE NOT is_seed');
-- Agents and numbers are limited by custom_agents and multi_phone now (src/ext/accounts.cpp): a plan an operator
-- made in 0.1.0 keeps the max_agents / max_numbers it had, as rows of its own (dumped). Without the feature an
-- account has one agent and one number.
INSERT INTO darkspere.plan_features (plan, feature, enabled, monthly_limit)
SELECT p.plan, v.feature, true, v.monthly_limit
  FROM darkspere.plans p
 CROSS JOIN LATERAL (VALUES ('custom_agents', p.max_agents::bigint), ('multi_phone', p.max_numbers::bigint))
       v(feature, monthly_limit)
 WHERE NOT p.is_seed;

-- Per-account exceptions to the plan (a trial of a feature, a raised limit): while not expired, a row replaces
-- the plan's row for that feature. monthly_limit NULL: no limit.
CREATE TABLE darkspere.account_features (
    account_id    bigint NOT NULL REFERENCES darkspere.accounts ON DELETE CASCADE,
    feature       text NOT NULL REFERENCES darkspere.features,
    enabled       boolean NOT NULL,
    monthly_limit bigint CHECK (monthly_limit >= 0),
    expires_at    timestamptz,
    reason        text NOT NULL CHECK (reason <> ''),
    PRIMARY KEY (account_id, feature)
);
SELECT pg_catalog.pg_extension_config_dump('darkspere.account_features', '');

-- Which plan a Stripe price buys (the operator fills it: docs/billing.md).
CREATE TABLE darkspere.plan_prices (
    price_id text PRIMARY KEY CHECK (price_id <> ''),
    plan     text NOT NULL REFERENCES darkspere.plans ON UPDATE CASCADE
);
SELECT pg_catalog.pg_extension_config_dump('darkspere.plan_prices', '');

-- Every Stripe event taken, once (the primary key makes a redelivery 'duplicate'). Not per tenant: an event is
-- known by its id before any account is. object_id: data.object.id, to find the newest subscription event
-- that arrived before checkout linked its account. Pruned by tick() after 30 days (Stripe retries for 3).
CREATE TABLE darkspere.stripe_events (
    event_id    text PRIMARY KEY,
    type        text NOT NULL,
    created     timestamptz NOT NULL,  -- event.created
    object_id   text,
    account_id  bigint,                -- the account it was applied to; NULL: none (yet)
    outcome     text NOT NULL CHECK (outcome IN ('processed', 'ignored')),
    received_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    payload     jsonb NOT NULL
);
CREATE INDEX stripe_events_received_at ON darkspere.stripe_events (received_at);
CREATE INDEX stripe_events_object ON darkspere.stripe_events (object_id, created) WHERE object_id IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('darkspere.stripe_events', '');

-- An account's current Stripe subscription (one per account). state_at / state_rank: the event time and kind
-- (created 1, updated 2, deleted 3) of the subscription state applied; an older event never replaces it.
-- invoice_at: the newest invoice event applied. past_due_since: the first unpaid failure since the last
-- payment; darkspere.payment_grace after it the account is held to the free plan (effective_plan).
CREATE TABLE darkspere.subscriptions (
    account_id             bigint PRIMARY KEY REFERENCES darkspere.accounts ON DELETE CASCADE,
    stripe_customer_id     text NOT NULL,
    stripe_subscription_id text,
    status                 text,
    price_id               text,
    plan                   text REFERENCES darkspere.plans ON UPDATE CASCADE,
    current_period_end     timestamptz,
    cancel_at_period_end   boolean NOT NULL DEFAULT false,
    past_due_since         timestamptz,
    state_at               timestamptz,
    state_rank             smallint,
    invoice_at             timestamptz,
    updated_at             timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX subscriptions_subscription ON darkspere.subscriptions (stripe_subscription_id);
CREATE INDEX subscriptions_customer ON darkspere.subscriptions (stripe_customer_id);
CREATE INDEX accounts_stripe_customer ON darkspere.accounts (stripe_customer_id)
    WHERE stripe_customer_id IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('darkspere.subscriptions', '');

-- Every change of accounts.plan made by a Stripe event, and why.
CREATE TABLE darkspere.account_plan_history (
    account_id bigint NOT NULL REFERENCES darkspere.accounts ON DELETE CASCADE,
    changed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    history_id bigserial,
    old_plan   text,
    new_plan   text NOT NULL,
    reason     text NOT NULL,
    event_id   text,
    PRIMARY KEY (account_id, history_id)
);
SELECT pg_catalog.pg_extension_config_dump('darkspere.account_plan_history', '');
SELECT pg_catalog.pg_extension_config_dump('darkspere.account_plan_history_history_id_seq', '');

-- effective_plan — the plan whose limits apply now: the account's plan, or 'free' while a payment is more than
-- darkspere.payment_grace past due. NULL for an unknown account.
-- PL/pgSQL, not SQL: it is never inlined (SECURITY DEFINER), and Citus cannot plan a SQL function's parameters
-- against distributed tables ("could not create distributed plan"); both tables are pinned to the account, so on
-- Citus it is one single-shard query.
CREATE FUNCTION darkspere.effective_plan(account_id bigint)
RETURNS text LANGUAGE plpgsql STABLE AS $fn$
#variable_conflict use_column
DECLARE
    v_plan text;
BEGIN
    SELECT CASE WHEN s.past_due_since + COALESCE(NULLIF(pg_catalog.current_setting('darkspere.payment_grace', true),
                                                        ''), '7 days')::interval <= pg_catalog.now()
                THEN 'free' ELSE a.plan END
      INTO v_plan
      FROM darkspere.accounts a
      LEFT JOIN darkspere.subscriptions s ON s.account_id = a.account_id AND s.account_id = effective_plan.account_id
     WHERE a.account_id = effective_plan.account_id;
    RETURN v_plan;
END
$fn$;

-- account_features_now — every feature for the account as it applies now: the effective plan's row, replaced
-- by an unexpired override. A plan without rows for sms_inbound, sms_outbound or agent_routing (one an operator
-- made before 0.2.0) keeps the limits of its *_included columns. For the functions above (owner only).
CREATE FUNCTION darkspere.account_features_now(account_id bigint)
RETURNS TABLE (feature text, plan text, enabled boolean, monthly_limit bigint, override_reason text)
LANGUAGE plpgsql STABLE ROWS 12 AS $fn$
#variable_conflict use_column
DECLARE
    p_account bigint := account_features_now.account_id;
    -- Read first, not inside the query below: on Citus that query runs on a worker node, where a function
    -- that reads distributed tables cannot run ("cannot execute a distributed query from a query on a shard").
    v_plan text := darkspere.effective_plan(p_account);
BEGIN
    RETURN QUERY
    SELECT f.feature, v_plan,
           COALESCE(o.enabled, pf.enabled, f.feature IN ('sms_inbound', 'sms_outbound', 'agent_routing')),
           CASE WHEN o.feature IS NOT NULL THEN o.monthly_limit
                WHEN pf.feature IS NOT NULL THEN pf.monthly_limit
                WHEN f.feature = 'sms_inbound' THEN p.sms_in_included
                WHEN f.feature = 'sms_outbound' THEN p.sms_out_included
                WHEN f.feature = 'agent_routing' THEN p.agent_messages_included END,
           o.reason
      FROM darkspere.plans p
     CROSS JOIN darkspere.features f
      LEFT JOIN darkspere.plan_features pf ON pf.plan = v_plan AND pf.feature = f.feature
      LEFT JOIN darkspere.account_features o ON o.account_id = p_account
           AND o.feature = f.feature AND (o.expires_at IS NULL OR o.expires_at > pg_catalog.now())
     WHERE p.plan = v_plan;
END
$fn$;

-- feature_access — may the account use the feature now, and how much is left this month. used: this month's
-- usage of a metered feature, the agents or numbers it has for custom_agents / multi_phone, NULL for an on/off
-- gate. remaining NULL: no limit.
CREATE FUNCTION darkspere.feature_access(account_id bigint, feature text)
RETURNS TABLE (allowed boolean, plan text, monthly_limit bigint, used bigint, remaining bigint, reason text)
LANGUAGE plpgsql STABLE AS $fn$
#variable_conflict use_column
DECLARE
    p_account bigint := feature_access.account_id;
    p_feature text := feature_access.feature;
    f record;
    v_metric text;
    n bigint;
    held boolean;
BEGIN
    IF p_account IS NULL OR p_feature IS NULL THEN
        RAISE EXCEPTION '% must not be null', CASE WHEN p_account IS NULL THEN 'account_id' ELSE 'feature' END
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT x.usage_metric INTO v_metric FROM darkspere.features x WHERE x.feature = p_feature;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown feature: "%"', p_feature USING ERRCODE = 'invalid_parameter_value',
            HINT = 'the features are listed in darkspere.features';
    END IF;
    SELECT * INTO f FROM darkspere.account_features_now(p_account) a WHERE a.feature = p_feature;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', p_account USING ERRCODE = 'undefined_object';
    END IF;
    SELECT a.plan IS DISTINCT FROM f.plan INTO held FROM darkspere.accounts a WHERE a.account_id = p_account;
    IF v_metric IN ('sms_in', 'sms_out', 'agent_messages', 'api_requests') THEN
        SELECT COALESCE(sum(u.used), 0)::bigint INTO n FROM darkspere.usage_counters u
         WHERE u.account_id = p_account AND u.metric = v_metric
           AND u.period = pg_catalog.date_trunc('month', pg_catalog.now() AT TIME ZONE 'UTC')::date;
    ELSIF v_metric = 'agents' THEN
        -- As register_agent counts them (src/ext/accounts.cpp): a disabled agent takes no slot.
        SELECT pg_catalog.count(*) INTO n FROM darkspere.agents g
         WHERE g.account_id = p_account AND g.status <> 'disabled';
    ELSIF v_metric = 'numbers' THEN
        SELECT pg_catalog.count(*) INTO n FROM darkspere.numbers x WHERE x.account_id = p_account;
    END IF;
    RETURN QUERY SELECT
        f.enabled AND (f.monthly_limit IS NULL OR n IS NULL OR n < f.monthly_limit),
        f.plan, f.monthly_limit, n,
        CASE WHEN f.enabled AND f.monthly_limit IS NOT NULL THEN GREATEST(f.monthly_limit - COALESCE(n, 0), 0) END,
        CASE WHEN f.override_reason IS NOT NULL THEN 'account override: ' || f.override_reason
             WHEN NOT f.enabled AND held THEN 'held to the free plan: payment past due'
             WHEN NOT f.enabled THEN 'not included in plan ' || f.plan
             WHEN f.monthly_limit IS NOT NULL AND n >= f.monthly_limit THEN
                 'monthly limit of ' || f.monthly_limit || ' reached on plan ' || f.plan
             WHEN held THEN 'held to the free plan: payment past due'
             ELSE 'included in plan ' || f.plan END;
END
$fn$;

-- stripe_apply_subscription — applies one subscription object (from a customer.subscription.* event of time
-- `at`) to the account, unless the account already holds a newer state. Returns whether it applied.
CREATE FUNCTION darkspere.stripe_apply_subscription(account_id bigint, obj jsonb, at timestamptz, rank smallint,
                                                    event_id text)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    p_account bigint := stripe_apply_subscription.account_id;
    cur record;
    st text := obj->>'status';
    item jsonb;
    price text;
    paid_plan text;
    new_plan text;
    period_end timestamptz;
    old_plan text;
BEGIN
    -- The account first, then its subscription: the order checkout.session.completed takes them in. NO KEY
    -- UPDATE, not UPDATE: it serializes the account's events all the same, and lets the messages in flight
    -- (their foreign-key checks take KEY SHARE on the account) finish while a plan change waits for them
    -- (darkspere.plan_change_lock).
    PERFORM FROM darkspere.accounts a WHERE a.account_id = p_account FOR NO KEY UPDATE;
    SELECT * INTO cur FROM darkspere.subscriptions s WHERE s.account_id = p_account FOR UPDATE;
    IF FOUND AND cur.state_at IS NOT NULL
       AND (cur.state_at > at OR (cur.state_at = at AND cur.state_rank > rank)) THEN
        RETURN false;  -- an older state than the one held: never backwards
    END IF;
    IF st IS NULL OR pg_catalog.jsonb_typeof(obj->'status') <> 'string' THEN
        RAISE EXCEPTION 'invalid Stripe event: data.object.status must be a string'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.jsonb_typeof(obj#>'{items,data}') IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'invalid Stripe event: data.object.items.data must be an array'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Since API version 2025-03-31.basil the period is on each item; the plan is the first item's price that
    -- plan_prices knows.
    FOR item IN SELECT * FROM pg_catalog.jsonb_array_elements(obj#>'{items,data}') LOOP
        IF pg_catalog.jsonb_typeof(item#>'{price,id}') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'invalid Stripe event: data.object.items.data[].price.id must be a string'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF item ? 'current_period_end' THEN
            IF pg_catalog.jsonb_typeof(item->'current_period_end') <> 'number' THEN
                RAISE EXCEPTION 'invalid Stripe event: data.object.items.data[].current_period_end must be a number'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            period_end := GREATEST(period_end, pg_catalog.to_timestamp((item->>'current_period_end')::numeric));
        END IF;
        IF paid_plan IS NULL THEN
            SELECT pp.plan, pp.price_id INTO paid_plan, price
              FROM darkspere.plan_prices pp WHERE pp.price_id = item#>>'{price,id}';
        END IF;
    END LOOP;
    IF paid_plan IS NULL AND st IN ('active', 'trialing', 'past_due') THEN
        -- Not 22xxx: the event is fine, the configuration lacks the price. The worker answers 500 and Stripe
        -- retries until the operator maps it (docs/billing.md).
        RAISE EXCEPTION 'no plan for the prices of Stripe subscription "%": add them to darkspere.plan_prices',
            obj->>'id' USING ERRCODE = 'undefined_object';
    END IF;
    -- Paid states keep the plan bought (a past_due one until the grace runs out: effective_plan); any other
    -- (incomplete, incomplete_expired, unpaid, paused, canceled) is the free plan.
    new_plan := CASE WHEN st IN ('active', 'trialing', 'past_due') AND rank < 3 THEN paid_plan ELSE 'free' END;
    UPDATE darkspere.subscriptions s
       SET stripe_subscription_id = obj->>'id', status = CASE WHEN rank = 3 THEN 'canceled' ELSE st END,
           price_id = price, plan = new_plan, current_period_end = period_end,
           cancel_at_period_end = COALESCE((obj->>'cancel_at_period_end')::boolean, false),
           state_at = at, state_rank = rank, updated_at = pg_catalog.now(),
           past_due_since = CASE WHEN rank = 3 THEN NULL ELSE s.past_due_since END
     WHERE s.account_id = p_account;
    IF NOT FOUND THEN
        INSERT INTO darkspere.subscriptions (account_id, stripe_customer_id, stripe_subscription_id, status,
                                             price_id, plan, current_period_end, cancel_at_period_end, state_at,
                                             state_rank)
        VALUES (p_account, obj->>'customer', obj->>'id', CASE WHEN rank = 3 THEN 'canceled' ELSE st END, price,
                new_plan, period_end, COALESCE((obj->>'cancel_at_period_end')::boolean, false), at, rank);
    END IF;
    SELECT a.plan INTO old_plan FROM darkspere.accounts a WHERE a.account_id = p_account;
    IF old_plan IS DISTINCT FROM new_plan THEN
        UPDATE darkspere.accounts a SET plan = new_plan WHERE a.account_id = p_account;
        INSERT INTO darkspere.account_plan_history (account_id, old_plan, new_plan, reason, event_id)
        VALUES (p_account, old_plan, new_plan, 'subscription ' || CASE WHEN rank = 3 THEN 'deleted' ELSE st END,
                event_id);
    END IF;
    RETURN true;
END
$fn$;

-- stripe_event — takes one verified Stripe event, whole, in the caller's transaction: 'processed',
-- 'duplicate' (this event id was taken before) or 'ignored' (a type DarkSpere does not act on, or nothing to
-- act on). A malformed event raises 22023 (22004 for NULL) naming the field; an error leaves nothing recorded,
-- so Stripe's retry is processed afresh. docs/billing.md gives the state machine.
CREATE FUNCTION darkspere.stripe_event(event jsonb)
RETURNS text LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    ev_id text;
    ev_type text;
    at timestamptz;
    obj jsonb;
    obj_id text;
    customer text;
    acct bigint;
    ref text;
    v_outcome text := 'processed';
    pending jsonb;
    rank smallint;
    sub record;
BEGIN
    PERFORM darkspere.commit_atomically();  -- on Citus: one atomic commit over the nodes it writes
    IF event IS NULL THEN
        RAISE EXCEPTION 'event must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.jsonb_typeof(event) <> 'object' THEN
        RAISE EXCEPTION 'invalid Stripe event: not a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.jsonb_typeof(event->'id') IS DISTINCT FROM 'string' OR event->>'id' !~ '^evt_[A-Za-z0-9_]{1,250}$' THEN
        RAISE EXCEPTION 'invalid Stripe event: id must be a string "evt_…"' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.jsonb_typeof(event->'type') IS DISTINCT FROM 'string' OR event->>'type' = '' THEN
        RAISE EXCEPTION 'invalid Stripe event: type must be a non-empty string'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.jsonb_typeof(event->'created') IS DISTINCT FROM 'number'
       OR (event->>'created') !~ '^[0-9]{1,12}$' THEN
        RAISE EXCEPTION 'invalid Stripe event: created must be a Unix time in seconds'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.jsonb_typeof(event#>'{data,object}') IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'invalid Stripe event: data.object must be an object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    ev_id := event->>'id';
    ev_type := event->>'type';
    at := pg_catalog.to_timestamp((event->>'created')::bigint);
    obj := event#>'{data,object}';
    obj_id := obj->>'id';
    IF obj ? 'customer' AND pg_catalog.jsonb_typeof(obj->'customer') NOT IN ('string', 'null') THEN
        RAISE EXCEPTION 'invalid Stripe event: data.object.customer must be a string (an id)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    customer := obj->>'customer';

    -- Once per event id. A concurrent delivery of the same id waits here for this transaction and then finds
    -- the row (duplicate) or, if this one failed, inserts it itself.
    INSERT INTO darkspere.stripe_events (event_id, type, created, object_id, outcome, payload)
    VALUES (ev_id, ev_type, at, obj_id, 'processed', event)
    ON CONFLICT (event_id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN 'duplicate';
    END IF;

    IF ev_type = 'checkout.session.completed' THEN
        IF obj->>'mode' IS DISTINCT FROM 'subscription' THEN
            v_outcome := 'ignored';
        ELSE
            ref := obj->>'client_reference_id';
            IF ref IS NULL OR ref !~ '^[0-9]{1,18}$' THEN
                RAISE EXCEPTION 'invalid Stripe event: data.object.client_reference_id "%" is not an account id', ref
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF customer IS NULL OR pg_catalog.jsonb_typeof(obj->'subscription') IS DISTINCT FROM 'string' THEN
                RAISE EXCEPTION 'invalid Stripe event: data.object.customer and data.object.subscription must be ids'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            acct := ref::bigint;
            PERFORM FROM darkspere.accounts a WHERE a.account_id = acct FOR NO KEY UPDATE;  -- as above
            IF NOT FOUND THEN
                RAISE EXCEPTION 'client_reference_id: account % does not exist', acct USING ERRCODE = 'undefined_object';
            END IF;
            UPDATE darkspere.accounts a SET stripe_customer_id = customer WHERE a.account_id = acct;
            INSERT INTO darkspere.subscriptions AS s (account_id, stripe_customer_id, stripe_subscription_id)
            VALUES (acct, customer, obj->>'subscription')
            ON CONFLICT (account_id) DO UPDATE
               SET stripe_customer_id = EXCLUDED.stripe_customer_id,
                   stripe_subscription_id = EXCLUDED.stripe_subscription_id, updated_at = pg_catalog.now();
            -- Subscription events that came before this one found no account: apply the newest of them now.
            SELECT e.payload INTO pending FROM darkspere.stripe_events e
             WHERE e.object_id = obj->>'subscription' AND e.account_id IS NULL
               AND e.type IN ('customer.subscription.created', 'customer.subscription.updated',
                              'customer.subscription.deleted')
             ORDER BY e.created DESC,
                      CASE e.type WHEN 'customer.subscription.deleted' THEN 3
                                  WHEN 'customer.subscription.updated' THEN 2 ELSE 1 END DESC
             LIMIT 1;
            IF pending IS NOT NULL THEN
                PERFORM darkspere.stripe_apply_subscription(acct, pending#>'{data,object}',
                    pg_catalog.to_timestamp((pending->>'created')::bigint),
                    (CASE pending->>'type' WHEN 'customer.subscription.deleted' THEN 3
                                           WHEN 'customer.subscription.updated' THEN 2 ELSE 1 END)::smallint,
                    pending->>'id');
                UPDATE darkspere.stripe_events e SET account_id = acct
                 WHERE e.object_id = obj->>'subscription' AND e.account_id IS NULL;
            END IF;
        END IF;
    ELSIF ev_type IN ('customer.subscription.created', 'customer.subscription.updated',
                      'customer.subscription.deleted') THEN
        IF obj_id IS NULL OR customer IS NULL THEN
            RAISE EXCEPTION 'invalid Stripe event: data.object.id and data.object.customer must be strings'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        rank := CASE ev_type WHEN 'customer.subscription.deleted' THEN 3
                             WHEN 'customer.subscription.updated' THEN 2 ELSE 1 END;
        SELECT s.account_id INTO acct FROM darkspere.subscriptions s WHERE s.stripe_subscription_id = obj_id LIMIT 1;
        IF acct IS NULL THEN
            SELECT a.account_id INTO acct FROM darkspere.accounts a WHERE a.stripe_customer_id = customer
             ORDER BY a.account_id LIMIT 1;
        END IF;
        IF acct IS NULL THEN
            -- No account yet (checkout.session.completed not here yet): kept, applied when it comes. The shape
            -- is checked now all the same.
            IF pg_catalog.jsonb_typeof(obj#>'{items,data}') IS DISTINCT FROM 'array' THEN
                RAISE EXCEPTION 'invalid Stripe event: data.object.items.data must be an array'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            RETURN 'processed';
        END IF;
        SELECT * INTO sub FROM darkspere.subscriptions s WHERE s.account_id = acct;
        IF FOUND AND sub.stripe_subscription_id IS DISTINCT FROM obj_id AND rank = 3 THEN
            v_outcome := 'ignored';  -- an older subscription of the account ended; the current one stays
        ELSIF NOT darkspere.stripe_apply_subscription(acct, obj, at, rank, ev_id) THEN
            v_outcome := 'ignored';  -- older than the state the account holds
        END IF;
    ELSIF ev_type IN ('invoice.paid', 'invoice.payment_failed') THEN
        IF customer IS NULL THEN
            RAISE EXCEPTION 'invalid Stripe event: data.object.customer must be a string'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT s.account_id INTO acct FROM darkspere.subscriptions s WHERE s.stripe_customer_id = customer
         ORDER BY s.account_id LIMIT 1 FOR UPDATE;
        IF acct IS NULL THEN
            v_outcome := 'ignored';  -- not a customer of a linked account
        ELSE
            -- Only a newer invoice event changes the payment state (Stripe may deliver them out of order).
            UPDATE darkspere.subscriptions s
               SET past_due_since = CASE WHEN ev_type = 'invoice.paid' THEN NULL
                                         ELSE COALESCE(s.past_due_since, at) END,
                   status = CASE WHEN ev_type = 'invoice.paid' AND s.status = 'past_due' THEN 'active'
                                 WHEN ev_type = 'invoice.payment_failed' AND s.status IN ('active', 'trialing')
                                 THEN 'past_due' ELSE s.status END,
                   invoice_at = at, updated_at = pg_catalog.now()
             WHERE s.account_id = acct AND (s.invoice_at IS NULL OR s.invoice_at <= at);
            IF NOT FOUND THEN
                v_outcome := 'ignored';
            END IF;
        END IF;
    ELSE
        v_outcome := 'ignored';
    END IF;
    UPDATE darkspere.stripe_events e SET outcome = v_outcome, account_id = acct WHERE e.event_id = ev_id;
    RETURN v_outcome;
END
$fn$;
REVOKE ALL ON FUNCTION darkspere.effective_plan(bigint), darkspere.account_features_now(bigint),
    darkspere.feature_access(bigint, text),
    darkspere.stripe_apply_subscription(bigint, jsonb, timestamptz, smallint, text),
    darkspere.stripe_event(jsonb) FROM PUBLIC;

------------------------------------------------------------------------------------------------------------------
-- Issue #13 (completion): routing by agent tag, MCP tool discovery, agent_events retention
------------------------------------------------------------------------------------------------------------------

-- A service number may require an agent tag: its messages go only to active agents whose tags hold it, and a
-- failed turn fails over only among them (src/ext/routing.cpp pick_agent). No such agent free: the message
-- waits, as when the account has no agent free. NULL: any agent (every 0.1.0 number).
ALTER TABLE darkspere.numbers ADD COLUMN agent_tag text
    CONSTRAINT numbers_agent_tag_check CHECK (agent_tag ~ '^[A-Za-z0-9_.:-]{1,50}$');

-- set_number_agent_tag — the tag a number's messages require (NULL: any agent) (admin). Sessions already bound
-- to an agent without it move at their next message.
CREATE FUNCTION darkspere.set_number_agent_tag(number text, agent_tag text)
RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    PERFORM darkspere.commit_atomically();  -- on Citus: one atomic commit over the nodes it writes
    IF number IS NULL THEN
        RAISE EXCEPTION 'number must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF agent_tag IS NOT NULL AND agent_tag !~ '^[A-Za-z0-9_.:-]{1,50}$' THEN
        RAISE EXCEPTION 'invalid agent_tag: "%" (1 to 50 characters of [A-Za-z0-9_.:-])', agent_tag
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE darkspere.numbers n SET agent_tag = set_number_agent_tag.agent_tag
     WHERE n.number = set_number_agent_tag.number;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'service number "%" does not exist', number USING ERRCODE = 'undefined_object';
    END IF;
END
$fn$;

-- MCP tool discovery. tools: the agent's last tools/list as [{name, description}] (NULL: never listed);
-- tools_checked_at: when. The worker lists tools at the first probe, at every probe and when the server says
-- notifications/tools/list_changed, and stores them with record_agent_tools. tool_name: the tool a turn calls;
-- NULL (now the default) = the tool named "chat", else the only tool (docs/mcp-agents.md). Agents of 0.1.0 keep
-- their 'chat': they go on calling exactly the tool they called before.
ALTER TABLE darkspere.agents ADD COLUMN tools jsonb;
ALTER TABLE darkspere.agents ADD COLUMN tools_checked_at timestamptz;
ALTER TABLE darkspere.agents ALTER COLUMN tool_name DROP NOT NULL;
ALTER TABLE darkspere.agents ALTER COLUMN tool_name SET DEFAULT NULL;

-- record_agent_tools — stores an MCP agent's tool list (worker). The list comes from the agent, which may be
-- hostile: at most 100 entries and 256 KiB are taken (more is refused, 22023; the worker cuts before sending),
-- and of each entry only a name (1 to 128 characters, no control characters; other entries are dropped) and
-- the first 500 characters of its description are kept. Returns the number of tools stored.
CREATE FUNCTION darkspere.record_agent_tools(agent_id bigint, tools jsonb)
RETURNS int LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    p_agent bigint := record_agent_tools.agent_id;
    p_tools jsonb := record_agent_tools.tools;
    kept jsonb;
BEGIN
    PERFORM darkspere.commit_atomically();  -- on Citus: one atomic commit over the nodes it writes
    IF p_agent IS NULL OR p_tools IS NULL THEN
        RAISE EXCEPTION 'agent_id and tools must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.jsonb_typeof(p_tools) <> 'array' THEN
        RAISE EXCEPTION 'tools must be a JSON array, not %', pg_catalog.jsonb_typeof(p_tools)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.jsonb_array_length(p_tools) > 100 OR pg_catalog.octet_length(p_tools::text) > 262144 THEN
        RAISE EXCEPTION 'tools: % entries of % bytes; at most 100 entries and 262144 bytes are taken',
            pg_catalog.jsonb_array_length(p_tools), pg_catalog.octet_length(p_tools::text)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
               'name', e.t ->> 'name',
               'description', CASE WHEN pg_catalog.jsonb_typeof(e.t -> 'description') = 'string'
                                   THEN pg_catalog.left(e.t ->> 'description', 500) END)) ORDER BY e.ord), '[]')
      INTO kept
      FROM pg_catalog.jsonb_array_elements(p_tools) WITH ORDINALITY e(t, ord)
     WHERE pg_catalog.jsonb_typeof(e.t) = 'object' AND pg_catalog.jsonb_typeof(e.t -> 'name') = 'string'
       AND pg_catalog.length(e.t ->> 'name') BETWEEN 1 AND 128 AND e.t ->> 'name' !~ '[[:cntrl:]]';
    UPDATE darkspere.agents a SET tools = kept, tools_checked_at = pg_catalog.now() WHERE a.agent_id = p_agent;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'agent % does not exist', p_agent USING ERRCODE = 'undefined_object';
    END IF;
    RETURN pg_catalog.jsonb_array_length(kept);
END
$fn$;

-- darkspere.agent_event_retention (90 days; src/ext/module.cpp): tick() deletes older agent_events rows, a batch
-- per call, through this index.
CREATE INDEX agent_events_at ON darkspere.agent_events (at);

REVOKE ALL ON FUNCTION darkspere.set_number_agent_tag(text, text), darkspere.record_agent_tools(bigint, jsonb)
    FROM PUBLIC;

------------------------------------------------------------------------------------------------------------------
-- Issue #14: dashboards and the status page (docs/operations.md "Dashboards and the status page")
------------------------------------------------------------------------------------------------------------------

-- Operator views for Grafana and the worker's /status page, read by darkspere_monitor and darkspere_admin
-- (granted in the privileges block). They run as their owner, so a monitor login needs no table rights; none
-- shows an endpoint, key, secret, message body or end-user phone. Each is bounded: it reads the agents, the
-- accounts, or the rows of a fixed window through an index on their time (costs: docs/operations.md).

-- dashboard_health — one row per agent: status, health, circuit, load against capacity, last heartbeat.
-- Cost: one pass over agents and one primary-key probe of agent_load per agent (O(agents)).
CREATE VIEW darkspere.dashboard_health AS
    SELECT a.account_id, a.agent_id, a.name, a.protocol, a.status, a.health_score, a.circuit, a.circuit_until,
           a.consecutive_failures, a.latency_ms,
           COALESCE(l.in_flight, 0) AS in_flight, a.capacity,
           pg_catalog.round(100.0 * GREATEST(COALESCE(l.in_flight, 0), 0) / a.capacity, 1) AS load_pct,
           a.last_result_at, a.last_heartbeat_at, a.heartbeat_status, a.last_probe_at
    FROM darkspere.agents a
    LEFT JOIN LATERAL (SELECT pg_catalog.sum(x.in_flight)::int AS in_flight
                         FROM darkspere.agent_load x WHERE x.agent_id = a.agent_id) l ON true;

-- dashboard_traffic — messages per minute over the last 24 hours by direction and disposition. Inbound
-- dispositions are receive_sms's, read back from the stored status: routed (routed, answered, failed),
-- queued (waiting, or expired while waiting), opted_out (suppressed), keyword. Messages refused before being
-- stored (rate_limited, blocked, over_quota, unknown_number, duplicate) are not in the table: the worker's
-- darkspere_http_requests_total counts them. Outbound: the delivery status (pending, sent, delivered, …).
-- Cost: a range scan of messages_created over 24 hours (proportional to the day's messages).
CREATE VIEW darkspere.dashboard_traffic AS
    SELECT pg_catalog.date_trunc('minute', m.created_at) AS minute, m.direction,
           CASE WHEN m.direction = 'out' THEN m.status
                WHEN m.status = 'suppressed' THEN 'opted_out'
                WHEN m.status = 'keyword' THEN 'keyword'
                WHEN m.status IN ('waiting', 'expired') THEN 'queued'
                ELSE 'routed' END AS disposition,
           pg_catalog.count(*) AS messages
    FROM darkspere.messages m
    WHERE m.created_at > pg_catalog.now() - interval '24 hours'
    GROUP BY 1, 2, 3;

-- latency_samples — (stage, at, ms) from what the tables already store, over the last 24 hours; for the two
-- views below (owner only). Stages:
--   inbound_to_reply  an inbound message to its reply stored (messages.reply_to)
--   agent_call        an agent call's duration as the worker measured it (jobs.result latency_ms)
--   queue_wait        an agent_call job's creation to its end, less the call itself (waiting, and retries)
--   sms_send          an sms_send job's creation to its end (queued, sent to Twilio, acknowledged)
--   agent_probe       passing health probes (agent_checks.latency_ms)
-- Cost: range scans of messages_created, jobs_finished and agent_checks_checked over 24 hours, and one
-- primary-key probe of messages per reply.
CREATE VIEW darkspere.latency_samples AS
    -- The inbound message is looked up by primary key per reply (LIMIT 1 keeps the planner from turning the
    -- lookup into a hash join over every stored message).
    SELECT 'inbound_to_reply'::text AS stage, o.created_at AS at,
           GREATEST(pg_catalog.date_part('epoch', o.created_at - i.created_at) * 1000, 0)::numeric AS ms
      FROM darkspere.messages o
     CROSS JOIN LATERAL (SELECT i.created_at FROM darkspere.messages i WHERE i.message_id = o.reply_to LIMIT 1) i
     WHERE o.direction = 'out' AND o.reply_to IS NOT NULL AND o.created_at > pg_catalog.now() - interval '24 hours'
    UNION ALL
    -- (finished_at IS NOT NULL AND state IN ('done', 'dead')) is jobs_finished's predicate, so it is used.
    SELECT 'agent_call', j.finished_at, (j.result->>'latency_ms')::numeric
      FROM darkspere.jobs j
     WHERE j.finished_at IS NOT NULL AND j.state IN ('done', 'dead')
       AND j.finished_at > pg_catalog.now() - interval '24 hours'
       AND j.kind = 'agent_call' AND j.state = 'done' AND pg_catalog.jsonb_typeof(j.result->'latency_ms') = 'number'
    UNION ALL
    SELECT 'queue_wait', j.finished_at,
           GREATEST(pg_catalog.date_part('epoch', j.finished_at - j.created_at) * 1000
                    - (j.result->>'latency_ms')::numeric, 0)::numeric
      FROM darkspere.jobs j
     WHERE j.finished_at IS NOT NULL AND j.state IN ('done', 'dead')
       AND j.finished_at > pg_catalog.now() - interval '24 hours'
       AND j.kind = 'agent_call' AND j.state = 'done' AND pg_catalog.jsonb_typeof(j.result->'latency_ms') = 'number'
    UNION ALL
    SELECT 'sms_send', j.finished_at,
           GREATEST(pg_catalog.date_part('epoch', j.finished_at - j.created_at) * 1000, 0)::numeric
      FROM darkspere.jobs j
     WHERE j.finished_at IS NOT NULL AND j.state IN ('done', 'dead')
       AND j.finished_at > pg_catalog.now() - interval '24 hours'
       AND j.kind = 'sms_send' AND j.state = 'done'
    UNION ALL
    SELECT 'agent_probe', c.checked_at, c.latency_ms::numeric
      FROM darkspere.agent_checks c
     WHERE c.checked_at > pg_catalog.now() - interval '24 hours' AND c.ok AND c.latency_ms IS NOT NULL;

-- dashboard_latency — count and percentiles (milliseconds, exact over the window) per stage and window
-- ('5 minutes', '1 hour', '24 hours'). Every stage and window has a row, count 0 and NULL percentiles when
-- nothing happened. Columns are fixed (stage, window, count, p50_ms, p95_ms, p99_ms): a later source of the
-- same stages (per-stage trace data) can replace latency_samples without changing a dashboard. Unordered.
-- The three branches differ only in the window: each has a constant bound, so its scans are index ranges of
-- that window, and a filter on "window" (=, IN, <>) leaves out the other branches entirely. Cost: the samples
-- of the windows read, each sorted once; the 24-hour branch is a day of traffic (docs/operations.md, "Cost").
CREATE VIEW darkspere.dashboard_latency AS
    SELECT s.stage, '5 minutes'::text AS "window", COALESCE(x.count, 0) AS count, x.p50_ms, x.p95_ms, x.p99_ms
      FROM (VALUES ('agent_call'), ('agent_probe'), ('inbound_to_reply'), ('queue_wait'), ('sms_send')) s(stage)
      LEFT JOIN (SELECT l.stage, pg_catalog.count(*) AS count,
                        pg_catalog.round((pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY l.ms))::numeric, 1)
                            AS p50_ms,
                        pg_catalog.round((pg_catalog.percentile_cont(0.95) WITHIN GROUP (ORDER BY l.ms))::numeric, 1)
                            AS p95_ms,
                        pg_catalog.round((pg_catalog.percentile_cont(0.99) WITHIN GROUP (ORDER BY l.ms))::numeric, 1)
                            AS p99_ms
                   FROM darkspere.latency_samples l
                  WHERE l.at > pg_catalog.now() - interval '5 minutes' GROUP BY l.stage) x ON x.stage = s.stage
    UNION ALL
    SELECT s.stage, '1 hour'::text AS "window", COALESCE(x.count, 0) AS count, x.p50_ms, x.p95_ms, x.p99_ms
      FROM (VALUES ('agent_call'), ('agent_probe'), ('inbound_to_reply'), ('queue_wait'), ('sms_send')) s(stage)
      LEFT JOIN (SELECT l.stage, pg_catalog.count(*) AS count,
                        pg_catalog.round((pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY l.ms))::numeric, 1)
                            AS p50_ms,
                        pg_catalog.round((pg_catalog.percentile_cont(0.95) WITHIN GROUP (ORDER BY l.ms))::numeric, 1)
                            AS p95_ms,
                        pg_catalog.round((pg_catalog.percentile_cont(0.99) WITHIN GROUP (ORDER BY l.ms))::numeric, 1)
                            AS p99_ms
                   FROM darkspere.latency_samples l
                  WHERE l.at > pg_catalog.now() - interval '1 hour' GROUP BY l.stage) x ON x.stage = s.stage
    UNION ALL
    SELECT s.stage, '24 hours'::text AS "window", COALESCE(x.count, 0) AS count, x.p50_ms, x.p95_ms, x.p99_ms
      FROM (VALUES ('agent_call'), ('agent_probe'), ('inbound_to_reply'), ('queue_wait'), ('sms_send')) s(stage)
      LEFT JOIN (SELECT l.stage, pg_catalog.count(*) AS count,
                        pg_catalog.round((pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY l.ms))::numeric, 1)
                            AS p50_ms,
                        pg_catalog.round((pg_catalog.percentile_cont(0.95) WITHIN GROUP (ORDER BY l.ms))::numeric, 1)
                            AS p95_ms,
                        pg_catalog.round((pg_catalog.percentile_cont(0.99) WITHIN GROUP (ORDER BY l.ms))::numeric, 1)
                            AS p99_ms
                   FROM darkspere.latency_samples l GROUP BY l.stage) x ON x.stage = s.stage;

-- dashboard_usage — each account's metered features this month against its effective plan. The rules are
-- account_features_now's and effective_plan's, written out here because a view calls functions with its reader's
-- rights and those two are the owner's (a darkspere_monitor login may not run them): an unexpired account
-- override replaces the plan's row, a plan past its payment grace counts as 'free', a plan without rows for the
-- SMS features keeps its *_included columns. Only enabled features. used_pct NULL: no limit. Cost: per account,
-- one probe of usage_counters' primary key per metric and a count of its agents and numbers by index
-- (O(accounts × features)).
CREATE VIEW darkspere.dashboard_usage AS
    SELECT a.account_id, a.name AS account_name, f.plan, f.feature, f.metric,
           COALESCE(u.used, 0) AS used, f.monthly_limit,
           CASE WHEN f.monthly_limit > 0 THEN pg_catalog.round(100.0 * COALESCE(u.used, 0) / f.monthly_limit, 1)
                WHEN f.monthly_limit = 0 THEN 100.0 END AS used_pct,
           CASE WHEN f.monthly_limit IS NOT NULL THEN GREATEST(f.monthly_limit - COALESCE(u.used, 0), 0) END
               AS remaining
    FROM darkspere.accounts a
    LEFT JOIN darkspere.subscriptions s ON s.account_id = a.account_id
    CROSS JOIN LATERAL (
        SELECT CASE WHEN s.past_due_since
                         + COALESCE(NULLIF(pg_catalog.current_setting('darkspere.payment_grace', true), ''),
                                    '7 days')::interval <= pg_catalog.now()
                    THEN 'free' ELSE a.plan END AS plan) ep
    JOIN darkspere.plans p ON p.plan = ep.plan
    CROSS JOIN LATERAL (
        SELECT x.feature, x.usage_metric AS metric, ep.plan,
               COALESCE(o.enabled, pf.enabled, x.feature IN ('sms_inbound', 'sms_outbound', 'agent_routing'))
                   AS enabled,
               CASE WHEN o.feature IS NOT NULL THEN o.monthly_limit
                    WHEN pf.feature IS NOT NULL THEN pf.monthly_limit
                    WHEN x.feature = 'sms_inbound' THEN p.sms_in_included
                    WHEN x.feature = 'sms_outbound' THEN p.sms_out_included
                    WHEN x.feature = 'agent_routing' THEN p.agent_messages_included END AS monthly_limit
          FROM darkspere.features x
          LEFT JOIN darkspere.plan_features pf ON pf.plan = ep.plan AND pf.feature = x.feature
          LEFT JOIN darkspere.account_features o ON o.account_id = a.account_id AND o.feature = x.feature
               AND (o.expires_at IS NULL OR o.expires_at > pg_catalog.now())
         WHERE x.usage_metric IS NOT NULL) f
    LEFT JOIN LATERAL (
        SELECT CASE f.metric
                   WHEN 'agents' THEN (SELECT pg_catalog.count(*) FROM darkspere.agents g
                                        WHERE g.account_id = a.account_id AND g.status <> 'disabled')
                   WHEN 'numbers' THEN (SELECT pg_catalog.count(*) FROM darkspere.numbers n
                                         WHERE n.account_id = a.account_id)
                   ELSE (SELECT COALESCE(pg_catalog.sum(c.used), 0)::bigint FROM darkspere.usage_counters c
                          WHERE c.account_id = a.account_id AND c.metric = f.metric
                            AND c.period = pg_catalog.date_trunc('month', pg_catalog.now() AT TIME ZONE 'UTC')::date)
               END AS used) u ON true
    WHERE f.enabled;

-- dashboard_security — counts, not people: subjects blocked by a rate limit now (per scope, and per account for
-- the per-tenant scopes, whose subjects are "<account_id>:<phone>"), opt-outs and opt-ins over the last 24 hours
-- (per account and source), and status callbacks of the last 24 hours for no known message (a forged or early
-- callback; weighed if its message comes). Phones and IP addresses are not shown. Webhooks refused for a bad
-- signature are not recorded in the database: the worker counts them (darkspere_http_requests_total with status
-- 403). Cost: a scan of rate_limit_state (unlogged; only subjects seen within their window, pruned by tick()),
-- range scans of consent_events_at and delivery_events_received over 24 hours.
CREATE VIEW darkspere.dashboard_security AS
    SELECT 'blocked_now'::text AS kind,
           CASE WHEN s.subject ~ '^[0-9]{1,18}:' THEN pg_catalog.split_part(s.subject, ':', 1)::bigint END
               AS account_id,
           s.scope AS detail, pg_catalog.count(*) AS count, pg_catalog.max(s.blocked_until) AS last_at
      FROM darkspere.rate_limit_state s
     WHERE s.blocked_until > pg_catalog.now()
     GROUP BY 2, 3
    UNION ALL
    SELECT CASE e.action WHEN 'opt_out' THEN 'opt_out_24h' ELSE 'opt_in_24h' END, e.account_id, e.source,
           pg_catalog.count(*), pg_catalog.max(e.at)
      FROM darkspere.consent_events e
     WHERE e.at > pg_catalog.now() - interval '24 hours' AND e.action IN ('opt_out', 'opt_in')
     GROUP BY 1, 2, 3
    UNION ALL
    SELECT 'unmatched_callback_24h', NULL, d.status, pg_catalog.count(*), pg_catalog.max(d.received_at)
      FROM darkspere.delivery_events d
     WHERE d.received_at > pg_catalog.now() - interval '24 hours' AND NOT d.applied
     GROUP BY 3;

-- status_snapshot — everything the worker's GET /status page shows, in one call and one snapshot (jsonb):
--   generated_at; queue: [{kind, state, jobs, oldest_age_s}]; agents: at most 100, least healthy first
--   (dashboard_health's columns), agents_total; traffic: inbound messages per minute over the last 60 minutes,
--   oldest first (60 numbers); latency_p95: p95 of inbound_to_reply per minute over the same minutes (NULL for
--   a minute without replies); latency: dashboard_latency's '1 hour' rows; alerts: the 10 newest rows of
--   darkspere.alerts (whole rows, as JSON objects), or [].
-- Agent names are tenant input: the page escapes them. Cost: dashboard_health limited to 100 rows (after a
-- pass over agents), an hour of messages_created and of latency_samples, the queue_depth view (partial
-- indexes of pending and running jobs), 10 alerts.
CREATE FUNCTION darkspere.status_snapshot()
RETURNS jsonb LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    snapshot jsonb;
BEGIN
    SELECT pg_catalog.jsonb_build_object(
        'generated_at', pg_catalog.now(),
        'queue', (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                             'kind', q.kind, 'state', q.state, 'jobs', q.jobs,
                             'oldest_age_s', pg_catalog.round(GREATEST(pg_catalog.date_part('epoch',
                                 pg_catalog.now() - q.oldest_available_at), 0)::numeric, 1))
                         ORDER BY q.kind, q.state), '[]')
                    FROM darkspere.queue_depth q),
        'agents', (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(h)
                                                        ORDER BY h.health_score, h.agent_id), '[]')
                     FROM (SELECT * FROM darkspere.dashboard_health
                            ORDER BY health_score, agent_id LIMIT 100) h),
        'agents_total', (SELECT pg_catalog.count(*) FROM darkspere.agents),
        'traffic', (SELECT pg_catalog.jsonb_agg(COALESCE(t.n, 0) ORDER BY g.minute)
                      FROM pg_catalog.generate_series(pg_catalog.date_trunc('minute', pg_catalog.now())
                                                          - interval '59 minutes',
                                                      pg_catalog.date_trunc('minute', pg_catalog.now()),
                                                      interval '1 minute') g(minute)
                      LEFT JOIN (SELECT pg_catalog.date_trunc('minute', m.created_at) AS minute,
                                        pg_catalog.count(*) AS n
                                   FROM darkspere.messages m
                                  WHERE m.created_at >= pg_catalog.date_trunc('minute', pg_catalog.now())
                                                        - interval '59 minutes'
                                    AND m.direction = 'in'
                                  GROUP BY 1) t ON t.minute = g.minute),
        'latency_p95', (SELECT pg_catalog.jsonb_agg(l.p95 ORDER BY g.minute)
                          FROM pg_catalog.generate_series(pg_catalog.date_trunc('minute', pg_catalog.now())
                                                              - interval '59 minutes',
                                                          pg_catalog.date_trunc('minute', pg_catalog.now()),
                                                          interval '1 minute') g(minute)
                          LEFT JOIN (SELECT pg_catalog.date_trunc('minute', s.at) AS minute,
                                            pg_catalog.round((pg_catalog.percentile_cont(0.95)
                                                WITHIN GROUP (ORDER BY s.ms))::numeric, 1) AS p95
                                       FROM darkspere.latency_samples s
                                      WHERE s.stage = 'inbound_to_reply'
                                        AND s.at >= pg_catalog.date_trunc('minute', pg_catalog.now())
                                                    - interval '59 minutes'
                                      GROUP BY 1) l ON l.minute = g.minute),
        'latency', (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(d) ORDER BY d.stage), '[]')
                      FROM darkspere.dashboard_latency d WHERE d."window" = '1 hour'),
        'alerts', (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(a) ORDER BY a.alert_id DESC), '[]')
                     FROM (SELECT * FROM darkspere.alerts ORDER BY alert_id DESC LIMIT 10) a))
      INTO snapshot;
    RETURN snapshot;
END
$fn$;
REVOKE ALL ON FUNCTION darkspere.status_snapshot() FROM PUBLIC;

------------------------------------------------------------------------------------------------------------------
-- Issue #15 (second slice): checkout, portal and cancel through the worker (docs/billing.md)
------------------------------------------------------------------------------------------------------------------

-- Which of a plan's prices a new Checkout Session buys: the one marked checkout, or the plan's only price.
ALTER TABLE darkspere.plan_prices ADD COLUMN checkout boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX plan_prices_checkout ON darkspere.plan_prices (plan) WHERE checkout;

-- Every Stripe API call made for an account through /api/billing/…: what was asked, what Stripe answered (the
-- object's id, or its error) and what the tenant was told. No secret and no URL with a session token is kept.
CREATE TABLE darkspere.billing_calls (
    account_id      bigint NOT NULL REFERENCES darkspere.accounts ON DELETE CASCADE,
    call_id         bigserial,
    route           text NOT NULL CHECK (route IN ('billing.checkout', 'billing.portal', 'billing.cancel')),
    idempotency_key text NOT NULL,
    stripe_status   int NOT NULL,  -- 0: no answer (the error is in error)
    stripe_object   text,          -- cs_…, bps_…, sub_… on success
    http_status     int NOT NULL,
    error           text,
    called_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (account_id, call_id)
);
SELECT pg_catalog.pg_extension_config_dump('darkspere.billing_calls', '');
SELECT pg_catalog.pg_extension_config_dump('darkspere.billing_calls_call_id_seq', '');

-- billing_prepare — for api_call (owner only): validates a billing route's body and decides the Stripe request.
-- Returns 422/409 with an error body, or status 0 and {"account_id", "stripe": {method, path, form: [[name,
-- value], …], idempotency_key}}: the worker sends exactly that (form-encoded, its API key, the pinned Stripe-Version) and
-- hands the answer to billing_result. The idempotency key is derived from the request, the account's
-- subscription state and the hour, so a client's retry reaches Stripe as the same request.
CREATE FUNCTION darkspere.billing_prepare(account_id bigint, route text, body jsonb)
RETURNS TABLE (http_status int, response jsonb)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    p_account bigint := billing_prepare.account_id;
    p_route text := billing_prepare.route;
    p_body jsonb := COALESCE(billing_prepare.body, '{}');
    fields text[];
    k text;
    v jsonb;
    problem text;
    customer text;
    sub record;
    v_price text;
    v_method text := 'POST';
    v_path text;
    form jsonb;
BEGIN
    IF p_route IS NULL OR p_route NOT IN ('billing.checkout', 'billing.portal', 'billing.cancel') THEN
        RAISE EXCEPTION 'unknown billing route: "%"', p_route USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.jsonb_typeof(p_body) <> 'object' THEN
        RETURN QUERY SELECT 400, darkspere.api_error('bad_request', 'the body must be a JSON object');
        RETURN;
    END IF;
    fields := CASE p_route WHEN 'billing.checkout' THEN ARRAY['cancel_url', 'plan', 'success_url']
                           WHEN 'billing.portal' THEN ARRAY['return_url'] ELSE ARRAY['at_period_end'] END;
    FOR k, v IN SELECT e.key, e.value FROM pg_catalog.jsonb_each(p_body) e ORDER BY e.key LOOP
        problem := NULL;
        IF k <> ALL (fields) THEN
            problem := 'is not a field of this request';
        ELSIF k = 'plan' THEN
            IF pg_catalog.jsonb_typeof(v) <> 'string'
               OR NOT EXISTS (SELECT FROM darkspere.plans p WHERE p.plan = v #>> '{}') THEN
                problem := 'must name a plan';
            END IF;
        ELSIF k = 'at_period_end' THEN
            IF pg_catalog.jsonb_typeof(v) <> 'boolean' THEN
                problem := 'must be true or false';
            END IF;
        ELSIF pg_catalog.jsonb_typeof(v) <> 'string' OR pg_catalog.length(v #>> '{}') > 2048
              OR v #>> '{}' !~ '^https?://[^/?#[:space:]@]+([/?#][^[:space:]]*)?$' THEN
            problem := 'must be an http:// or https:// URL with a host, at most 2048 characters';
        END IF;
        IF problem IS NOT NULL THEN
            RETURN QUERY SELECT 422, darkspere.api_error('invalid_field', k || ' ' || problem, k);
            RETURN;
        END IF;
    END LOOP;
    FOREACH k IN ARRAY fields LOOP
        IF NOT p_body ? k THEN
            RETURN QUERY SELECT 422, darkspere.api_error('invalid_field', k || ' is required', k);
            RETURN;
        END IF;
    END LOOP;

    SELECT a.stripe_customer_id INTO customer FROM darkspere.accounts a WHERE a.account_id = p_account;
    SELECT * INTO sub FROM darkspere.subscriptions s WHERE s.account_id = p_account;
    customer := COALESCE(customer, sub.stripe_customer_id);
    IF p_route = 'billing.checkout' THEN
        IF sub.stripe_subscription_id IS NOT NULL AND sub.status IN ('active', 'trialing', 'past_due') THEN
            RETURN QUERY SELECT 409, darkspere.api_error('already_subscribed',
                'the account already has subscription ' || sub.stripe_subscription_id || ' (' || sub.status
                || '): change or cancel it in the billing portal');
            RETURN;
        END IF;
        SELECT pp.price_id INTO v_price FROM darkspere.plan_prices pp
         WHERE pp.plan = p_body ->> 'plan'
           AND (pp.checkout OR (SELECT pg_catalog.count(*) FROM darkspere.plan_prices q WHERE q.plan = pp.plan) = 1)
         ORDER BY pp.checkout DESC LIMIT 1;
        IF v_price IS NULL THEN
            RETURN QUERY SELECT 422, darkspere.api_error('invalid_field',
                'plan "' || (p_body ->> 'plan') || '" cannot be bought: it has no Stripe price for checkout', 'plan');
            RETURN;
        END IF;
        v_path := '/v1/checkout/sessions';
        form := pg_catalog.jsonb_build_array(
            pg_catalog.jsonb_build_array('mode', 'subscription'),
            pg_catalog.jsonb_build_array('line_items[0][price]', v_price),
            pg_catalog.jsonb_build_array('line_items[0][quantity]', '1'),
            pg_catalog.jsonb_build_array('client_reference_id', p_account::text),
            pg_catalog.jsonb_build_array('success_url', p_body ->> 'success_url'),
            pg_catalog.jsonb_build_array('cancel_url', p_body ->> 'cancel_url'),
            pg_catalog.jsonb_build_array('metadata[darkspere_account_id]', p_account::text),
            pg_catalog.jsonb_build_array('subscription_data[metadata][darkspere_account_id]', p_account::text));
        IF customer IS NOT NULL THEN
            form := form || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array('customer', customer));
        END IF;
    ELSIF p_route = 'billing.portal' THEN
        IF customer IS NULL THEN
            RETURN QUERY SELECT 409, darkspere.api_error('no_customer',
                'the account is not a Stripe customer yet: subscribe through POST /api/billing/checkout first');
            RETURN;
        END IF;
        v_path := '/v1/billing_portal/sessions';
        form := pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array('customer', customer),
                                             pg_catalog.jsonb_build_array('return_url', p_body ->> 'return_url'));
    ELSE
        IF sub.stripe_subscription_id IS NULL
           OR sub.status IN ('canceled', 'incomplete_expired') THEN
            RETURN QUERY SELECT 409, darkspere.api_error('no_subscription', 'the account has no subscription to cancel');
            RETURN;
        END IF;
        v_path := '/v1/subscriptions/' || sub.stripe_subscription_id;
        IF (p_body ->> 'at_period_end')::boolean THEN
            form := pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array('cancel_at_period_end', 'true'));
        ELSE
            v_method := 'DELETE';  -- cancel now (Stripe: DELETE /v1/subscriptions/{id})
            form := '[]';
        END IF;
    END IF;
    RETURN QUERY SELECT 0, pg_catalog.jsonb_build_object('account_id', p_account, 'stripe', pg_catalog.jsonb_build_object(
        'method', v_method, 'path', v_path, 'form', form,
        'idempotency_key', 'darkspere-' || pg_catalog.replace(p_route, 'billing.', '') || '-' || p_account || '-'
            || pg_catalog.left(pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
                   pg_catalog.concat_ws(' ', v_method, v_path, form::text, sub.stripe_subscription_id, sub.status,
                                        sub.cancel_at_period_end, sub.state_at,
                                        pg_catalog.date_trunc('hour', pg_catalog.now() AT TIME ZONE 'UTC')),
                   'UTF8')), 'hex'), 40)));
END
$fn$;

-- billing_result — takes Stripe's answer to the request billing_prepare decided (stripe_status 0: no answer,
-- stripe_body then says why), records it in billing_calls and returns what the tenant is told: 200 with
-- {url, session_id} (checkout), {url} (portal) or the subscription's new state (cancel, applied at once as
-- stripe_apply_subscription does for a webhook); Stripe's errors as 402 (card declined), 409 (idempotency
-- conflict) or 502 (anything else, and no answer), with Stripe's message except for a refused API key.
CREATE FUNCTION darkspere.billing_result(account_id bigint, route text, request jsonb, stripe_status int,
                                         stripe_body text)
RETURNS TABLE (http_status int, response jsonb)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    p_account bigint := billing_result.account_id;
    p_route text := billing_result.route;
    obj jsonb;
    code int;
    result jsonb;
    message text;
    err_type text;
BEGIN
    PERFORM darkspere.commit_atomically();  -- on Citus: one atomic commit over the nodes it writes
    IF p_account IS NULL OR p_route IS NULL OR request IS NULL OR stripe_status IS NULL THEN
        RAISE EXCEPTION 'account_id, route, request and stripe_status must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_route NOT IN ('billing.checkout', 'billing.portal', 'billing.cancel') THEN
        RAISE EXCEPTION 'unknown billing route: "%"', p_route USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.jsonb_typeof(request -> 'idempotency_key') IS DISTINCT FROM 'string' THEN
        RAISE EXCEPTION 'request.idempotency_key must be a string' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF stripe_status > 0 THEN
        BEGIN
            obj := stripe_body::jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            obj := NULL;
        END;
    END IF;
    IF stripe_status BETWEEN 200 AND 299 AND pg_catalog.jsonb_typeof(obj) = 'object' THEN
        IF p_route IN ('billing.checkout', 'billing.portal') THEN
            IF obj ->> 'url' ~ '^https?://[^[:space:]]+$' THEN
                code := 200;
                result := pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('url', obj ->> 'url',
                    'session_id', CASE WHEN p_route = 'billing.checkout' THEN obj ->> 'id' END));
            ELSE
                message := 'Stripe answered without a session URL';
            END IF;
        ELSIF obj ->> 'object' = 'subscription' AND pg_catalog.jsonb_typeof(obj -> 'status') = 'string' THEN
            BEGIN
                PERFORM darkspere.stripe_apply_subscription(p_account, obj, pg_catalog.now(),
                    (CASE WHEN obj ->> 'status' = 'canceled' THEN 3 ELSE 2 END)::smallint, NULL);
            EXCEPTION WHEN data_exception OR undefined_object THEN
                message := 'Stripe''s subscription could not be applied: ' || SQLERRM;
            END;
            IF message IS NULL THEN
                code := 200;
                SELECT pg_catalog.jsonb_build_object('subscription_id', s.stripe_subscription_id,
                           'status', s.status, 'cancel_at_period_end', s.cancel_at_period_end,
                           'current_period_end', s.current_period_end, 'plan', a.plan)
                  INTO result
                  FROM darkspere.subscriptions s JOIN darkspere.accounts a ON a.account_id = s.account_id
                 WHERE s.account_id = p_account;
            END IF;
        ELSE
            message := 'Stripe answered without a subscription';
        END IF;
        IF code IS NULL THEN
            code := 502;
            result := darkspere.api_error('stripe_error', message);
        END IF;
    ELSE
        err_type := obj #>> '{error,type}';
        message := pg_catalog.left(obj #>> '{error,message}', 500);
        IF stripe_status = 0 THEN
            code := 502;
            result := darkspere.api_error('stripe_unavailable', 'Stripe did not answer: '
                                          || COALESCE(pg_catalog.left(stripe_body, 200), 'no response'));
        ELSIF stripe_status = 402 THEN
            code := 402;
            result := darkspere.api_error('payment_required', COALESCE(message, 'Stripe declined the request'));
        ELSIF stripe_status = 409 OR err_type = 'idempotency_error' THEN
            code := 409;
            result := darkspere.api_error('stripe_conflict', COALESCE(message, 'Stripe reported a conflict'));
        ELSIF stripe_status IN (401, 403) THEN
            -- The message would be about the worker's key, not the tenant's request.
            code := 502;
            result := darkspere.api_error('stripe_error', 'Stripe refused the API key of this service (HTTP '
                                          || stripe_status || ')');
        ELSE
            code := 502;
            result := darkspere.api_error('stripe_error',
                                          COALESCE(message, 'Stripe answered HTTP ' || stripe_status));
        END IF;
    END IF;
    INSERT INTO darkspere.billing_calls (account_id, route, idempotency_key, stripe_status, stripe_object,
                                         http_status, error)
    VALUES (p_account, p_route, request ->> 'idempotency_key', stripe_status,
            CASE WHEN code = 200 THEN pg_catalog.left(obj ->> 'id', 255) END, code,
            CASE WHEN code <> 200 THEN result #>> '{error,message}' END);
    RETURN QUERY SELECT code, result;
END
$fn$;
REVOKE ALL ON FUNCTION darkspere.billing_prepare(bigint, text, jsonb),
    darkspere.billing_result(bigint, text, jsonb, int, text) FROM PUBLIC;

------------------------------------------------------------------------------------------------------------------
-- Issue #15 (third slice): usage of any month, overage reported to Stripe Billing Meters, monthly statements
------------------------------------------------------------------------------------------------------------------

-- usage(account_id, period) — the usage of the calendar month (UTC) holding `period`; without it (or NULL), the
-- current month, as 0.1.0's usage(account_id) was (that function is replaced: one function, so usage(id) keeps
-- resolving). Included amounts, prices and hard caps are the account's as they apply now.
DROP FUNCTION darkspere.usage(bigint);
CREATE FUNCTION darkspere.usage(account_id bigint, period date DEFAULT NULL)
RETURNS TABLE (metric text, used bigint, included bigint, overage bigint, overage_cents bigint)
AS 'MODULE_PATHNAME', 'darkspere_usage_period' LANGUAGE C STABLE PARALLEL SAFE;

-- Which usage metric is reported to which Stripe meter (the meter's event_name, as created in Stripe). Only the
-- metrics listed are reported; delete a row to stop reporting one.
CREATE TABLE darkspere.stripe_meters (
    metric     text PRIMARY KEY CHECK (metric IN ('sms_in', 'sms_out', 'agent_messages')),
    event_name text NOT NULL CHECK (event_name ~ '^[A-Za-z0-9_.:-]{1,100}$'),
    is_seed    boolean NOT NULL DEFAULT false
);
INSERT INTO darkspere.stripe_meters VALUES ('sms_in', 'darkspere_sms_in_overage', true),
    ('sms_out', 'darkspere_sms_out_overage', true), ('agent_messages', 'darkspere_agent_message_overage', true);
SELECT pg_catalog.pg_extension_config_dump('darkspere.stripe_meters', 'WHERE NOT is_seed');

-- One row per account, metric and hour reported: the primary key is what keeps a metric from being reported
-- twice for one hour (Stripe's identifier is account:metric:hour as well, so a retried request is a no-op at
-- Stripe). value: the overage of the hour's month not reported before; a report whose job died
-- (failed_at) does not count as reported, so its amount goes with the next hour's.
CREATE TABLE darkspere.meter_reports (
    account_id  bigint NOT NULL REFERENCES darkspere.accounts ON DELETE CASCADE,
    metric      text NOT NULL,
    hour        timestamptz NOT NULL CHECK (hour = pg_catalog.date_trunc('hour', hour)),
    value       bigint NOT NULL CHECK (value > 0),
    event_name  text NOT NULL,
    customer    text NOT NULL,
    job_id      bigint,
    queued_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    reported_at timestamptz,
    failed_at   timestamptz,
    error       text,
    PRIMARY KEY (account_id, metric, hour)
);
CREATE INDEX meter_reports_job ON darkspere.meter_reports (job_id) WHERE job_id IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('darkspere.meter_reports', '');

-- A month's statement per account: numbered DS-YYYYMM-<n> (n counts the month's statements from 1), lines in
-- integer cents. Made once per (account, period) by close_period.
CREATE TABLE darkspere.statements (
    account_id  bigint NOT NULL REFERENCES darkspere.accounts ON DELETE CASCADE,
    period      date NOT NULL CHECK (period = pg_catalog.date_trunc('month', period)::date),
    number      text NOT NULL CHECK (number ~ '^DS-[0-9]{6}-[1-9][0-9]*$'),
    plan        text NOT NULL,
    total_cents bigint NOT NULL CHECK (total_cents >= 0),
    closed_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (account_id, period)
);
CREATE TABLE darkspere.statement_lines (
    account_id   bigint NOT NULL,
    period       date NOT NULL,
    line         int NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('base', 'sms_overage', 'agent_overage')),
    description  text NOT NULL,
    quantity     bigint NOT NULL CHECK (quantity >= 0),
    unit_cents   bigint NOT NULL CHECK (unit_cents >= 0),
    amount_cents bigint NOT NULL CHECK (amount_cents = quantity * unit_cents),
    PRIMARY KEY (account_id, period, line),
    FOREIGN KEY (account_id, period) REFERENCES darkspere.statements ON DELETE CASCADE
);
-- The last statement number of each month (the row lock orders concurrent closings).
CREATE TABLE darkspere.statement_numbers (
    period      date PRIMARY KEY,
    last_number int NOT NULL
);
-- Where tick()'s billing work stands: the hour being reported and the last account done in it; the last month
-- every account has a statement for. A hint, like route_cursor: unlogged and not dumped (after a crash or a
-- restore the work starts over, which the primary keys of meter_reports and statements make harmless; the row
-- is made again by queue_meter_reports).
CREATE UNLOGGED TABLE darkspere.billing_progress (
    only_row         boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    meter_hour       timestamptz,
    meter_account    bigint NOT NULL DEFAULT 0,
    closed_period    date
);
INSERT INTO darkspere.billing_progress DEFAULT VALUES;
SELECT pg_catalog.pg_extension_config_dump('darkspere.statements', '');
SELECT pg_catalog.pg_extension_config_dump('darkspere.statement_lines', '');
SELECT pg_catalog.pg_extension_config_dump('darkspere.statement_numbers', '');

-- queue_meter_reports — the hourly meter events (owner only; tick() calls it). For the hour that just ended
-- (`at` − 1 hour, truncated), up to max_accounts Stripe customers after the last one done are looked at; for
-- each metric of stripe_meters with overage in that hour's month not yet reported, a meter_reports row and a
-- stripe_meter job (payload: event_name, stripe_customer_id, value, identifier account:metric:epoch-of-hour,
-- timestamp) are made. Returns the reports queued.
CREATE FUNCTION darkspere.queue_meter_reports(at timestamptz DEFAULT pg_catalog.now(), max_accounts int DEFAULT 200)
RETURNS int LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    v_hour timestamptz := pg_catalog.date_trunc('hour', at) - interval '1 hour';
    v_period date := pg_catalog.date_trunc('month', v_hour AT TIME ZONE 'UTC')::date;
    prog record;
    acct record;
    u record;
    already bigint;
    v_value bigint;
    v_ident text;
    v_event text;
    v_job bigint;
    queued int := 0;
    seen int := 0;
BEGIN
    INSERT INTO darkspere.billing_progress DEFAULT VALUES ON CONFLICT DO NOTHING;
    SELECT * INTO prog FROM darkspere.billing_progress FOR UPDATE;
    IF prog.meter_hour IS DISTINCT FROM v_hour THEN
        prog.meter_account := 0;
    END IF;
    FOR acct IN SELECT a.account_id, a.stripe_customer_id FROM darkspere.accounts a
                 WHERE a.stripe_customer_id IS NOT NULL AND a.account_id > prog.meter_account
                 ORDER BY a.account_id LIMIT max_accounts LOOP
        seen := seen + 1;
        prog.meter_account := acct.account_id;
        FOR u IN SELECT x.metric, x.overage, m.event_name
                   FROM darkspere.usage(acct.account_id, v_period) x
                   JOIN darkspere.stripe_meters m ON m.metric = x.metric
                  WHERE x.overage > 0 LOOP
            SELECT COALESCE(sum(r.value), 0) INTO already FROM darkspere.meter_reports r
             WHERE r.account_id = acct.account_id AND r.metric = u.metric AND r.failed_at IS NULL
               AND r.hour >= v_period::timestamp AT TIME ZONE 'UTC'
               AND r.hour < (v_period + interval '1 month') AT TIME ZONE 'UTC';
            v_value := u.overage - already;
            CONTINUE WHEN v_value <= 0;
            v_ident := acct.account_id || ':' || u.metric || ':' || EXTRACT(epoch FROM v_hour)::bigint;
            INSERT INTO darkspere.meter_reports (account_id, metric, hour, value, event_name, customer)
            VALUES (acct.account_id, u.metric, v_hour, v_value, u.event_name, acct.stripe_customer_id)
            ON CONFLICT DO NOTHING;
            CONTINUE WHEN NOT FOUND;  -- this hour is reported already
            INSERT INTO darkspere.jobs (account_id, kind, max_attempts, priority, idempotency_key, payload)
            VALUES (acct.account_id, 'stripe_meter', 10, 2, 'stripe_meter:' || v_ident,
                    pg_catalog.jsonb_build_object('event_name', u.event_name,
                        'stripe_customer_id', acct.stripe_customer_id, 'value', v_value::text,
                        'identifier', v_ident, 'timestamp', EXTRACT(epoch FROM v_hour)::bigint))
            RETURNING job_id INTO v_job;
            UPDATE darkspere.meter_reports r SET job_id = v_job
             WHERE r.account_id = acct.account_id AND r.metric = u.metric AND r.hour = v_hour;
            queued := queued + 1;
        END LOOP;
    END LOOP;
    UPDATE darkspere.billing_progress SET meter_hour = v_hour, meter_account = prog.meter_account;
    RETURN queued;
END
$fn$;

-- meter_report_done — a stripe_meter job's end (owner only; the job acks call it): reported, or failed for good
-- (its amount is then reported with the next hour's). The acks pass the job's account, so that on Citus the
-- update reaches its tenant's shard only; without it every shard is asked. PL/pgSQL with the time in a variable:
-- Citus plans no SQL-language function's parameters against a distributed table, and takes no now() inside a
-- CASE of a distributed UPDATE.
CREATE FUNCTION darkspere.meter_report_done(job_id bigint, ok boolean, error text DEFAULT NULL,
                                            account_id bigint DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    v_now timestamptz := pg_catalog.now();
    v_error text := CASE WHEN NOT ok THEN pg_catalog.left(meter_report_done.error, 200) END;
BEGIN
    IF meter_report_done.account_id IS NULL THEN
        UPDATE darkspere.meter_reports r
           SET reported_at = CASE WHEN ok THEN v_now END, failed_at = CASE WHEN NOT ok THEN v_now END,
               error = v_error
         WHERE r.job_id = meter_report_done.job_id;
    ELSE
        UPDATE darkspere.meter_reports r
           SET reported_at = CASE WHEN ok THEN v_now END, failed_at = CASE WHEN NOT ok THEN v_now END,
               error = v_error
         WHERE r.account_id = meter_report_done.account_id AND r.job_id = meter_report_done.job_id;
    END IF;
END
$fn$;

-- close_period — the statements of one month (default: the month before now, UTC) for up to max_accounts
-- accounts that existed before it ended and have none yet: lines for the base price of the plan held at the
-- month's end, SMS overage (inbound and outbound segments) and agent-message overage, integer cents. Idempotent
-- per (account, period): a second call makes nothing. Returns the statements made.
CREATE FUNCTION darkspere.close_period(period date DEFAULT NULL, max_accounts int DEFAULT 500)
RETURNS int LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    v_period date := pg_catalog.date_trunc('month', COALESCE(close_period.period,
                         ((pg_catalog.now() AT TIME ZONE 'UTC') - interval '1 month')::date))::date;
    v_end timestamptz := (v_period + interval '1 month') AT TIME ZONE 'UTC';
    acct record;
    v_plan text;
    p record;
    sms_q bigint;
    sms_c bigint;
    agent_q bigint;
    agent_c bigint;
    n int;
    made int := 0;
    v_after bigint;
BEGIN
    PERFORM darkspere.commit_atomically();  -- on Citus: one atomic commit over the nodes it writes
    IF v_end > pg_catalog.now() THEN
        RAISE EXCEPTION 'period % has not ended yet', pg_catalog.to_char(v_period, 'YYYY-MM')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_accounts IS NULL OR max_accounts < 1 THEN
        RAISE EXCEPTION 'max_accounts must be at least 1: %', max_accounts USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Accounts are closed in account order, so the month's newest statement says where the last call stopped.
    -- Two statements, not one with NOT EXISTS: on Citus `accounts` is a reference table and `statements` is
    -- distributed, and Citus runs no correlated subquery beside a reference table.
    SELECT pg_catalog.max(s.account_id) INTO v_after FROM darkspere.statements s WHERE s.period = v_period;
    FOR acct IN SELECT a.account_id, a.plan FROM darkspere.accounts a
                 WHERE a.created_at < v_end AND a.account_id > COALESCE(v_after, 0)
                 ORDER BY a.account_id LIMIT max_accounts LOOP
        -- The month's number counter, locked: a concurrent close_period of this month waits here, and then
        -- (a new statement, a new snapshot) sees the statements the other one made.
        INSERT INTO darkspere.statement_numbers (period, last_number) VALUES (v_period, 0)
        ON CONFLICT (period) DO NOTHING;
        PERFORM FROM darkspere.statement_numbers sn WHERE sn.period = v_period FOR UPDATE;
        CONTINUE WHEN EXISTS (SELECT FROM darkspere.statements s
                               WHERE s.account_id = acct.account_id AND s.period = v_period);
        -- The plan held when the month ended: the newest change before its end, else the plan before the
        -- first change after it, else the plan now.
        SELECT h.new_plan INTO v_plan FROM darkspere.account_plan_history h
         WHERE h.account_id = acct.account_id AND h.changed_at < v_end ORDER BY h.changed_at DESC, h.history_id DESC
         LIMIT 1;
        IF v_plan IS NULL THEN
            SELECT h.old_plan INTO v_plan FROM darkspere.account_plan_history h
             WHERE h.account_id = acct.account_id AND h.changed_at >= v_end ORDER BY h.changed_at, h.history_id
             LIMIT 1;
        END IF;
        v_plan := COALESCE(v_plan, acct.plan);
        SELECT * INTO p FROM darkspere.plans x WHERE x.plan = v_plan;
        SELECT COALESCE(sum(u.overage) FILTER (WHERE u.metric IN ('sms_in', 'sms_out')), 0),
               COALESCE(sum(u.overage_cents) FILTER (WHERE u.metric IN ('sms_in', 'sms_out')), 0),
               COALESCE(sum(u.overage) FILTER (WHERE u.metric = 'agent_messages'), 0),
               COALESCE(sum(u.overage_cents) FILTER (WHERE u.metric = 'agent_messages'), 0)
          INTO sms_q, sms_c, agent_q, agent_c
          FROM darkspere.usage(acct.account_id, v_period) u;
        UPDATE darkspere.statement_numbers sn SET last_number = sn.last_number + 1 WHERE sn.period = v_period
        RETURNING sn.last_number INTO n;
        INSERT INTO darkspere.statements (account_id, period, number, plan, total_cents)
        VALUES (acct.account_id, v_period, 'DS-' || pg_catalog.to_char(v_period, 'YYYYMM') || '-' || n, v_plan,
                COALESCE(p.monthly_cents, 0) + sms_c + agent_c);
        INSERT INTO darkspere.statement_lines (account_id, period, line, kind, description, quantity, unit_cents,
                                               amount_cents)
        VALUES (acct.account_id, v_period, 1, 'base', 'plan ' || v_plan || ', ' || pg_catalog.to_char(v_period, 'YYYY-MM'),
                1, COALESCE(p.monthly_cents, 0), COALESCE(p.monthly_cents, 0)),
               (acct.account_id, v_period, 2, 'sms_overage', 'SMS segments over the plan', sms_q,
                CASE WHEN sms_q > 0 THEN sms_c / sms_q ELSE COALESCE(p.sms_overage_cents, 0) END, sms_c),
               (acct.account_id, v_period, 3, 'agent_overage', 'agent messages over the plan', agent_q,
                CASE WHEN agent_q > 0 THEN agent_c / agent_q ELSE COALESCE(p.agent_overage_cents, 0) END, agent_c);
        made := made + 1;
    END LOOP;
    RETURN made;
END
$fn$;

-- billing_tick — tick()'s billing work (owner only): the hourly meter reports, and once a month has ended, its
-- statements in batches until every account has one. Returns {meter_reports_queued, statements_closed}.
CREATE FUNCTION darkspere.billing_tick()
RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    last_month date := pg_catalog.date_trunc('month', (pg_catalog.now() AT TIME ZONE 'UTC') - interval '1 month')::date;
    queued int := darkspere.queue_meter_reports();
    closed int := 0;
BEGIN
    IF (SELECT b.closed_period FROM darkspere.billing_progress b) IS DISTINCT FROM last_month THEN
        closed := darkspere.close_period(last_month);
        IF closed = 0 THEN
            UPDATE darkspere.billing_progress SET closed_period = last_month;
        END IF;
    END IF;
    RETURN pg_catalog.jsonb_build_object('meter_reports_queued', queued, 'statements_closed', closed);
END
$fn$;
REVOKE ALL ON FUNCTION darkspere.usage(bigint, date), darkspere.queue_meter_reports(timestamptz, int),
    darkspere.meter_report_done(bigint, boolean, text, bigint), darkspere.close_period(date, int),
    darkspere.billing_tick() FROM PUBLIC;
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
-- latency() windows and tick()'s retention. BRIN, not a btree: rows arrive in time order, and a btree entry per
-- row is paid by every traced statement on the hot path (docs/benchmarks.md section 5); a BRIN summary changes
-- only when a row falls outside its page range's bounds. The identity's sequence hands each backend 32 values
-- at a time.
CREATE INDEX trace_events_at ON darkspere.trace_events USING brin (at) WITH (pages_per_range = 16);
ALTER SEQUENCE darkspere.trace_events_event_id_seq CACHE 32;
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
-- Issue #14: alert rules, alert history and notifications (evaluated by tick(); docs/operations.md "Alerts")
------------------------------------------------------------------------------------------------------------------

-- Where an alert is sent: a webhook URL (Slack-compatible POST, signed like agent calls with a secret derived
-- from darkspere.secret_key_file and the channel name, never stored). The URL itself may carry a token (Slack's
-- do): only darkspere_admin reads this table, and the worker gets the URL in the claimed job, not in the row.
CREATE TABLE darkspere.alert_channels (
    channel     text PRIMARY KEY,
    webhook_url text NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
-- alert_channel_check — name and URL, with messages that name the bad value. The URL's host is checked by the
-- worker's egress policy when it sends (as for agents): a private address is refused there, not here.
CREATE FUNCTION darkspere.alert_channel_check() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF NEW.channel !~ '^[a-z0-9][a-z0-9_-]{0,62}$' THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('bad alert channel name: %s', NEW.channel),
            HINT = 'Lower-case letters, digits, - and _, at most 63.';
    END IF;
    IF NEW.webhook_url !~ '^https?://[^\s/?#]+[^\s]*$' OR pg_catalog.length(NEW.webhook_url) > 2048 THEN
        -- The URL may hold a token: only what precedes its path is named.
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('webhook_url must be an http(s) URL of at most 2048 characters: %s',
                                        pg_catalog.substring(NEW.webhook_url, '^([^/?#]*(?://[^/?#@]*)?)'));
    END IF;
    RETURN NEW;
END
$fn$;
CREATE TRIGGER alert_channels_check BEFORE INSERT OR UPDATE ON darkspere.alert_channels
    FOR EACH ROW EXECUTE FUNCTION darkspere.alert_channel_check();
SELECT pg_catalog.pg_extension_config_dump('darkspere.alert_channels', '');

-- The rules tick() evaluates. metric: error_rate (% of agent calls that failed in the window), agent_p95_ms
-- (per agent, p95 of its answered calls in the window), agent_health (per agent, health_score now),
-- capacity_use (% of active agents' capacity in flight now), failed_signatures (per source address, webhook
-- signatures refused in the window, reported by the worker). A rule fires once per subject (the whole
-- platform, an agent, a source) and not again for that subject within its cooldown; it resolves when the
-- condition no longer holds. channel NULL: recorded and NOTIFYed only.
CREATE TABLE darkspere.alert_rules (
    name      text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    metric    text NOT NULL,
    op        text NOT NULL,
    threshold numeric NOT NULL,
    "window"  interval NOT NULL DEFAULT '5 minutes',
    severity  text NOT NULL,
    cooldown  interval NOT NULL DEFAULT '15 minutes',
    enabled   boolean NOT NULL DEFAULT true,
    channel   text REFERENCES darkspere.alert_channels ON UPDATE CASCADE ON DELETE SET NULL,
    is_seed   boolean NOT NULL DEFAULT false
);

-- alert_rule_check — the rule's fields, with messages that name the bad value (a CHECK constraint would name
-- only itself).
CREATE FUNCTION darkspere.alert_rule_check() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF NEW.metric NOT IN ('error_rate', 'agent_p95_ms', 'agent_health', 'capacity_use', 'failed_signatures') THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('unknown alert metric: %s', NEW.metric),
            HINT = 'Metrics are error_rate, agent_p95_ms, agent_health, capacity_use and failed_signatures.';
    END IF;
    IF NEW.op NOT IN ('>', '>=', '<', '<=') THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('unknown alert operator: %s', NEW.op),
            HINT = 'Operators are >, >=, < and <=.';
    END IF;
    IF NEW.severity NOT IN ('critical', 'error', 'warning', 'security', 'info') THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('unknown alert severity: %s', NEW.severity),
            HINT = 'Severities are critical, error, warning, security and info.';
    END IF;
    IF NEW."window" <= interval '0' OR NEW."window" > interval '7 days' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('alert window must be more than 0 and at most 7 days: %s', NEW."window");
    END IF;
    IF NEW.cooldown < interval '0' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('alert cooldown must not be negative: %s', NEW.cooldown);
    END IF;
    RETURN NEW;
END
$fn$;
CREATE TRIGGER alert_rules_check BEFORE INSERT OR UPDATE ON darkspere.alert_rules
    FOR EACH ROW EXECUTE FUNCTION darkspere.alert_rule_check();

INSERT INTO darkspere.alert_rules (name, metric, op, threshold, "window", severity, cooldown, is_seed) VALUES
    ('error_rate',        'error_rate',        '>',  10,   '5 minutes', 'critical', '15 minutes', true),
    ('agent_latency_p95', 'agent_p95_ms',      '>',  1000, '5 minutes', 'warning',  '15 minutes', true),
    ('agent_health',      'agent_health',      '<',  70,   '5 minutes', 'error',    '15 minutes', true),
    ('capacity',          'capacity_use',      '>',  85,   '5 minutes', 'warning',  '15 minutes', true),
    ('failed_signatures', 'failed_signatures', '>=', 3,    '1 hour',    'security', '1 hour',     true);
-- As for plans: an operator's own rules are dumped, the seeds come with the extension (a change to a seed rule,
-- e.g. its channel, is redone after a restore; docs/operations.md "Alerts").
SELECT pg_catalog.pg_extension_config_dump('darkspere.alert_rules', 'WHERE NOT is_seed');

-- Firing and resolved alerts, kept for ever (a handful per incident). subject: '' (the platform),
-- 'agent:<id>' or 'source:<address>'. At most one firing alert per rule and subject.
CREATE TABLE darkspere.alerts (
    alert_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule            text NOT NULL REFERENCES darkspere.alert_rules ON UPDATE CASCADE ON DELETE CASCADE,
    subject         text NOT NULL DEFAULT '',
    severity        text NOT NULL,
    state           text NOT NULL DEFAULT 'firing' CHECK (state IN ('firing', 'resolved')),
    value           numeric,
    threshold       numeric NOT NULL,
    fired_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    resolved_at     timestamptz,
    acknowledged_at timestamptz,
    acknowledged_by text
);
CREATE UNIQUE INDEX alerts_one_firing ON darkspere.alerts (rule, subject) WHERE state = 'firing';
CREATE INDEX alerts_last_fired ON darkspere.alerts (rule, subject, fired_at);
SELECT pg_catalog.pg_extension_config_dump('darkspere.alerts', '');
SELECT pg_catalog.pg_extension_config_dump('darkspere.alerts_alert_id_seq', '');

-- When evaluate_alerts last ran (one row): tick() evaluates the rules at most every darkspere.alert_interval.
-- Unlogged: lost in a crash, the next tick evaluates at once.
CREATE UNLOGGED TABLE darkspere.alert_evaluation (
    only_row     boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    evaluated_at timestamptz NOT NULL
);
INSERT INTO darkspere.alert_evaluation VALUES (true, '-infinity');

-- Webhook signatures the worker refused, counted per source address and minute (report_signature_failures,
-- batched by the worker). Pruned by evaluate_alerts() after a day.
CREATE TABLE darkspere.signature_failures (
    source  inet NOT NULL,
    minute  timestamptz NOT NULL,
    failures int NOT NULL CHECK (failures > 0),
    PRIMARY KEY (minute, source)
);
SELECT pg_catalog.pg_extension_config_dump('darkspere.signature_failures', '');

-- report_signature_failures — adds the worker's counts (one call per batch: a source and its count each).
CREATE FUNCTION darkspere.report_signature_failures(sources inet[], counts int[])
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM darkspere.commit_atomically();  -- on Citus: one atomic commit over the nodes it writes
    IF sources IS NULL OR counts IS NULL OR pg_catalog.cardinality(sources) <> pg_catalog.cardinality(counts) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('sources and counts must be arrays of one length: %s and %s',
                                        COALESCE(pg_catalog.cardinality(sources)::text, 'NULL'),
                                        COALESCE(pg_catalog.cardinality(counts)::text, 'NULL'));
    END IF;
    IF EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest(sources), pg_catalog.unnest(counts)) u(s, c) WHERE s IS NULL OR c IS NULL OR c <= 0) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('every source needs a count above 0: %s / %s', sources, counts);
    END IF;
    INSERT INTO darkspere.signature_failures AS f (source, minute, failures)
    SELECT u.s, pg_catalog.date_trunc('minute', pg_catalog.now()), pg_catalog.sum(u.c)::int
      FROM ROWS FROM (pg_catalog.unnest(sources), pg_catalog.unnest(counts)) u(s, c) GROUP BY u.s
    ON CONFLICT (minute, source) DO UPDATE SET failures = f.failures + EXCLUDED.failures;
END
$fn$;

-- alert_values — what each enabled rule measures now, per subject, and whether its condition holds.
-- Cost: error_rate and agent_p95_ms read the trace rows of their window (trace_events_at, BRIN), agent_health
-- and capacity_use read the agents (one row each, plus agent_load), failed_signatures the minutes of its window.
CREATE FUNCTION darkspere.alert_values()
RETURNS TABLE(rule text, subject text, value numeric, holds boolean)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    r record;
    subjects text[];
    vals numeric[];
    active_capacity numeric;
BEGIN
    -- A rule at a time, each metric read by a statement that joins no rule: on Citus the rules are a coordinator
    -- table and the metrics read distributed tables, and Citus joins no distributed table with a local one.
    FOR r IN SELECT ar.name, ar.metric, ar."window", ar.op, ar.threshold
               FROM darkspere.alert_rules ar WHERE ar.enabled ORDER BY ar.name LOOP
        IF r.metric = 'error_rate' THEN
            SELECT ARRAY[''], ARRAY[100.0 * pg_catalog.count(*) FILTER (WHERE NOT (e.detail->>'ok')::boolean)
                                    / NULLIF(pg_catalog.count(*), 0)]
              INTO subjects, vals
              FROM darkspere.trace_events e
             WHERE e.at >= pg_catalog.now() - r."window" AND e.step = 'agent_call_finished';
        ELSIF r.metric = 'agent_p95_ms' THEN
            SELECT pg_catalog.array_agg('agent:' || p.agent_id), pg_catalog.array_agg(p.p95)
              INTO subjects, vals
              FROM (SELECT e.agent_id,
                           pg_catalog.percentile_cont(0.95) WITHIN GROUP (ORDER BY e.latency_ms)::numeric AS p95
                      FROM darkspere.trace_events e
                     WHERE e.at >= pg_catalog.now() - r."window" AND e.step = 'agent_call_finished'
                       AND e.latency_ms IS NOT NULL AND e.agent_id IS NOT NULL
                     GROUP BY e.agent_id) p;
        ELSIF r.metric = 'agent_health' THEN
            SELECT pg_catalog.array_agg('agent:' || a.agent_id), pg_catalog.array_agg(a.health_score::numeric)
              INTO subjects, vals
              FROM darkspere.agents a WHERE a.status IN ('active', 'unhealthy');
        ELSIF r.metric = 'capacity_use' THEN
            SELECT pg_catalog.sum(a.capacity) INTO active_capacity FROM darkspere.agents a WHERE a.status = 'active';
            SELECT ARRAY[''], ARRAY[100.0 * COALESCE(pg_catalog.sum(l.in_flight), 0) / NULLIF(active_capacity, 0)]
              INTO subjects, vals
              FROM darkspere.agent_load l
              JOIN darkspere.agents a ON a.agent_id = l.agent_id AND a.account_id = l.account_id
             WHERE a.status = 'active';
        ELSIF r.metric = 'failed_signatures' THEN
            SELECT pg_catalog.array_agg('source:' || pg_catalog.host(f.source)), pg_catalog.array_agg(f.failures)
              INTO subjects, vals
              FROM (SELECT sf.source, pg_catalog.sum(sf.failures)::numeric AS failures
                      FROM darkspere.signature_failures sf
                     WHERE sf.minute >= pg_catalog.date_trunc('minute', pg_catalog.now() - r."window")
                     GROUP BY sf.source) f;
        ELSE
            CONTINUE;
        END IF;
        RETURN QUERY
            SELECT r.name, m.subject, pg_catalog.round(m.value, 1),
                   CASE r.op WHEN '>' THEN m.value > r.threshold WHEN '>=' THEN m.value >= r.threshold
                             WHEN '<' THEN m.value < r.threshold WHEN '<=' THEN m.value <= r.threshold END
              FROM ROWS FROM (pg_catalog.unnest(subjects), pg_catalog.unnest(vals)) m(subject, value)
             WHERE m.value IS NOT NULL;
    END LOOP;
END
$fn$;

-- evaluate_alerts — called by tick(): fires the rules whose condition holds (once per subject, not again
-- within the cooldown), resolves the firing alerts whose condition no longer holds, queues an alert_notify
-- job per change for the rule's channel and NOTIFYs darkspere_alerts with the alert id. Returns
-- {fired, resolved}. Serialised by an advisory lock so two ticks never fire one alert twice.
CREATE FUNCTION darkspere.evaluate_alerts()
RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
    resolved_ids bigint[];
    fired_ids bigint[];
    id bigint;
BEGIN
    IF NOT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('darkspere.evaluate_alerts')) THEN
        RETURN pg_catalog.jsonb_build_object('skipped', true);
    END IF;
    -- At most every darkspere.alert_interval (10 s): with many agents an evaluation costs 0.1–0.2 s.
    UPDATE darkspere.alert_evaluation SET evaluated_at = pg_catalog.now()
     WHERE evaluated_at <= pg_catalog.now()
           - COALESCE(pg_catalog.current_setting('darkspere.alert_interval', true), '10s')::interval;
    IF NOT FOUND THEN
        RETURN pg_catalog.jsonb_build_object('skipped', true);
    END IF;
    -- One statement: the resolutions and the new alerts both read one evaluation of the rules.
    WITH v AS MATERIALIZED (SELECT * FROM darkspere.alert_values()),
    resolved AS (
        UPDATE darkspere.alerts al SET state = 'resolved', resolved_at = pg_catalog.now()
         WHERE al.state = 'firing'
           AND NOT EXISTS (SELECT 1 FROM v WHERE v.rule = al.rule AND v.subject = al.subject AND v.holds)
        RETURNING al.alert_id),
    fired AS (
        INSERT INTO darkspere.alerts (rule, subject, severity, value, threshold)
        SELECT v.rule, v.subject, r.severity, v.value, r.threshold
          FROM v JOIN darkspere.alert_rules r ON r.name = v.rule
         WHERE v.holds
           AND NOT EXISTS (SELECT 1 FROM darkspere.alerts p
                            WHERE p.rule = v.rule AND p.subject = v.subject
                              AND (p.state = 'firing' OR p.fired_at > pg_catalog.now() - r.cooldown))
         ORDER BY v.rule, v.subject
        RETURNING alert_id)
    SELECT ARRAY(SELECT alert_id FROM resolved ORDER BY alert_id), ARRAY(SELECT alert_id FROM fired ORDER BY alert_id)
      INTO resolved_ids, fired_ids;
    FOREACH id IN ARRAY resolved_ids || fired_ids LOOP
        PERFORM darkspere.alert_announce(id);
    END LOOP;
    DELETE FROM darkspere.signature_failures WHERE minute < pg_catalog.now() - interval '1 day';
    RETURN pg_catalog.jsonb_build_object('fired', pg_catalog.cardinality(fired_ids),
                                         'resolved', pg_catalog.cardinality(resolved_ids));
END
$fn$;

-- alert_announce — NOTIFY darkspere_alerts (payload: the alert id) and, when the rule has an enabled channel, an
-- alert_notify job (5 attempts) whose payload is the message; the URL and the signing secret are added when a
-- worker claims it (claim.cpp), never stored in the job.
CREATE FUNCTION darkspere.alert_announce(alert_id bigint)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    al darkspere.alerts;
    ch text;
BEGIN
    SELECT * INTO al FROM darkspere.alerts x WHERE x.alert_id = alert_announce.alert_id;
    PERFORM pg_catalog.pg_notify('darkspere_alerts', al.alert_id::text);
    SELECT c.channel INTO ch FROM darkspere.alert_rules r JOIN darkspere.alert_channels c ON c.channel = r.channel
     WHERE r.name = al.rule AND c.enabled;
    IF ch IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO darkspere.jobs (kind, max_attempts, idempotency_key, payload)
    VALUES ('alert_notify', 5, 'alert_notify:' || al.alert_id || ':' || al.state,
            pg_catalog.jsonb_build_object(
                'channel', ch, 'request_id', 'alert-' || al.alert_id,
                'body', pg_catalog.jsonb_build_object(
                    'text', pg_catalog.format('[%s] %s %s%s: %s %s (threshold %s)',
                                              pg_catalog.upper(al.severity), al.rule,
                                              CASE al.state WHEN 'firing' THEN 'firing' ELSE 'resolved' END,
                                              CASE al.subject WHEN '' THEN '' ELSE ' for ' || al.subject END,
                                              'value', al.value, al.threshold),
                    'alert_id', al.alert_id, 'rule', al.rule, 'state', al.state, 'severity', al.severity,
                    'subject', al.subject, 'value', al.value, 'threshold', al.threshold,
                    'fired_at', al.fired_at, 'resolved_at', al.resolved_at)))
    ON CONFLICT (idempotency_key) DO NOTHING;
END
$fn$;

-- alert_channel_secret — the secret a channel's webhook verifies X-DarkSpere-Signature with (derived from
-- darkspere.secret_key_file and the channel name, never stored; alerts.cpp).
CREATE FUNCTION darkspere.alert_channel_secret(channel text)
RETURNS text AS 'MODULE_PATHNAME', 'darkspere_alert_channel_secret' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- acknowledge_alert — a person has seen it: recorded once (a second acknowledgement keeps the first).
CREATE FUNCTION darkspere.acknowledge_alert(alert_id bigint, by text)
RETURNS darkspere.alerts LANGUAGE plpgsql AS $fn$
DECLARE
    al darkspere.alerts;
BEGIN
    PERFORM darkspere.commit_atomically();  -- on Citus: one atomic commit over the nodes it writes
    IF acknowledge_alert.by IS NULL OR pg_catalog.btrim(acknowledge_alert.by) = '' THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'by must name who acknowledges, not be null or empty';
    END IF;
    UPDATE darkspere.alerts x SET acknowledged_at = COALESCE(x.acknowledged_at, pg_catalog.now()),
                                  acknowledged_by = COALESCE(x.acknowledged_by, acknowledge_alert.by)
     WHERE x.alert_id = acknowledge_alert.alert_id RETURNING x.* INTO al;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'P0002',
            MESSAGE = pg_catalog.format('no alert with alert_id %s', COALESCE(acknowledge_alert.alert_id::text, 'NULL'));
    END IF;
    RETURN al;
END
$fn$;
REVOKE ALL ON FUNCTION darkspere.alert_rule_check(), darkspere.alert_channel_check(),
    darkspere.report_signature_failures(inet[], int[]),
    darkspere.alert_values(), darkspere.evaluate_alerts(), darkspere.alert_announce(bigint),
    darkspere.acknowledge_alert(bigint, text), darkspere.alert_channel_secret(text) FROM PUBLIC;

------------------------------------------------------------------------------------------------------------------
-- Tenant keys (issue #16, item 1): every key of a tenant table includes account_id
------------------------------------------------------------------------------------------------------------------
--
-- A table distributed by account_id (Citus) can only enforce a primary key, a unique constraint or a foreign
-- key that includes account_id, because each is checked on one shard. 0.1.0 keyed agents, sessions, messages
-- and consent_events by their id alone, agent_load had no account_id, and messages.message_sid was unique across
-- all tenants. Every key below now carries account_id; the rule is checked for every table by
-- test/regress/sql/190_tenant_keys.sql, so a table added later cannot break it unnoticed.
--
-- Column order: (id, account_id), not (account_id, id). Citus needs the distribution column in the key, in any
-- position. With the id first, every statement that looks a row up by its id (an agent call's agent, an ack's
-- message) keeps using the primary key with no second index, and ids drawn from a sequence append to the right
-- edge of the index as before instead of splitting pages in the middle of each tenant's range. Per-account
-- scans have their own indexes (agents (account_id, name), sessions_one_active, messages_waiting_account).
--
-- Left as they are, on purpose (docs/scaling.md, "Tenant keys"): jobs (the queue: where it lives on Citus is
-- item 4's measured choice, and some jobs have no tenant), delivery_events (a status callback can arrive before
-- its message is known, so its account is not known yet), numbers (the number -> account lookup, unique by
-- number across tenants by design), and the global tables (plans, features, rate-limit rules, alert rules).

-- Foreign keys first: they depend on the unique indexes that are replaced.
ALTER TABLE darkspere.agent_load DROP CONSTRAINT agent_load_agent_id_fkey;
ALTER TABLE darkspere.sessions DROP CONSTRAINT sessions_agent_id_fkey;
ALTER TABLE darkspere.messages DROP CONSTRAINT messages_session_id_fkey;

ALTER TABLE darkspere.agents DROP CONSTRAINT agents_pkey, ADD PRIMARY KEY (agent_id, account_id);
ALTER TABLE darkspere.sessions DROP CONSTRAINT sessions_pkey, ADD PRIMARY KEY (session_id, account_id);
ALTER TABLE darkspere.messages DROP CONSTRAINT messages_pkey, ADD PRIMARY KEY (message_id, account_id),
    DROP CONSTRAINT messages_message_sid_key, ADD UNIQUE (message_sid, account_id);
ALTER TABLE darkspere.consent_events DROP CONSTRAINT consent_events_pkey, ADD PRIMARY KEY (event_id, account_id);

-- agent_load gains its agent's account (filled from agents for rows of an upgraded install).
ALTER TABLE darkspere.agent_load ADD COLUMN account_id bigint;
UPDATE darkspere.agent_load l SET account_id = a.account_id FROM darkspere.agents a WHERE a.agent_id = l.agent_id;
ALTER TABLE darkspere.agent_load ALTER COLUMN account_id SET NOT NULL,
    DROP CONSTRAINT agent_load_pkey, ADD PRIMARY KEY (agent_id, shard, account_id),
    ADD FOREIGN KEY (agent_id, account_id) REFERENCES darkspere.agents (agent_id, account_id) ON DELETE CASCADE;

-- A session's agent. 0.1.0 cleared sessions.agent_id when its agent was deleted (ON DELETE SET NULL); Citus
-- refuses SET NULL on a foreign key that includes the distribution column, even PostgreSQL 15's SET NULL
-- (agent_id). No function deletes agents (an agent is retired with set_agent_status(…, 'disabled')), so a
-- DELETE of an agent that sessions still name is now refused; deleting its account still removes both.
ALTER TABLE darkspere.sessions ADD FOREIGN KEY (agent_id, account_id)
    REFERENCES darkspere.agents (agent_id, account_id);
ALTER TABLE darkspere.messages ADD FOREIGN KEY (session_id, account_id)
    REFERENCES darkspere.sessions (session_id, account_id) ON DELETE CASCADE;

------------------------------------------------------------------------------------------------------------------
-- Issue #15 (last part): one plan per message (docs/billing.md "A plan change during traffic")
------------------------------------------------------------------------------------------------------------------

-- plan_change_lock — a trigger: whatever changes what an account's plan allows (its plan, a payment's past-due
-- time, an override) takes the account's plan lock exclusively until its transaction ends. receive_sms holds
-- the same lock shared from its first statement (src/ext/inbound.cpp, class "DSpl" = 1146318956, object
-- hashint8(account_id)), so a change waits for the messages in flight and the messages that arrive meanwhile
-- wait for the change: each message is decided and counted under one plan. A collision of two accounts' hashes
-- only makes one wait for the other's change.
CREATE FUNCTION darkspere.plan_change_lock() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(1146318956, pg_catalog.hashint8(
        CASE WHEN TG_OP = 'DELETE' THEN OLD.account_id ELSE NEW.account_id END));
    RETURN NULL;
END
$fn$;
CREATE TRIGGER accounts_plan_change AFTER UPDATE OF plan ON darkspere.accounts
    FOR EACH ROW WHEN (OLD.plan IS DISTINCT FROM NEW.plan) EXECUTE FUNCTION darkspere.plan_change_lock();
CREATE TRIGGER subscriptions_past_due_change AFTER UPDATE OF past_due_since ON darkspere.subscriptions
    FOR EACH ROW WHEN (OLD.past_due_since IS DISTINCT FROM NEW.past_due_since)
    EXECUTE FUNCTION darkspere.plan_change_lock();
CREATE TRIGGER subscriptions_past_due_insert_delete AFTER INSERT OR DELETE ON darkspere.subscriptions
    FOR EACH ROW EXECUTE FUNCTION darkspere.plan_change_lock();
CREATE TRIGGER account_features_change AFTER INSERT OR UPDATE OR DELETE ON darkspere.account_features
    FOR EACH ROW EXECUTE FUNCTION darkspere.plan_change_lock();
REVOKE ALL ON FUNCTION darkspere.plan_change_lock() FROM PUBLIC;

------------------------------------------------------------------------------------------------------------------
-- Issue #16: the Citus layout as an operator's tool (docs/scaling.md "Deploying on Citus")
------------------------------------------------------------------------------------------------------------------

-- citus_layout — where each table of the extension goes on Citus, in the order distribute() places them (a
-- referenced table before the tables that reference it): 'reference' (a copy on every node: global tables and the
-- number -> account lookup every node must read locally), 'distributed' (by account_id, colocated with agents)
-- or 'coordinator' (stays a local table of the coordinator). Every table of the schema is listed:
-- test/regress/sql/225_citus_layout.sql fails when a new table is not.
CREATE FUNCTION darkspere.citus_layout(OUT ord int, OUT table_name text, OUT placement text, OUT reason text)
RETURNS SETOF record LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
VALUES
    (1, 'plans', 'reference', 'global: read by every tenant''s statements'),
    (2, 'features', 'reference', 'global'),
    (3, 'plan_features', 'reference', 'global'),
    (4, 'plan_prices', 'reference', 'global'),
    (5, 'stripe_meters', 'reference', 'global'),
    (6, 'accounts', 'reference', 'numbers references it, and a reference table may only reference reference tables'),
    (7, 'numbers', 'reference', 'the number -> account lookup that starts every webhook, read on any node'),
    (8, 'rate_limit_rules', 'reference', 'read by every node''s limit upsert: an operator''s change reaches them all'),
    (9, 'rate_limit_overrides', 'reference', 'read by every node''s limit upsert: an operator''s change reaches them all'),
    (10, 'agents', 'distributed', 'tenant table; the colocation group of every other'),
    (11, 'account_features', 'distributed', 'tenant table'),
    (12, 'account_keys', 'distributed', 'tenant table'),
    (13, 'account_plan_history', 'distributed', 'tenant table'),
    (14, 'agent_load', 'distributed', 'tenant table'),
    (15, 'agent_checks', 'distributed', 'tenant table'),
    (16, 'agent_events', 'distributed', 'tenant table'),
    (17, 'sessions', 'distributed', 'tenant table'),
    (18, 'messages', 'distributed', 'tenant table'),
    (19, 'consent_events', 'distributed', 'tenant table'),
    (20, 'opt_outs', 'distributed', 'tenant table'),
    (21, 'usage_counters', 'distributed', 'tenant table'),
    (22, 'billing_calls', 'distributed', 'tenant table'),
    (23, 'meter_reports', 'distributed', 'tenant table'),
    (24, 'statements', 'distributed', 'tenant table'),
    (25, 'statement_lines', 'distributed', 'tenant table'),
    (26, 'subscriptions', 'distributed', 'tenant table'),
    (27, 'trace_events', 'distributed', 'tenant table'),
    (40, 'jobs', 'coordinator', 'the queue: claimed across tenants with row locks, which Citus runs on one node only'),
    (41, 'delivery_events', 'coordinator', 'account_id may be NULL: a callback without From, or from no number of its AccountSid'),
    (42, 'rate_limit_state', 'coordinator', 'unlogged, which Citus cannot distribute; the per-phone ceiling spans tenants'),
    (45, 'route_cursor', 'coordinator', 'one row per installation: tick()''s hint'),
    (46, 'stripe_events', 'coordinator', 'Stripe''s global event ids'),
    (47, 'billing_progress', 'coordinator', 'one row per installation'),
    (48, 'statement_numbers', 'coordinator', 'one counter per installation'),
    (49, 'signature_failures', 'coordinator', 'per source address, not per tenant'),
    (50, 'alert_rules', 'coordinator', 'carries validation triggers, which Citus refuses'),
    (51, 'alert_channels', 'coordinator', 'carries validation triggers, which Citus refuses'),
    (52, 'alerts', 'coordinator', 'global, evaluated by tick() on the coordinator'),
    (53, 'alert_evaluation', 'coordinator', 'global, evaluated by tick() on the coordinator')
$fn$;

-- commit_atomically — asks Citus, when it is loaded, for two-phase commit of the calling transaction (nothing on
-- plain PostgreSQL). Citus does not count writes to the coordinator's own tables (jobs, stripe_events, …), and
-- would commit a single worker node with a one-phase COMMIT before them. Every C function of the extension does
-- it on entry (src/ext/citus_commit.hpp); every SECURITY DEFINER PL/pgSQL function that writes calls this first
-- (test/regress/sql/225_citus_layout.sql lists any that does not).
CREATE FUNCTION darkspere.commit_atomically() RETURNS void
AS 'MODULE_PATHNAME', 'darkspere_commit_atomically' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- require_citus — raises unless the citus extension is in this database (for the Citus tools below).
CREATE FUNCTION darkspere.require_citus(tool text) RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION '% needs the citus extension in database "%"', tool, pg_catalog.current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Add citus to shared_preload_libraries, CREATE EXTENSION citus and add the worker nodes '
                         'first (docs/scaling.md, "Deploying on Citus").';
    END IF;
END
$fn$;

-- use_node_id_range — on a Citus worker node: moves each of the extension's sequences on this node to the node
-- group's own range, (g << 48) + 1 .. (g + 1) << 48, as Citus does for the sequences it creates. A statement Citus
-- sends whole to a shard evaluates its column defaults on that node, from the node's copy of the sequences, which
-- start at 1 like the coordinator's: without the range, ids drawn there collide with ids drawn on the
-- coordinator. Idempotent: a sequence already in its range is left where it is (a restart would hand out its ids
-- again). Does nothing on the coordinator (group 0 keeps the ids it has). Returns what it did.
CREATE FUNCTION darkspere.use_node_id_range() RETURNS text LANGUAGE plpgsql AS $fn$
DECLARE
    g bigint;
    lo bigint;
    hi bigint;
    s record;
    moved int := 0;
    kept int := 0;
BEGIN
    PERFORM darkspere.require_citus('darkspere.use_node_id_range()');
    g := (SELECT groupid FROM pg_catalog.pg_dist_local_group);
    IF g = 0 THEN
        RETURN 'coordinator: sequences left as they are';
    END IF;
    lo := (g << 48) + 1;
    hi := (g + 1) << 48;
    -- The coordinator propagates its DDL; this is one node's own setting.
    PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'off', true);
    FOR s IN SELECT sequencename, min_value FROM pg_catalog.pg_sequences WHERE schemaname = 'darkspere'
              ORDER BY sequencename LOOP
        IF s.min_value = lo THEN
            kept := kept + 1;
        ELSE
            EXECUTE pg_catalog.format('ALTER SEQUENCE darkspere.%I MINVALUE %s MAXVALUE %s START WITH %s RESTART',
                                      s.sequencename, lo, hi, lo);
            moved := moved + 1;
        END IF;
    END LOOP;
    RETURN pg_catalog.format('group %s: %s sequences moved to ids %s..%s, %s already there', g, moved, lo, hi,
                             kept);
END
$fn$;

-- receive_sms_for — receive_sms keyed by the account the number belongs to (looked up by the caller in
-- darkspere.numbers): the same decision and result row; a number of another account is refused (22023). On Citus,
-- distribute() registers it with create_distributed_function by account_id, so that the whole call runs on the
-- node that holds the account's shards: no two-phase commit, no coordinator in the text's transaction. Its agent
-- call is queued in that node's own jobs table (docs/scaling.md, "One queue per node").
CREATE FUNCTION darkspere.receive_sms_for(account_id bigint, provider_account text, to_number text,
                                          from_number text, body text, message_sid text, num_media int DEFAULT 0,
                                          request_id text DEFAULT NULL)
RETURNS TABLE (disposition text, session_id bigint, message_id bigint, agent_id bigint, reply text)
AS 'MODULE_PATHNAME', 'darkspere_receive_sms_for' LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1
SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- number_account — the account a number belongs to, for the AccountSid that speaks for it (NULL: no such number of
-- that AccountSid). The worker looks it up before calling receive_sms_for, the entry point Citus delegates by
-- account (on Citus numbers is a reference table: read on the node the worker is connected to).
CREATE FUNCTION darkspere.number_account(provider_account text, to_number text) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    -- Positional: in a SQL function a column's name hides a parameter's, and both are named alike here.
    SELECT n.account_id FROM darkspere.numbers n WHERE n.number = $2 AND n.provider_account = $1
$fn$;

-- queue_nodes — the worker nodes whose own job queues a worker must serve: on Citus once distribute() delegated
-- receive_sms_for (texts then queue their agent calls on their tenant's node), every active primary worker node
-- as the coordinator reaches it. No rows on plain PostgreSQL, nor on Citus before distribute(): every job is in
-- the coordinator's queue then. The worker calls it on the coordinator (docs/scaling.md, "One queue per node").
CREATE FUNCTION darkspere.queue_nodes(OUT node_name text, OUT node_port int) RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_node') IS NULL
       OR pg_catalog.to_regclass('pg_catalog.pg_dist_object') IS NULL THEN
        RETURN;
    END IF;
    -- Citus's catalogs are read with EXECUTE: on plain PostgreSQL they do not exist, and a static reference
    -- would fail when the function is first called.
    RETURN QUERY EXECUTE
        'SELECT d.nodename::text, d.nodeport::int FROM pg_catalog.pg_dist_node d
          WHERE d.isactive AND d.noderole = ''primary'' AND d.groupid <> 0
            AND EXISTS (SELECT 1 FROM pg_catalog.pg_dist_object o
                         WHERE o.classid = ''pg_catalog.pg_proc''::regclass
                           AND o.objid = ''darkspere.receive_sms_for(bigint, text, text, text, text, text, integer, text)''::regprocedure
                           AND o.distribution_argument_index IS NOT NULL)
          ORDER BY d.nodename, d.nodeport';
END
$fn$;

-- tick_queue — tick()'s queue steps alone, over the jobs of the node it runs on (expired leases reclaimed or
-- dead-lettered, finished jobs and stale rate-limit rows pruned): the worker calls it on every queue node
-- (queue_nodes), while tick() on the coordinator does the rest. Skipped ({"skipped": true}) while a tick runs there.
CREATE FUNCTION darkspere.tick_queue() RETURNS jsonb
AS 'MODULE_PATHNAME', 'darkspere_tick_queue' LANGUAGE C VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- secret_key_fingerprint — 16 hex digits that tell this server's master key (darkspere.secret_key_file) from
-- another's and say nothing about it. distribute() compares the nodes' fingerprints: a node with another key would
-- sign agent calls with other secrets than register_agent returned. Superuser only.
CREATE FUNCTION darkspere.secret_key_fingerprint() RETURNS text
AS 'MODULE_PATHNAME', 'darkspere_secret_key_fingerprint' LANGUAGE C VOLATILE PARALLEL SAFE;

-- distribute — on the Citus coordinator, after the worker nodes were added: places every table as citus_layout()
-- says (create_reference_table, create_distributed_table by account_id colocated with agents; rows already there
-- move into the shards), registers receive_sms_for with create_distributed_function by account_id, and gives each
-- worker node its id range (use_node_id_range). shard_count: shards per
-- distributed table (NULL: citus.shard_count); it applies to the first placement only. Idempotent: a table
-- already placed is left as it is, so running it again after citus_add_node (before rebalancing) gives the new
-- node its id range. The rows a table had are copied into its shards and removed from the coordinator's
-- table. Returns one row per step.
CREATE FUNCTION darkspere.distribute(shard_count int DEFAULT NULL, delegate boolean DEFAULT true)
RETURNS TABLE (object text, action text) LANGUAGE plpgsql AS $fn$
DECLARE
    t record;
    rel regclass;
    placed regclass[] := '{}';
    n record;
BEGIN
    PERFORM darkspere.require_citus('darkspere.distribute()');
    IF shard_count IS NOT NULL AND (shard_count < 1 OR shard_count > 64000) THEN
        RAISE EXCEPTION 'shard_count must be between 1 and 64000: %', shard_count
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT pg_catalog.citus_is_coordinator() THEN
        RAISE EXCEPTION 'darkspere.distribute() runs on the Citus coordinator, not on a worker node'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- Every node derives agents' signing secrets from its own key file: they must all hold the coordinator's, or
    -- a call claimed on a worker node would be signed with secrets the agent never got.
    FOR n IN SELECT r.nodename, r.nodeport, r.success, r.result
               FROM pg_catalog.run_command_on_workers('SELECT darkspere.secret_key_fingerprint()') r
              ORDER BY r.nodename, r.nodeport LOOP
        IF NOT n.success OR n.result IS DISTINCT FROM darkspere.secret_key_fingerprint() THEN
            RAISE EXCEPTION 'worker node %:% does not hold the coordinator''s master key (darkspere.secret_key_file)',
                    n.nodename, n.nodeport
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = CASE WHEN n.success THEN 'Its key''s fingerprint differs from the coordinator''s.'
                                    ELSE 'It could not be asked: ' || n.result END,
                      HINT = 'Copy the coordinator''s key file (darkspere_secret.key in its data directory, unless '
                             'darkspere.secret_key_file says otherwise) to the same place on every node, mode 0600 '
                             'and owned by the server''s user; then run distribute() again.';
        END IF;
    END LOOP;
    -- Otherwise Citus turns every table linked to a reference table by a foreign key into a Citus local table,
    -- and stops at the extension's views.
    PERFORM pg_catalog.set_config('citus.enable_local_reference_table_foreign_keys', 'off', true);
    -- A table with a foreign key to a reference table cannot be distributed in parallel in this transaction.
    PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
    -- accounts, subscriptions and account_features carry the plan-change lock trigger; Citus distributes tables
    -- with triggers only when told (its advisory lock is taken on the tenant's node, as a text's: docs/scaling.md).
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
    IF shard_count IS NOT NULL THEN
        PERFORM pg_catalog.set_config('citus.shard_count', shard_count::text, true);
    END IF;
    FOR t IN SELECT l.table_name, l.placement FROM darkspere.citus_layout() l ORDER BY l.ord LOOP
        rel := pg_catalog.to_regclass(pg_catalog.format('darkspere.%I', t.table_name));
        object := 'darkspere.' || t.table_name;
        IF t.placement = 'coordinator' THEN
            action := 'stays on the coordinator';
        ELSIF EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = rel) THEN
            action := 'already placed';
        ELSE
            IF t.placement = 'reference' THEN
                PERFORM pg_catalog.create_reference_table(rel);
                action := 'reference table';
            ELSE
                -- agents starts the colocation group every other tenant table joins.
                PERFORM pg_catalog.create_distributed_table(rel, 'account_id', colocate_with =>
                    CASE WHEN t.table_name = 'agents' THEN 'default' ELSE 'darkspere.agents' END);
                action := 'distributed by account_id, colocated with agents';
            END IF;
            placed := placed || rel;
        END IF;
        RETURN NEXT;
    END LOOP;
    -- Citus copies the rows a table had into its shards and leaves them in the coordinator's table as well,
    -- unread; removed here, the referencing tables first.
    FOR i IN REVERSE COALESCE(pg_catalog.array_upper(placed, 1), 0)..1 LOOP
        PERFORM pg_catalog.truncate_local_data_after_distributing_table(placed[i]);
    END LOOP;
    -- The entry point keyed by account: Citus sends each call to the node of its account_id. delegate => false
    -- leaves it alone, and with it every text's transaction through the coordinator and one queue there (the
    -- worker serves node queues only once it is delegated: queue_nodes()).
    object := 'darkspere.receive_sms_for(bigint, text, text, text, text, text, integer, text)';
    IF NOT delegate THEN
        action := CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_dist_object o
                                     WHERE o.classid = 'pg_catalog.pg_proc'::regclass
                                       AND o.objid = 'darkspere.receive_sms_for(bigint, text, text, text, text, text, integer, text)'::regprocedure
                                       AND o.distribution_argument_index IS NOT NULL)
                       THEN 'already delegated (delegate => false does not undo it)' ELSE 'not delegated' END;
    ELSIF EXISTS (SELECT 1 FROM pg_catalog.pg_dist_object o
                WHERE o.classid = 'pg_catalog.pg_proc'::regclass
                  AND o.objid = 'darkspere.receive_sms_for(bigint, text, text, text, text, text, integer, text)'::regprocedure
                  AND o.distribution_argument_index IS NOT NULL) THEN
        action := 'already delegated';
    ELSE
        PERFORM pg_catalog.create_distributed_function(
            'darkspere.receive_sms_for(bigint, text, text, text, text, text, integer, text)'::regprocedure,
            'account_id', colocate_with => 'darkspere.agents');
        action := 'delegated to the node of its account_id';
    END IF;
    RETURN NEXT;
    FOR n IN SELECT r.nodename, r.nodeport, r.success, r.result
               FROM pg_catalog.run_command_on_workers('SELECT darkspere.use_node_id_range()') r
              ORDER BY r.nodename, r.nodeport LOOP
        IF NOT n.success THEN
            RAISE EXCEPTION 'could not give worker node %:% its id range: %', n.nodename, n.nodeport, n.result
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        object := pg_catalog.format('node %s:%s', n.nodename, n.nodeport);
        action := n.result;
        RETURN NEXT;
    END LOOP;
END
$fn$;

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
--   darkspere_worker   exactly the functions darkspere-worker calls (status_snapshot for /status), and
--                      darkspere.queue_depth for /metrics;
--                      no table rights: every function it calls is SECURITY DEFINER
--   darkspere_admin    tenant management (accounts, numbers, agents, plans, rate-limit rules and overrides),
--                      dead-letter requeue, usage and history; reads every table
--   darkspere_monitor  read-only views (queue_depth, agent_health, dashboard_*), usage and status_snapshot
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
ALTER FUNCTION darkspere.record_delivery_status(text, text, text, int, text)
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.record_provider_opt_out(text, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.rate_limit(text, text, int) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.usage(bigint, date) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
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
ALTER FUNCTION darkspere.effective_plan(bigint) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.feature_access(bigint, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.stripe_event(jsonb) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.set_number_agent_tag(text, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.record_agent_tools(bigint, jsonb) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
-- jit off: its plans are costed high (windows of samples) but run in milliseconds to seconds; compiling them
-- cost more than it saved (docs/operations.md, dashboards "Cost").
ALTER FUNCTION darkspere.status_snapshot() SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off;
ALTER FUNCTION darkspere.billing_result(bigint, text, jsonb, int, text)
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.report_signature_failures(inet[], int[])
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.acknowledge_alert(bigint, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.alert_channel_secret(text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
-- Run by tick() (itself SECURITY DEFINER): pinned search_path, no grants.
ALTER FUNCTION darkspere.alert_values() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.evaluate_alerts() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.alert_announce(bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.alert_rule_check() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.alert_channel_check() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.plan_change_lock() SET search_path = pg_catalog, pg_temp;
-- The Citus tools (issue #16): for the extension's owner, run by hand; pinned search_path.
ALTER FUNCTION darkspere.citus_layout() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.require_citus(text) SET search_path = pg_catalog, pg_temp;
-- commit_atomically: called by SECURITY DEFINER functions (as the owner); no grants.
ALTER FUNCTION darkspere.use_node_id_range() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.distribute(int, boolean) SET search_path = pg_catalog, pg_temp;
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
    darkspere.receive_sms_for(bigint, text, text, text, text, text, int, text),
    darkspere.claim_jobs(text, int, interval, bigint[], bigint[]),
    darkspere.ack_jobs(jsonb, text, interval, int),
    darkspere.record_provider_opt_out(text, text),
    darkspere.record_delivery_status(text, text, text, int, text),
    darkspere.tick(),
    darkspere.tick_queue(),
    darkspere.queue_nodes(),
    darkspere.number_account(text, text),
    darkspere.api_call(text, text, text, bigint, jsonb),
    darkspere.stripe_event(jsonb),
    darkspere.record_agent_tools(bigint, jsonb),
    darkspere.status_snapshot(),
    darkspere.billing_result(bigint, text, jsonb, int, text),
    darkspere.report_signature_failures(inet[], int[])
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
    darkspere.usage(bigint, date),
    darkspere.history(bigint, int),
    darkspere.create_account_key(bigint, text),
    darkspere.revoke_account_key(bigint),
    darkspere.rotate_agent_key(bigint, interval),
    darkspere.effective_plan(bigint),
    darkspere.feature_access(bigint, text),
    darkspere.set_number_agent_tag(text, text),
    darkspere.status_snapshot(),
    darkspere.trace(text),
    darkspere.trace_message(text),
    darkspere.latency(text, interval, bigint),
    darkspere.acknowledge_alert(bigint, text),
    darkspere.alert_channel_secret(text)
    TO darkspere_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA darkspere TO darkspere_admin;
GRANT INSERT, UPDATE, DELETE ON darkspere.plans, darkspere.rate_limit_rules, darkspere.rate_limit_overrides,
    darkspere.plan_features, darkspere.account_features, darkspere.plan_prices, darkspere.stripe_meters,
    darkspere.alert_rules, darkspere.alert_channels
    TO darkspere_admin;
GRANT UPDATE, DELETE ON darkspere.accounts TO darkspere_admin;  -- texts, plan; create with create_account
GRANT DELETE ON darkspere.numbers TO darkspere_admin;           -- release a number; add with add_number

-- darkspere_monitor: read-only.
GRANT EXECUTE ON FUNCTION darkspere.usage(bigint, date), darkspere.effective_plan(bigint),
    darkspere.feature_access(bigint, text), darkspere.status_snapshot(), darkspere.trace(text),
    darkspere.trace_message(text), darkspere.latency(text, interval, bigint) TO darkspere_monitor;
GRANT SELECT ON darkspere.queue_depth, darkspere.agent_health, darkspere.alerts, darkspere.alert_rules
    TO darkspere_monitor;
-- The dashboards' views (Grafana over a darkspere_monitor login); latency_samples is their building block only.
GRANT SELECT ON darkspere.dashboard_health, darkspere.dashboard_traffic, darkspere.dashboard_latency,
    darkspere.dashboard_usage, darkspere.dashboard_security TO darkspere_monitor;
