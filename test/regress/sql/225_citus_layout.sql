-- 225_citus_layout — darkspere.citus_layout() is where darkspere.distribute() puts each table on Citus (issue #16,
-- docs/scaling.md "Deploying on Citus"). It must name every table of the schema once, so that a new table is
-- placed on purpose; a distributed table must carry a NOT NULL account_id; a table must come after the tables
-- it references (Citus places a referenced table first). Without Citus, the tools refuse with a clear error.
\set VERBOSITY terse

-- On plain PostgreSQL asking for two-phase commit does nothing, even when a setting named like Citus's exists as a
-- placeholder (set without Citus loaded): the library looks for Citus's switch only in a loaded Citus. This is
-- this session's first call of a C function, where the library looks once.
SET citus.shard_count = 4;
SELECT regress.try($$SELECT darkspere.commit_atomically()$$) AS placeholder_setting;
RESET citus.shard_count;
-- The C entry points ask on entry (DARKSPERE_FUNCTION); a PL/pgSQL entry point (SECURITY DEFINER) that writes
-- must call darkspere.commit_atomically() itself. Those that do not: none. (The building blocks without
-- SECURITY DEFINER run inside an entry point, which has asked.)
SELECT p.proname AS writes_without_asking
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'darkspere'::regnamespace AND l.lanname = 'plpgsql' AND p.prosecdef
   AND p.prosrc ~* '\m(INSERT\s+INTO|UPDATE\s+darkspere|DELETE\s+FROM)'
   AND p.prosrc !~ 'darkspere\.commit_atomically\(\)'
 ORDER BY 1;

-- Tables of the schema that the layout does not name, and names of the layout that are no table: none.
SELECT c.relname AS unplaced
  FROM pg_class c
 WHERE c.relnamespace = 'darkspere'::regnamespace AND c.relkind IN ('r', 'p')
   AND c.relname NOT IN (SELECT table_name FROM darkspere.citus_layout())
 ORDER BY 1;
SELECT l.table_name AS not_a_table
  FROM darkspere.citus_layout() l
 WHERE pg_catalog.to_regclass('darkspere.' || l.table_name) IS NULL;
SELECT table_name AS placed_twice FROM darkspere.citus_layout() GROUP BY 1 HAVING count(*) > 1;
SELECT placement, count(*) FROM darkspere.citus_layout() GROUP BY 1 ORDER BY 1;

-- Distributed by account_id: every such table has it, NOT NULL.
SELECT l.table_name AS distributed_without_account_id
  FROM darkspere.citus_layout() l
  LEFT JOIN pg_attribute a ON a.attrelid = ('darkspere.' || l.table_name)::regclass AND a.attname = 'account_id'
 WHERE l.placement = 'distributed' AND (a.attname IS NULL OR NOT a.attnotnull);

-- Order: every foreign key between two tables that Citus places points at one placed earlier; a reference table
-- references reference tables only; nothing placed references a coordinator table.
SELECT child.table_name AS child, parent.table_name AS parent, child.placement, parent.placement
  FROM pg_constraint k
  JOIN darkspere.citus_layout() child ON ('darkspere.' || child.table_name)::regclass = k.conrelid
  JOIN darkspere.citus_layout() parent ON ('darkspere.' || parent.table_name)::regclass = k.confrelid
 WHERE k.contype = 'f' AND child.placement <> 'coordinator' AND k.conrelid <> k.confrelid
   AND (parent.ord >= child.ord OR parent.placement = 'coordinator'
        OR (child.placement = 'reference' AND parent.placement <> 'reference'));

-- Without the citus extension: a clear refusal (55000), naming the database, nothing changed.
SELECT regress.try($$SELECT * FROM darkspere.distribute()$$);
SELECT regress.try($$SELECT * FROM darkspere.distribute(4)$$);
SELECT regress.try($$SELECT darkspere.use_node_id_range()$$);
