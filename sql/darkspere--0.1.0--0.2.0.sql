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
    darkspere.tick()
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
    darkspere.history(bigint, int)
    TO darkspere_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA darkspere TO darkspere_admin;
GRANT INSERT, UPDATE, DELETE ON darkspere.plans, darkspere.rate_limit_rules, darkspere.rate_limit_overrides
    TO darkspere_admin;
GRANT UPDATE, DELETE ON darkspere.accounts TO darkspere_admin;  -- texts, plan; create with create_account
GRANT DELETE ON darkspere.numbers TO darkspere_admin;           -- release a number; add with add_number

-- darkspere_monitor: read-only.
GRANT EXECUTE ON FUNCTION darkspere.usage(bigint) TO darkspere_monitor;
GRANT SELECT ON darkspere.queue_depth, darkspere.agent_health TO darkspere_monitor;
