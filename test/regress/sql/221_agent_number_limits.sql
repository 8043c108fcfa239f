-- 221_agent_number_limits — custom_agents and multi_phone (issue #15) limit the agents (not disabled) and the
-- service numbers an account may add: the effective plan's plan_features row or an unexpired account override
-- (limit NULL: none); without the feature, one of each. plans.max_agents / max_numbers no longer decide.
\set VERBOSITY terse

SELECT darkspere.create_account('limits-221-free', 'free') AS free_acct \gset
SELECT darkspere.create_account('limits-221-pro', 'pro') AS pro_acct \gset

-- free has neither feature: one agent, one number.
SELECT count(*) AS first_agent FROM darkspere.register_agent(:free_acct, 'a1', 'https://agent.example/221-1', 'http', 1);
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'a2', 'https://agent.example/221-2', 'http', 1)$$, :free_acct));
SELECT darkspere.add_number(:free_acct, '+15552210001', 'AC221');
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+15552210002', 'AC221')$$, :free_acct));
-- An override raises them (custom_agents 3, multi_phone unlimited) ...
INSERT INTO darkspere.account_features VALUES
    (:free_acct, 'custom_agents', true, 3, NULL, 'pilot'),
    (:free_acct, 'multi_phone', true, NULL, NULL, 'pilot');
SELECT count(*) AS second_agent FROM darkspere.register_agent(:free_acct, 'a2', 'https://agent.example/221-2', 'http', 1);
SELECT count(*) AS third_agent FROM darkspere.register_agent(:free_acct, 'a3', 'https://agent.example/221-3', 'http', 1);
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'a4', 'https://agent.example/221-4', 'http', 1)$$, :free_acct));
SELECT darkspere.add_number(:free_acct, '+15552210002', 'AC221');
SELECT darkspere.add_number(:free_acct, '+15552210003', 'AC221');
SELECT allowed, monthly_limit, used, remaining, reason FROM darkspere.feature_access(:free_acct, 'custom_agents');
-- ... until it expires: back to one each (the agents and numbers it has stay).
UPDATE darkspere.account_features SET expires_at = now() - interval '1 second' WHERE account_id = :free_acct;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+15552210004', 'AC221')$$, :free_acct));
SELECT count(*) AS agents_kept FROM darkspere.agents WHERE account_id = :free_acct;

-- pro: the plan_features row decides, not plans.max_agents (5): lowering it to 2 allows two.
UPDATE darkspere.plan_features SET monthly_limit = 2 WHERE plan = 'pro' AND feature = 'custom_agents';
SELECT count(*) FROM darkspere.register_agent(:pro_acct, 'p1', 'https://agent.example/221-p1', 'http', 1);
SELECT count(*) FROM darkspere.register_agent(:pro_acct, 'p2', 'https://agent.example/221-p2', 'http', 1);
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'p3', 'https://agent.example/221-p3', 'http', 1)$$, :pro_acct));
-- A disabled agent frees its slot.
SELECT darkspere.set_agent_status(agent_id, 'disabled') FROM darkspere.agents WHERE account_id = :pro_acct AND name = 'p1';
SELECT count(*) AS after_disable FROM darkspere.register_agent(:pro_acct, 'p3', 'https://agent.example/221-p3', 'http', 1);
-- feature_access counts them the same way (p1 disabled: 2 of 2 used).
SELECT allowed, monthly_limit, used, remaining FROM darkspere.feature_access(:pro_acct, 'custom_agents');
UPDATE darkspere.plan_features SET monthly_limit = 5 WHERE plan = 'pro' AND feature = 'custom_agents';
-- Held to free (payment past due beyond the grace): free's limits, one number.
SELECT darkspere.add_number(:pro_acct, '+15552210011', 'AC221');
INSERT INTO darkspere.subscriptions (account_id, stripe_customer_id, past_due_since)
VALUES (:pro_acct, 'cus_221', now() - interval '30 days');
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+15552210012', 'AC221')$$, :pro_acct));
UPDATE darkspere.subscriptions SET past_due_since = NULL WHERE account_id = :pro_acct;
SELECT darkspere.add_number(:pro_acct, '+15552210012', 'AC221');
-- enterprise: no limit.
UPDATE darkspere.accounts SET plan = 'enterprise' WHERE account_id = :free_acct;
SELECT count(*) FROM darkspere.register_agent(:free_acct, 'a4', 'https://agent.example/221-4', 'http', 1);
SELECT darkspere.add_number(:free_acct, '+15552210004', 'AC221');
