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
ALTER FUNCTION darkspere.complete_job(bigint, int, jsonb) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.fail_job(bigint, int, text, boolean) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.ack_jobs(jsonb, text, interval, int) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.requeue_dead_job(bigint) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION darkspere.record_delivery_status(text, text, int)
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
    darkspere.claim_jobs(text, int, interval, bigint[]),
    darkspere.ack_jobs(jsonb, text, interval, int),
    darkspere.record_provider_opt_out(text, text),
    darkspere.record_delivery_status(text, text, int),
    darkspere.tick()
    TO darkspere_worker;
GRANT SELECT ON darkspere.queue_depth TO darkspere_worker;

-- darkspere_admin: managing tenants and the queue's dead letters.
GRANT EXECUTE ON FUNCTION
    darkspere.create_account(text, text, text),
    darkspere.add_number(bigint, text, text),
    darkspere.register_agent(bigint, text, text, text, int),
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
