-- 070_rate_limit — fixed-window limits with blocking: rules, per-subject overrides, costs, expiry, bad input.
-- Errors are printed as "SQLSTATE: message" by regress.try (000_setup.sql).
\set VERBOSITY terse

-- The seeded rules (docs/architecture.md#defaults).
SELECT scope, max_hits, window_s, block_s FROM darkspere.rate_limit_rules WHERE is_seed ORDER BY scope;

-- ip: 300 per minute are allowed, the 301st is refused and blocks the subject for 15 minutes.
SELECT count(*) FILTER (WHERE darkspere.rate_limit('ip', '203.0.113.70')) AS allowed FROM generate_series(1, 300);
SELECT darkspere.rate_limit('ip', '203.0.113.70') AS hit_301;
SELECT hits, blocked_until - window_start BETWEEN interval '899 s' AND interval '901 s' AS blocked_15_min
  FROM darkspere.rate_limit_state WHERE scope = 'ip' AND subject = '203.0.113.70';
-- while blocked nothing is counted and everything is refused.
SELECT darkspere.rate_limit('ip', '203.0.113.70') AS while_blocked;
SELECT hits FROM darkspere.rate_limit_state WHERE scope = 'ip' AND subject = '203.0.113.70';
-- subjects and scopes are counted separately.
SELECT darkspere.rate_limit('ip', '203.0.113.71') AS other_ip, darkspere.rate_limit('agent', '203.0.113.70') AS other_scope;

-- cost counts several hits at once; a hit that would go over the limit is refused.
SELECT darkspere.rate_limit('agent', 'agent-070', 99) AS cost_99;
SELECT darkspere.rate_limit('agent', 'agent-070') AS hit_100;
SELECT darkspere.rate_limit('agent', 'agent-070') AS hit_101;
SELECT darkspere.rate_limit('api_key', 'key-070', 1001) AS cost_over_the_limit_at_once;

-- a new window starts when the old one is over; a block ends when blocked_until passes.
SELECT darkspere.rate_limit('phone_out', '+16660700001', 10) AS ten;
UPDATE darkspere.rate_limit_state SET window_start = window_start - interval '61 seconds' WHERE subject = '+16660700001';
SELECT darkspere.rate_limit('phone_out', '+16660700001', 10) AS ten_in_a_new_window;
SELECT darkspere.rate_limit('phone_out', '+16660700001') AS eleventh;
UPDATE darkspere.rate_limit_state SET window_start = now() - interval '20 minutes', blocked_until = now() - interval '1 second'
 WHERE subject = '+16660700001';
SELECT darkspere.rate_limit('phone_out', '+16660700001') AS after_the_block;
SELECT hits, blocked_until FROM darkspere.rate_limit_state WHERE subject = '+16660700001';

-- Overrides: per-subject rows replace the rule for that subject only.
INSERT INTO darkspere.rate_limit_overrides VALUES ('ip', '203.0.113.72', 2, 60, 30);
SELECT darkspere.rate_limit('ip', '203.0.113.72') AS one, darkspere.rate_limit('ip', '203.0.113.72') AS two,
       darkspere.rate_limit('ip', '203.0.113.72') AS three;
SELECT blocked_until - window_start BETWEEN interval '29 s' AND interval '31 s' AS blocked_30_s
  FROM darkspere.rate_limit_state WHERE scope = 'ip' AND subject = '203.0.113.72';
INSERT INTO darkspere.rate_limit_overrides VALUES ('ip', '203.0.113.73', 1000, 60, 30);
SELECT count(*) FILTER (WHERE darkspere.rate_limit('ip', '203.0.113.73')) AS allowed_with_raised_limit FROM generate_series(1, 400);
-- an override for one scope does not apply to another.
SELECT count(*) FILTER (WHERE darkspere.rate_limit('agent', '203.0.113.72')) AS agent_scope_unaffected FROM generate_series(1, 5);

-- Rules are rows: a new scope works at once.
INSERT INTO darkspere.rate_limit_rules VALUES ('login', 3, 60, 120);
SELECT i, darkspere.rate_limit('login', 'user-070') AS allowed FROM generate_series(1, 5) i;
-- a rule without a block period still limits: the 4th hit is refused.
INSERT INTO darkspere.rate_limit_rules VALUES ('no_block', 3, 60, 0);
SELECT i, darkspere.rate_limit('no_block', 'user-070') AS allowed FROM generate_series(1, 5) i;

-- Bad input.
SELECT regress.try($$SELECT darkspere.rate_limit('nope', 'x')$$) AS unknown_scope;
SELECT regress.try($$SELECT darkspere.rate_limit('IP', 'x')$$) AS scope_is_case_sensitive;
SELECT regress.try($$SELECT darkspere.rate_limit(NULL, 'x')$$) AS null_scope;
SELECT regress.try($$SELECT darkspere.rate_limit('ip', NULL)$$) AS null_subject;
SELECT regress.try($$SELECT darkspere.rate_limit('ip', '')$$) AS empty_subject;
SELECT regress.try($$SELECT darkspere.rate_limit('ip', 'x', 0)$$) AS zero_cost;
SELECT regress.try($$SELECT darkspere.rate_limit('ip', 'x', -1)$$) AS negative_cost;
SELECT regress.try($$SELECT darkspere.rate_limit('ip', 'x', NULL)$$) AS null_cost;
SELECT count(*) AS state_rows_for_bad_calls FROM darkspere.rate_limit_state WHERE subject IN ('x', '');
