-- 165_feature_access — feature gates (issue #15): the seeded plan_features, feature_access for each kind of
-- feature (metered, counted, on/off), per-account overrides and their expiry, unknown features (22023), and the
-- quota reading its limits from plan_features.
\set VERBOSITY terse

SELECT regress.finish_leftover_work() \gset

-- The seed, exactly as issue #15 lists it (NULL limit: unlimited).
SELECT feature,
       max(CASE plan WHEN 'free' THEN CASE WHEN enabled THEN coalesce(monthly_limit::text, '∞') ELSE '-' END END) AS free,
       max(CASE plan WHEN 'pro' THEN CASE WHEN enabled THEN coalesce(monthly_limit::text, '∞') ELSE '-' END END) AS pro,
       max(CASE plan WHEN 'enterprise' THEN CASE WHEN enabled THEN coalesce(monthly_limit::text, '∞') ELSE '-' END END) AS enterprise
  FROM darkspere.plan_features GROUP BY feature ORDER BY feature;

SELECT darkspere.create_account('gates-free', 'free') AS free_acct \gset
SELECT darkspere.create_account('gates-pro', 'pro') AS pro_acct \gset
SELECT darkspere.add_number(:free_acct, '+15551650001', 'AC165');

-- Metered: used counts this month's usage; remaining what is left.
SELECT * FROM darkspere.feature_access(:free_acct, 'sms_inbound');
SELECT disposition FROM darkspere.receive_sms('AC165', '+15551650001', '+16661650001', 'hello', 'SM165-001');
SELECT allowed, used, remaining FROM darkspere.feature_access(:free_acct, 'sms_inbound');
SELECT * FROM darkspere.feature_access(:pro_acct, 'api_access');
-- On/off gates.
SELECT * FROM darkspere.feature_access(:free_acct, 'mcp_protocol');
SELECT * FROM darkspere.feature_access(:pro_acct, 'mcp_protocol');
SELECT * FROM darkspere.feature_access(:pro_acct, 'dedicated_support');
-- Counted: numbers the account has.
SELECT * FROM darkspere.feature_access(:pro_acct, 'multi_phone');
SELECT * FROM darkspere.feature_access(:free_acct, 'multi_phone');

-- An override replaces the plan's row while it has not expired.
INSERT INTO darkspere.account_features VALUES (:free_acct, 'mcp_protocol', true, NULL, now() + interval '1 day', 'trial');
SELECT * FROM darkspere.feature_access(:free_acct, 'mcp_protocol');
UPDATE darkspere.account_features SET expires_at = now() - interval '1 second' WHERE account_id = :free_acct;
SELECT allowed, reason FROM darkspere.feature_access(:free_acct, 'mcp_protocol');
-- An override can lower a limit: the quota reads it (one segment used, limit 1: the next message is refused).
INSERT INTO darkspere.account_features VALUES (:free_acct, 'sms_inbound', true, 1, NULL, 'abuse review');
SELECT * FROM darkspere.feature_access(:free_acct, 'sms_inbound');
SELECT disposition FROM darkspere.receive_sms('AC165', '+15551650001', '+16661650001', 'again', 'SM165-002');
DELETE FROM darkspere.account_features WHERE account_id = :free_acct;
SELECT disposition FROM darkspere.receive_sms('AC165', '+15551650001', '+16661650001', 'and again', 'SM165-003');

-- The quota reads plan_features: lowering the free plan's inbound limit to 2 refuses the third segment.
UPDATE darkspere.plan_features SET monthly_limit = 2 WHERE plan = 'free' AND feature = 'sms_inbound';
SELECT disposition FROM darkspere.receive_sms('AC165', '+15551650001', '+16661650001', 'third', 'SM165-004');
SELECT metric, used, included FROM darkspere.usage(:free_acct);
UPDATE darkspere.plan_features SET monthly_limit = 100 WHERE plan = 'free' AND feature = 'sms_inbound';

-- Bad input.
SELECT regress.try($$SELECT * FROM darkspere.feature_access(1, 'teleportation')$$);
SELECT regress.try($$SELECT * FROM darkspere.feature_access(1, NULL)$$);
SELECT regress.try($$SELECT * FROM darkspere.feature_access(NULL, 'sms_inbound')$$);
SELECT regress.try($$SELECT * FROM darkspere.feature_access(-1, 'sms_inbound')$$);
SELECT regress.try($$INSERT INTO darkspere.account_features VALUES (1, 'nope', true, NULL, NULL, 'x')$$);

-- mcp_protocol is enforced: no MCP agent on a plan without it (clear error); an override allows it; pro has it.
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'mcp-bot', 'https://agent.example/165', 'mcp', 1)$$, :free_acct)) AS mcp_on_free;
SELECT count(*) AS http_on_free FROM darkspere.register_agent(:free_acct, 'http-bot', 'https://agent.example/165h', 'http', 1);
SELECT darkspere.set_agent_status(agent_id, 'disabled') FROM darkspere.agents WHERE account_id = :free_acct;
INSERT INTO darkspere.account_features VALUES (:free_acct, 'mcp_protocol', true, NULL, NULL, 'beta tester');
SELECT count(*) AS mcp_with_override FROM darkspere.register_agent(:free_acct, 'mcp-bot', 'https://agent.example/165', 'mcp', 1);
SELECT count(*) AS mcp_on_pro FROM darkspere.register_agent(:pro_acct, 'mcp-bot', 'https://agent.example/165p', 'mcp', 1);
