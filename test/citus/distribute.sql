-- test/citus/distribute.sql — the Citus layout of the darkspere schema that test/citus/run tries on a coordinator
-- and two workers (docs/scaling.md, "Tried on Citus 13.2.2"). A test fixture, not yet an operator's tool: the
-- message path does not run on this layout yet (its statements still read distributed tables through
-- reference-table columns), and `jobs`, `delivery_events` and the alert tables stay on the coordinator.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
-- Otherwise Citus converts every table linked by a foreign key to a reference table into a Citus local table,
-- and stops at the extension's views.
SET citus.enable_local_reference_table_foreign_keys = off;
-- A table with a foreign key to a reference table cannot be distributed in parallel after it was touched.
SET citus.multi_shard_modify_mode = 'sequential';
-- accounts, subscriptions and account_features carry the plan-change lock trigger (docs/billing.md, "one plan per
-- message"). Citus refuses triggers on distributed and reference tables unless told; the trigger takes an
-- advisory lock, which on Citus holds on the node where it fires only (docs/scaling.md).
SET citus.enable_unsafe_triggers = on;

-- Global tables, and the two every node must read locally: accounts and the number -> account lookup
-- (a reference table may only reference reference tables, so numbers -> accounts makes accounts one).
-- The rate-limit rules and overrides stay coordinator tables beside rate_limit_state (unlogged, not
-- distributable): the limit upsert joins the three, and Citus plans no upsert of a local table from a CTE over
-- reference tables ("could not find CTE").
SELECT create_reference_table('darkspere.' || t)
  FROM unnest(ARRAY['plans', 'features', 'plan_features', 'plan_prices', 'stripe_meters', 'accounts',
                    'numbers']) AS t;

-- Tenant tables: distributed by account_id, colocated with agents (referenced tables first).
SELECT create_distributed_table('darkspere.agents', 'account_id');
SELECT create_distributed_table('darkspere.' || t, 'account_id', colocate_with => 'darkspere.agents')
  FROM unnest(ARRAY['account_features', 'account_keys', 'account_plan_history', 'agent_load', 'agent_checks',
                    'agent_events', 'sessions', 'messages', 'consent_events', 'opt_outs', 'usage_counters',
                    'billing_calls', 'meter_reports', 'statements', 'statement_lines', 'subscriptions',
                    'trace_events']) AS t;

-- Ids drawn on a worker node. A statement that Citus sends whole to a shard (every table in it pinned to one
-- tenant) evaluates its column defaults there, from that node's copy of the extension's sequences, which start
-- at 1 like the coordinator's: the first trace row written that way collided with one written through the
-- coordinator. Each worker node's group draws from its own range instead, as Citus does for the sequences it
-- creates itself: group g from (g << 48) + 1 to (g + 1) << 48 (the coordinator is group 0). A node added later
-- needs the same (docs/scaling.md). Ids stay unique; they do not follow arrival order across nodes, which nothing
-- relies on (traces order by time, then id).
SELECT 1 / (success AND result = 'DO')::int FROM run_command_on_workers($cmd$
DO $do$
DECLARE
    g bigint := (SELECT groupid FROM pg_catalog.pg_dist_local_group);
    s record;
BEGIN
    SET LOCAL citus.enable_ddl_propagation = off;
    FOR s IN SELECT sequencename FROM pg_catalog.pg_sequences WHERE schemaname = 'darkspere' LOOP
        EXECUTE pg_catalog.format('ALTER SEQUENCE darkspere.%I MINVALUE %s MAXVALUE %s START WITH %s RESTART',
                                  s.sequencename, (g << 48) + 1, (g + 1) << 48, (g << 48) + 1);
    END LOOP;
END
$do$
$cmd$);
