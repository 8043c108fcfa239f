-- 030_privileges — who may do what, read from the catalog and compared with the table in docs/security.md
-- ("## Privileges", loaded into schema `documented` by test/pgtap/lib/documented-privileges before pg_prove):
-- nothing here lists functions by hand, so the documentation and the grants cannot drift apart, and a function
-- added to the extension without a row in the doc fails with its name.
BEGIN;
SELECT plan(24);
-- Unqualified names print schema-qualified (darkspere is not on the path); pgTAP lives in public.
SET LOCAL search_path = pg_catalog, public;

SELECT ok(to_regclass('documented.functions') IS NOT NULL,
          'the privilege tables of docs/security.md are loaded (test/pgtap/lib/documented-privileges, run by scripts/test)');

-- Every function of schema darkspere (the catalog) and every documented one (resolved by signature).
CREATE TEMP TABLE catalog_functions AS
    SELECT p.oid, p.oid::regprocedure::text AS signature, p.prosecdef, p.proconfig
    FROM pg_proc p WHERE p.pronamespace = 'darkspere'::regnamespace;
CREATE TEMP TABLE doc_functions AS
    SELECT d.signature AS written, to_regprocedure(d.signature) AS oid, d.security_definer FROM documented.functions d;
CREATE TEMP TABLE roles (grantee text PRIMARY KEY);
INSERT INTO roles VALUES ('darkspere_worker'), ('darkspere_admin'), ('darkspere_monitor'), ('PUBLIC');

SELECT is((SELECT string_agg(signature, ', ' ORDER BY signature) FROM catalog_functions c
            WHERE NOT EXISTS (SELECT FROM doc_functions d WHERE d.oid = c.oid)),
          NULL,
          'every function in schema darkspere has a row in docs/security.md "## Privileges" (have: the missing ones)');
SELECT is((SELECT string_agg(written, ', ' ORDER BY written) FROM doc_functions WHERE oid IS NULL
             OR oid NOT IN (SELECT oid FROM catalog_functions)),
          NULL, 'every function documented in docs/security.md exists in schema darkspere (have: the ones that do not)');
SELECT is((SELECT string_agg(oid::regprocedure::text, ', ') FROM (SELECT oid FROM doc_functions WHERE oid IS NOT NULL
             GROUP BY oid HAVING count(*) > 1) dup),
          NULL, 'no function has two rows in docs/security.md');

-- EXECUTE, as each role effectively has it (a PUBLIC grant counts for every role), against the doc.
CREATE TEMP TABLE doc_execute AS
    SELECT r.grantee, d.oid
    FROM roles r JOIN documented.function_grants g ON g.grantee IN (r.grantee, 'PUBLIC')
                 JOIN doc_functions d ON d.written = g.signature
    WHERE d.oid IS NOT NULL;
CREATE TEMP TABLE catalog_execute AS
    SELECT r.grantee, c.oid FROM roles r CROSS JOIN catalog_functions c
    WHERE has_function_privilege(lower(r.grantee), c.oid, 'EXECUTE');
CREATE FUNCTION pg_temp.execute_diff(role text) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(x, '; ') FROM (
        SELECT 'may execute but undocumented: ' || string_agg(oid::regprocedure::text, ', ' ORDER BY oid::regprocedure::text) AS x
          FROM (SELECT oid FROM catalog_execute WHERE grantee = role
                EXCEPT SELECT oid FROM doc_execute WHERE grantee = role) extra HAVING count(*) > 0
        UNION ALL
        SELECT 'documented but not executable: ' || string_agg(oid::regprocedure::text, ', ' ORDER BY oid::regprocedure::text)
          FROM (SELECT oid FROM doc_execute WHERE grantee = role
                EXCEPT SELECT oid FROM catalog_execute WHERE grantee = role) missing HAVING count(*) > 0) d
$$;
SELECT is(pg_temp.execute_diff('darkspere_worker'), NULL,
          'darkspere_worker executes exactly the functions docs/security.md gives it');
SELECT is(pg_temp.execute_diff('darkspere_admin'), NULL,
          'darkspere_admin executes exactly the functions docs/security.md gives it');
SELECT is(pg_temp.execute_diff('darkspere_monitor'), NULL,
          'darkspere_monitor executes exactly the functions docs/security.md gives it');
SELECT is(pg_temp.execute_diff('PUBLIC'), NULL, 'PUBLIC executes exactly the functions docs/security.md gives it');

-- SECURITY DEFINER: as documented, with a pinned search_path, and never executable by PUBLIC.
SELECT is((SELECT string_agg(c.signature || CASE WHEN c.prosecdef THEN ' is' ELSE ' is not' END || ' SECURITY DEFINER',
                             ', ' ORDER BY c.signature)
             FROM catalog_functions c JOIN doc_functions d ON d.oid = c.oid
            WHERE c.prosecdef <> d.security_definer),
          NULL, 'SECURITY DEFINER is set on exactly the functions marked so in docs/security.md');
SELECT is((SELECT string_agg(signature, ', ' ORDER BY signature) FROM catalog_functions
            WHERE prosecdef AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (proconfig), false)),
          NULL, 'every SECURITY DEFINER function pins search_path = pg_catalog, pg_temp');
SELECT is((SELECT string_agg(signature, ', ' ORDER BY signature) FROM catalog_functions
            WHERE prosecdef AND has_function_privilege('public', oid, 'EXECUTE')),
          NULL, 'PUBLIC may execute no SECURITY DEFINER function');

-- Tables, views and sequences of schema darkspere: each role's privileges against the doc.
CREATE TEMP TABLE catalog_relation_grants AS
    SELECT r.grantee, c.oid::regclass::text AS relation, p.privilege
    FROM pg_class c
         CROSS JOIN roles r
         CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p(privilege)
    WHERE c.relnamespace = 'darkspere'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND has_table_privilege(lower(r.grantee), c.oid, p.privilege);
CREATE TEMP TABLE doc_relation_grants AS
    SELECT g.grantee, to_regclass(g.relation)::text AS relation, g.privilege
    FROM documented.relation_grants g;
SELECT is((SELECT string_agg(relation, ', ') FROM documented.relation_grants WHERE to_regclass(relation) IS NULL),
          NULL, 'every table or view documented in docs/security.md exists');
SELECT is((SELECT string_agg(grantee || ' has ' || privilege || ' on ' || relation, '; '
                             ORDER BY grantee, relation, privilege)
             FROM (SELECT * FROM catalog_relation_grants EXCEPT SELECT * FROM doc_relation_grants) x),
          NULL, 'no role has a table privilege that docs/security.md does not list');
SELECT is((SELECT string_agg(grantee || ' lacks ' || privilege || ' on ' || relation, '; '
                             ORDER BY grantee, relation, privilege)
             FROM (SELECT * FROM doc_relation_grants EXCEPT SELECT * FROM catalog_relation_grants) x),
          NULL, 'every table privilege docs/security.md lists is granted');
SELECT is((SELECT string_agg(c.oid::regclass::text, ', ' ORDER BY c.oid::regclass::text) FROM pg_class c
            WHERE c.relnamespace = 'darkspere'::regnamespace AND c.relkind IN ('r', 'p', 'f', 'S')
              AND (has_table_privilege('darkspere_worker', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
                   OR has_any_column_privilege('darkspere_worker', c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))),
          NULL, 'darkspere_worker has no privilege on any table or sequence (it works through SECURITY DEFINER functions)');

-- Settings: no darkspere.* setting can be changed by a session that is not a superuser's: superuser-only
-- (PGC_SUSET), or read from the server's configuration (PGC_SIGHUP: darkspere.secret_key_file). Load the library
-- first so they are all defined.
SELECT lives_ok('SELECT darkspere.sms_segments(''x'')', 'the library is loaded');
SELECT is((SELECT string_agg(name || ' is ' || context, ', ' ORDER BY name) FROM pg_settings
            WHERE name LIKE 'darkspere.%' AND context NOT IN ('superuser', 'sighup')),
          NULL, 'every darkspere.* setting is superuser-only (PGC_SUSET) or server configuration (PGC_SIGHUP)');

-- A login in darkspere_worker: runs the worker's functions, reads no table, changes no setting.
CREATE ROLE pgtap_worker_login LOGIN IN ROLE darkspere_worker;
SET LOCAL ROLE pgtap_worker_login;
SELECT lives_ok('SELECT darkspere.tick()', 'a darkspere_worker login runs tick() without any table privilege');
SELECT throws_ok('SELECT count(*) FROM darkspere.jobs', '42501', NULL, 'a darkspere_worker login cannot read darkspere.jobs');
SELECT throws_ok('SET darkspere.min_health_score = 0', '42501', NULL,
                 'a darkspere_worker login cannot change darkspere.min_health_score');
RESET ROLE;

-- A login in darkspere_admin sets up a tenant as the README shows; one in darkspere_monitor only reads.
CREATE ROLE pgtap_admin_login LOGIN IN ROLE darkspere_admin;
SET LOCAL ROLE pgtap_admin_login;
SELECT lives_ok($t$DO $do$
    DECLARE
        id bigint := darkspere.create_account('Privileges Bakery', 'pro');
    BEGIN
        PERFORM darkspere.add_number(id, '+16660300001', 'AC0pgtap0000000000000000000000030');
        PERFORM darkspere.register_agent(id, 'bot', 'https://agent.example.com/', 'http', 5);
        PERFORM darkspere.usage(id);
        UPDATE darkspere.accounts SET fallback_text = 'sorry' WHERE account_id = id;
    END
    $do$$t$,
    'a darkspere_admin login creates an account, its number and agent, and edits its texts');
RESET ROLE;
CREATE ROLE pgtap_monitor_login LOGIN IN ROLE darkspere_monitor;
SET LOCAL ROLE pgtap_monitor_login;
SELECT lives_ok('SELECT * FROM darkspere.queue_depth, darkspere.agent_health',
                'a darkspere_monitor login reads queue_depth and agent_health');
SELECT throws_ok('SELECT * FROM darkspere.agents', '42501', NULL,
                 'a darkspere_monitor login cannot read darkspere.agents (endpoints, key hashes)');
SELECT throws_ok('SELECT darkspere.tick()', '42501', NULL, 'a darkspere_monitor login cannot run tick()');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
