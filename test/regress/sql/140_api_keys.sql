-- 140_api_keys — API keys (issue #13): account keys are shown once and stored as a SHA-256 with a display
-- prefix; authenticate_key tells account keys from agent keys and knows no revoked, unknown or expired key;
-- rotate_agent_key keeps the old agent key working for its grace period only; api_call answers the HTTP API
-- (its routes are tested through the worker in test/e2e/api.test.mjs; here: what the database decides alone).
\set VERBOSITY terse

SELECT regress.finish_leftover_work() \gset

SELECT darkspere.create_account('keys', 'pro') AS acct \gset
SELECT darkspere.create_account('keys-other', 'free') AS other \gset

-- A key is "dsk_" and 43 base64url characters; the table keeps its hash and its first 8 characters only.
SELECT key_id AS key1, api_key AS key1_text FROM darkspere.create_account_key(:acct, 'ci') \gset
SELECT :'key1_text' ~ '^dsk_[A-Za-z0-9_-]{43}$' AS key_format;
SELECT k.key_prefix = left(:'key1_text', 8) AS prefix_is_display_only,
       k.key_hash = sha256(convert_to(:'key1_text', 'UTF8')) AS only_the_hash_is_stored
  FROM darkspere.account_keys k WHERE k.key_id = :key1;
SELECT count(*) AS tables_holding_the_key FROM darkspere.account_keys k WHERE row_to_json(k)::text LIKE '%' || :'key1_text' || '%';
-- Two keys never repeat.
SELECT count(DISTINCT api_key) AS distinct_keys FROM (SELECT (darkspere.create_account_key(:acct, 'k' || i)).api_key
                                                        FROM generate_series(1, 5) i) k;

-- authenticate_key: the account key; nothing for unknown, malformed, NULL or over-long tokens.
SELECT kind, account_id = :acct AS own_account, agent_id, key_id = :key1 AS own_key
  FROM darkspere.authenticate_key(:'key1_text');
SELECT count(*) AS unknown FROM darkspere.authenticate_key('dsk_' || repeat('A', 43));
SELECT count(*) AS no_prefix FROM darkspere.authenticate_key(substr(:'key1_text', 5));
SELECT count(*) AS null_key FROM darkspere.authenticate_key(NULL);
SELECT count(*) AS too_long FROM darkspere.authenticate_key(:'key1_text' || repeat('x', 200));
SELECT count(*) AS empty FROM darkspere.authenticate_key('');

-- last_used_at is written on first use and then at most once a minute.
SELECT last_used_at IS NOT NULL AS used, last_used_at AS first_use FROM darkspere.account_keys WHERE key_id = :key1 \gset
SELECT :'used' AS last_used_recorded;
SELECT count(*) FROM darkspere.authenticate_key(:'key1_text');
SELECT last_used_at = :'first_use' AS unchanged_within_a_minute FROM darkspere.account_keys WHERE key_id = :key1;
UPDATE darkspere.account_keys SET last_used_at = now() - interval '2 minutes' WHERE key_id = :key1;
SELECT count(*) FROM darkspere.authenticate_key(:'key1_text');
SELECT last_used_at > now() - interval '1 minute' AS written_again_after_a_minute FROM darkspere.account_keys WHERE key_id = :key1;

-- Agent keys: the one register_agent returns authenticates as kind 'agent'.
SELECT agent_id AS bot, api_key AS bot_key FROM darkspere.register_agent(:acct, 'bot', 'https://agent.example/140') \gset
SELECT kind, account_id = :acct AS own_account, agent_id = :bot AS own_agent, key_id FROM darkspere.authenticate_key(:'bot_key');

-- Revoked keys authenticate no more; revoking twice is no error.
SELECT darkspere.revoke_account_key(:key1);
SELECT count(*) AS revoked FROM darkspere.authenticate_key(:'key1_text');
SELECT darkspere.revoke_account_key(:key1);

-- Rotation: the new key works at once, the old one for the grace period and not after it.
SELECT darkspere.rotate_agent_key(:bot, '1 hour') AS bot_key2 \gset
SELECT :'bot_key2' ~ '^dsk_[A-Za-z0-9_-]{43}$' AS rotated_key_format;
SELECT count(*) AS new_key FROM darkspere.authenticate_key(:'bot_key2');
SELECT count(*) AS old_key_in_grace FROM darkspere.authenticate_key(:'bot_key');
-- Rotating again ends the first key's grace at once: an agent has at most two live keys.
SELECT darkspere.rotate_agent_key(:bot, '1 second') AS bot_key3 \gset
SELECT count(*) AS first_key_after_second_rotation FROM darkspere.authenticate_key(:'bot_key');
SELECT count(*) AS second_key_in_grace FROM darkspere.authenticate_key(:'bot_key2');
SELECT pg_sleep(1.2);  -- at least the grace period (pg_sleep never returns early)
SELECT count(*) AS second_key_after_grace FROM darkspere.authenticate_key(:'bot_key2');
SELECT count(*) AS third_key FROM darkspere.authenticate_key(:'bot_key3');
-- Grace 0: the old key stops at once. The default is 24 hours.
SELECT darkspere.rotate_agent_key(:bot, '0') AS bot_key4 \gset
SELECT count(*) AS zero_grace FROM darkspere.authenticate_key(:'bot_key3');
SELECT darkspere.rotate_agent_key(:bot) AS bot_key5 \gset
SELECT api_key_prev_until - now() BETWEEN interval '23 hours 59 minutes' AND interval '24 hours' AS default_grace FROM darkspere.agents WHERE agent_id = :bot;

-- Bad input: SQLSTATE and a message naming the value.
SELECT regress.try($$SELECT darkspere.create_account_key(999999, 'x')$$);
SELECT regress.try(format('SELECT darkspere.create_account_key(%s, %L)', :acct, ''));
SELECT regress.try(format('SELECT darkspere.create_account_key(%s, NULL)', :acct));
SELECT regress.try(format('SELECT darkspere.create_account_key(%s, %L)', :acct, repeat('n', 101)));
SELECT regress.try($$SELECT darkspere.revoke_account_key(999999)$$);
SELECT regress.try($$SELECT darkspere.rotate_agent_key(999999)$$);
SELECT regress.try(format('SELECT darkspere.rotate_agent_key(%s, %L)', :bot, '-1 second'));
SELECT regress.try(format('SELECT darkspere.rotate_agent_key(%s, %L)', :bot, '31 days'));
SELECT regress.try(format('SELECT darkspere.rotate_agent_key(%s, NULL)', :bot));
-- At most 20 unrevoked keys per account (5 live now, 15 more fit).
SELECT count(*) FROM generate_series(1, 15) i, darkspere.create_account_key(:acct, 'fill' || i);
SELECT regress.try(format('SELECT darkspere.create_account_key(%s, %L)', :acct, 'one too many'));

-- api_call: what the database answers without a worker. A key of one account never sees another's agents.
SELECT api_key AS other_key FROM darkspere.create_account_key(:other, 'other') \gset
SELECT http_status, regexp_replace(response::text, 'agent [0-9]+', 'agent N') AS response
  FROM darkspere.api_call('agents.get', :'other_key', '192.0.2.1', :bot);
SELECT http_status, response FROM darkspere.api_call('agents.get', 'dsk_unknown', '192.0.2.1', :bot);
SELECT http_status, response FROM darkspere.api_call('agents.list', :'bot_key5', '192.0.2.1');
SELECT http_status, response FROM darkspere.api_call('agents.heartbeat', :'other_key', '192.0.2.1', NULL, '{"status": "ok"}');
-- The free plan allows one agent: the second registration is refused with 403, and nothing of it is kept.
SELECT http_status FROM darkspere.api_call('agents.create', :'other_key', '192.0.2.1', NULL,
                                           '{"name": "a", "endpoint": "https://a.example/"}');
SELECT http_status, regexp_replace(response::text, 'account [0-9]+', 'account N') AS response
  FROM darkspere.api_call('agents.create', :'other_key', '192.0.2.1', NULL,
                          '{"name": "b", "endpoint": "https://b.example/", "tags": ["x"]}');
SELECT count(*) AS other_agents FROM darkspere.agents WHERE account_id = :other;
-- Every field is checked; the first bad one (by name) is named.
SELECT api_key AS acct_key FROM darkspere.create_account_key(:other, 'second') \gset
SELECT http_status, response -> 'error' ->> 'field' AS field, response -> 'error' ->> 'message' AS message
  FROM (VALUES (1, '{"name": "", "endpoint": "https://x.example/"}'),
               (2, '{"name": "x", "endpoint": "https://x.example/", "protocol": "smtp"}'),
               (3, '{"name": "x", "endpoint": "javascript:alert(1)"}'),
               (4, '{"name": "x", "endpoint": "https://x.example/", "capacity": 0}'),
               (5, '{"name": "x", "endpoint": "https://x.example/", "capacity": "5"}'),
               (6, '{"name": "x", "endpoint": "https://x.example/", "tags": ["ok", "not ok"]}'),
               (7, '{"name": "x", "endpoint": "https://x.example/", "colour": "red"}'),
               (8, '{"name": "x"}'),
               (9, '[1, 2]')) b(n, body),
       LATERAL darkspere.api_call('agents.create', :'acct_key', '192.0.2.1', NULL, b.body::jsonb)
 ORDER BY b.n;
-- Rate limits: the per-key rule answers 429 with the seconds to wait; other keys are not affected.
SELECT key_id AS limited_id, api_key AS limited_key FROM darkspere.create_account_key(:other, 'limited') \gset
INSERT INTO darkspere.rate_limit_overrides VALUES ('api_key', 'key:' || :limited_id, 2, 60, 30);
SELECT http_status, retry_after FROM darkspere.api_call('usage', :'limited_key', '192.0.2.1');
SELECT http_status, retry_after FROM darkspere.api_call('usage', :'limited_key', '192.0.2.1');
SELECT http_status, retry_after BETWEEN 1 AND 30 AS retry_after_set, response
  FROM darkspere.api_call('usage', :'limited_key', '192.0.2.1');
SELECT http_status FROM darkspere.api_call('usage', :'other_key', '192.0.2.1');
-- The per-address rule comes first, before the key is even looked at.
INSERT INTO darkspere.rate_limit_overrides VALUES ('ip', '192.0.2.99', 1, 60, 900);
SELECT http_status, retry_after FROM darkspere.api_call('usage', 'dsk_unknown', '192.0.2.99');
SELECT http_status, retry_after BETWEEN 1 AND 900 AS retry_after_set, response
  FROM darkspere.api_call('usage', :'other_key', '192.0.2.99');
SELECT http_status FROM darkspere.api_call('usage', :'other_key', '192.0.2.1');
SELECT regress.try($$SELECT darkspere.api_call('agents.explode', 'k', '192.0.2.1')$$);
SELECT regress.try($$SELECT darkspere.api_call('usage', 'k', '')$$);
-- The seeded per-key rule: 1,000 requests a minute.
SELECT max_hits, window_s FROM darkspere.rate_limit_rules WHERE scope = 'api_key';
