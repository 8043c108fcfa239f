-- 190_tenant_keys — the tenant-key rule (docs/scaling.md, "Tenant keys"): in a table that has an account_id
-- column, every primary key, unique constraint and unique index includes account_id, and every foreign key to
-- another such table carries account_id on both sides. That is what lets Citus distribute the table by
-- account_id and check each key on one shard. The listed exceptions are deliberate; a new table or key that
-- breaks the rule shows up here as a new row. Also: deduplication of inbound texts is per account, and what
-- the composite foreign keys allow and refuse.
\set VERBOSITY terse

-- Keys (primary, unique, and unique indexes) of tables with an account_id, that leave account_id out. The
-- exceptions: delivery_events (its account_id is the callback's From's tenant, NULL when it names none: it stays
-- a coordinator table), jobs (the queue; where it lives on Citus is measured separately, and some jobs have no tenant),
-- numbers (the number -> account lookup: a number belongs to one tenant across all of them), route_cursor (one
-- row, tick()'s hint) and stripe_events (Stripe's event ids are global; the account is read from the event).
SELECT c.relname AS table_name, i.relname AS key_name,
       pg_catalog.pg_get_indexdef(x.indexrelid) LIKE '% WHERE %' AS partial
  FROM pg_catalog.pg_index x
  JOIN pg_catalog.pg_class c ON c.oid = x.indrelid
  JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
 WHERE c.relnamespace = 'darkspere'::regnamespace AND x.indisunique
   AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = c.oid AND a.attname = 'account_id' AND NOT a.attisdropped)
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = c.oid AND a.attname = 'account_id'
                      AND a.attnum = ANY (x.indkey::int2[]))
 ORDER BY 1, 2;

-- Foreign keys between two tables that both have an account_id, that do not pair account_id with account_id.
SELECT c.conrelid::regclass AS from_table, c.confrelid::regclass AS to_table, c.conname
  FROM pg_catalog.pg_constraint c
 WHERE c.contype = 'f' AND c.connamespace = 'darkspere'::regnamespace
   AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = c.confrelid AND a.attname = 'account_id' AND NOT a.attisdropped)
   AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = c.conrelid AND a.attname = 'account_id' AND NOT a.attisdropped)
   AND NOT EXISTS (SELECT 1
                     FROM unnest(c.conkey, c.confkey) AS k(from_col, to_col)
                     JOIN pg_catalog.pg_attribute fa ON fa.attrelid = c.conrelid AND fa.attnum = k.from_col
                     JOIN pg_catalog.pg_attribute ta ON ta.attrelid = c.confrelid AND ta.attnum = k.to_col
                    WHERE fa.attname = 'account_id' AND ta.attname = 'account_id')
 ORDER BY 1, 3;

-- Tables without an account_id: global settings and logs (plans, features, rules, alerts, signature
-- failures, meters) and two of tenant rows: delivery_events (a status callback may come before its message is
-- known, so its account is not) and rate_limit_state (the subject names the account where the rule is per
-- tenant, and the per-phone ceiling is across tenants on purpose).
SELECT c.relname AS no_account_id
  FROM pg_catalog.pg_class c
 WHERE c.relnamespace = 'darkspere'::regnamespace AND c.relkind IN ('r', 'p')
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = c.oid AND a.attname = 'account_id' AND NOT a.attisdropped)
 ORDER BY 1;

-- Deduplication is per account: the same MessageSid sent to two tenants' numbers is a new text for each, and
-- a retry to the same tenant is its duplicate.
SELECT darkspere.create_account('tk-one', 'free') AS one \gset
SELECT darkspere.create_account('tk-two', 'free') AS two \gset
SELECT darkspere.add_number(:one, '+15551900001', 'AC190');
SELECT darkspere.add_number(:two, '+15551900002', 'AC190');
SELECT disposition FROM darkspere.receive_sms('AC190', '+15551900001', '+15557190001', 'hi', 'SM190same');
SELECT disposition FROM darkspere.receive_sms('AC190', '+15551900002', '+15557190001', 'hi', 'SM190same');
SELECT disposition FROM darkspere.receive_sms('AC190', '+15551900001', '+15557190001', 'hi', 'SM190same');
SELECT account_id = :one AS first_account, count(*) AS stored FROM darkspere.messages
 WHERE message_sid = 'SM190same' GROUP BY 1 ORDER BY 1;

-- An agent that sessions still name cannot be deleted (retire it with set_agent_status … 'disabled'); its
-- account can, and takes its agents, sessions, messages and load rows with it.
SELECT agent_id AS bot FROM darkspere.register_agent(:one, 'bot190', 'https://agent.example/190') \gset
SELECT disposition FROM darkspere.receive_sms('AC190', '+15551900001', '+15557190002', 'hello bot', 'SM190bot');
SELECT count(*) AS sessions_on_bot FROM darkspere.sessions WHERE agent_id = :bot;
DELETE FROM darkspere.agents WHERE agent_id = :bot;
SELECT count(*) AS load_rows FROM darkspere.agent_load WHERE agent_id = :bot AND account_id = :one;
-- A key that pairs an id with another tenant's account is refused.
INSERT INTO darkspere.messages (account_id, session_id, direction, service_number, phone, body, status)
SELECT :two, session_id, 'in', service_number, phone, 'cross-tenant', 'waiting' FROM darkspere.sessions
 WHERE phone = '+15557190002';
DELETE FROM darkspere.jobs WHERE account_id = :one;
DELETE FROM darkspere.accounts WHERE account_id = :one;
SELECT (SELECT count(*) FROM darkspere.agents WHERE account_id = :one) AS agents,
       (SELECT count(*) FROM darkspere.agent_load WHERE account_id = :one) AS load_rows,
       (SELECT count(*) FROM darkspere.sessions WHERE account_id = :one) AS sessions,
       (SELECT count(*) FROM darkspere.messages WHERE account_id = :one) AS messages;
