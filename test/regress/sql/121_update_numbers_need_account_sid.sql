-- 121_update_numbers_need_account_sid — from 0.2.0 every service number names the Twilio AccountSid that owns it
-- (numbers.provider_account is NOT NULL). A 0.1.0 database may hold numbers without one; no AccountSid can be
-- guessed for them, so ALTER EXTENSION darkspere UPDATE stops with an error naming them and changes nothing, and
-- succeeds once the operator has set them. Runs in a database of its own (created and dropped here).
\set VERBOSITY terse
SELECT current_database() AS regress_db \gset
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_update_121;
CREATE DATABASE regress_update_121;
\c regress_update_121
SET client_min_messages = warning;
CREATE EXTENSION darkspere VERSION '0.1.0';

-- A 0.1.0 account with two numbers that have no AccountSid (inserted as 0.1.0's add_number stored them) and one
-- that has.
-- The current library refuses to run on a 0.1.0 schema; a superuser lifts that to write 0.1.0-era rows.
SET darkspere.check_version = off;
SELECT darkspere.create_account('from 0.1.0', 'enterprise') AS acct \gset
RESET darkspere.check_version;
INSERT INTO darkspere.numbers (account_id, number) VALUES (:acct, '+15551210002'), (:acct, '+15551210001');
INSERT INTO darkspere.numbers (account_id, number, provider_account) VALUES (:acct, '+15551210003', 'AC121');
-- 0.1.0 per-phone overrides named a bare phone and applied across tenants.
INSERT INTO darkspere.rate_limit_overrides VALUES ('phone', '+16661210001', 5, 60, 60), ('phone_out', '+16661210001', 5, 60, 60);

-- The update stops and names the numbers to fix, with how to fix them; the database is still 0.1.0, its numbers
-- untouched.
\set VERBOSITY default
\set SHOW_CONTEXT never
ALTER EXTENSION darkspere UPDATE TO '0.2.0';
\set VERBOSITY terse
SELECT extversion FROM pg_extension WHERE extname = 'darkspere';
SELECT number, provider_account FROM darkspere.numbers ORDER BY number;

-- Once every number names its AccountSid the update goes through, and the column refuses NULL from then on.
UPDATE darkspere.numbers SET provider_account = 'AC121' WHERE provider_account IS NULL;
ALTER EXTENSION darkspere UPDATE TO '0.2.0';
SELECT extversion FROM pg_extension WHERE extname = 'darkspere';
SELECT attnotnull AS provider_account_not_null FROM pg_attribute
 WHERE attrelid = 'darkspere.numbers'::regclass AND attname = 'provider_account';
-- Per-phone limits are per tenant from 0.2.0 (subject "<account_id>:<phone>"): a bare-phone override of 'phone'
-- keeps its effect as the phone's ceiling across tenants; one of 'phone_out' cannot be attributed to a tenant, is
-- kept, and the update warned about it above.
SELECT scope, subject, max_hits FROM darkspere.rate_limit_overrides ORDER BY scope;

\c :regress_db
SET client_min_messages = warning;
DROP DATABASE regress_update_121;
RESET client_min_messages;
