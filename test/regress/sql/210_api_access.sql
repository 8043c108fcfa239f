-- 210_api_access — the api_access feature (issue #15): every API request of an account counts toward its monthly
-- API requests (usage metric api_requests); past the plan's limit api_call answers 429 plan_limit with the seconds
-- until the month ends, except usage and the billing routes (so an account at its limit can still upgrade).
\set VERBOSITY terse

SELECT regress.finish_leftover_work() \gset
SET timezone = 'UTC';
SELECT darkspere.create_account('api-185', 'free') AS acct \gset
SELECT api_key AS key FROM darkspere.create_account_key(:acct, 'api') \gset
-- A lowered limit for the test: 3 requests this month.
INSERT INTO darkspere.account_features (account_id, feature, enabled, monthly_limit, reason)
VALUES (:acct, 'api_access', true, 3, 'regress 185');

SELECT http_status FROM darkspere.api_call('agents.list', :'key', '192.0.2.85');
SELECT http_status FROM darkspere.api_call('agents.list', :'key', '192.0.2.85');
SELECT http_status FROM darkspere.api_call('agents.get', :'key', '192.0.2.85', 999999999);
SELECT allowed, monthly_limit, used, remaining, reason FROM darkspere.feature_access(:acct, 'api_access');
-- The fourth: refused, saying why and for how long.
SELECT http_status, response, retry_after > 0 AND retry_after <= 31 * 86400 AS until_month_end
  FROM darkspere.api_call('agents.list', :'key', '192.0.2.85');
-- Refusals are not counted; usage and billing stay open and uncounted.
SELECT http_status FROM darkspere.api_call('usage', :'key', '192.0.2.85');
SELECT http_status, response #>> '{error,code}' FROM darkspere.api_call('billing.portal', :'key', '192.0.2.85',
    NULL, '{"return_url": "https://a.example/"}');
SELECT sum(used) AS api_requests FROM darkspere.usage_counters WHERE account_id = :acct AND metric = 'api_requests';
-- A raised limit lets requests through again.
UPDATE darkspere.account_features SET monthly_limit = 10 WHERE account_id = :acct AND feature = 'api_access';
SELECT http_status FROM darkspere.api_call('agents.list', :'key', '192.0.2.85');
