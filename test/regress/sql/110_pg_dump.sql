-- 110_pg_dump — pg_dump readiness: every user-data table and its sequence is registered with
-- pg_extension_config_dump (seed rows filtered out), so a dump keeps the data
-- (docs/architecture.md#dump-and-restore).
SELECT c.relname, c.relkind, x.condition
  FROM pg_extension e,
       unnest(e.extconfig, e.extcondition) AS x(oid, condition)
       JOIN pg_class c ON c.oid = x.oid
 WHERE e.extname = 'darkspere'
 ORDER BY c.relkind DESC, c.relname;
-- Every table of the extension is registered, except the unlogged rate-limit counters (rebuilt by traffic) and the
-- unlogged routing cursor of tick() (a hint: lost, routing starts again from the first account) and the unlogged
-- billing_progress of tick() (lost, the hour's meter reports and the month's closing are looked at again).
SELECT c.relname AS table_not_dumped, c.relpersistence
  FROM pg_depend d JOIN pg_class c ON c.oid = d.objid AND d.classid = 'pg_class'::regclass
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'darkspere')
   AND c.relkind = 'r'
   AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'darkspere')::oid[])
 ORDER BY 1;
-- Every sequence owned by a registered table is registered too (pgmq #371: a missing one crashes pg_dump).
SELECT s.relname AS sequence_not_registered
  FROM pg_class s JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  JOIN pg_class t ON t.oid = d.refobjid
 WHERE s.relkind = 'S' AND t.relnamespace = 'darkspere'::regnamespace
   AND s.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'darkspere')::oid[])
 ORDER BY 1;
-- Seeded rows are marked so the dump's filter leaves them to CREATE EXTENSION.
SELECT 'plans' AS seeded, count(*) FILTER (WHERE is_seed) AS seed_rows FROM darkspere.plans WHERE plan IN ('free', 'pro', 'enterprise')
UNION ALL
SELECT 'rate_limit_rules', count(*) FILTER (WHERE is_seed) FROM darkspere.rate_limit_rules WHERE scope IN ('phone', 'phone_out', 'ip', 'agent', 'api_key');
-- No table stores a secret: API keys only as a SHA-256 hash.
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'darkspere.agents'::regclass AND attname LIKE '%key%' AND NOT attisdropped;
