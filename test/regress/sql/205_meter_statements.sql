-- 205_meter_statements — overage to Stripe Billing Meters and monthly statements (issue #15): queue_meter_reports
-- makes one stripe_meter job per account, metric and hour with the overage not reported before (the primary key
-- of meter_reports refuses a second report of an hour); a report that failed for good goes with the next hour;
-- usage(account, period) reads any month; close_period makes one numbered statement per account and month
-- (base price, SMS overage in segments, agent-message overage, integer cents), and nothing the second time.
\set VERBOSITY terse

SELECT regress.finish_leftover_work() \gset
SET timezone = 'UTC';
SELECT darkspere.create_account('meter-180', 'pro') AS acct \gset
UPDATE darkspere.accounts SET stripe_customer_id = 'cus_180', created_at = '2026-02-20' WHERE account_id = :acct;
INSERT INTO darkspere.usage_counters (account_id, period, metric, shard, used)
VALUES (:acct, '2026-03-01', 'sms_in', 0, 5100), (:acct, '2026-03-01', 'sms_out', 0, 1990),
       (:acct, '2026-03-01', 'agent_messages', 0, 10050), (:acct, '2026-03-01', 'agent_messages', 1, 1);

-- usage of a past month; usage(account) is this month's.
SELECT * FROM darkspere.usage(:acct, '2026-03-17');
SELECT count(*) FROM darkspere.usage(:acct) WHERE used > 0;

-- 12:30 reports the hour 11:00-12:00: sms_in and agent_messages have overage, sms_out has none.
SELECT darkspere.queue_meter_reports('2026-03-10 12:30+00');
SELECT metric, hour, value, event_name, customer, reported_at IS NULL AS pending
  FROM darkspere.meter_reports WHERE account_id = :acct ORDER BY metric, hour;
SELECT j.kind, j.state, j.payload - 'identifier' AS payload,
       j.payload ->> 'identifier' = :acct || ':' || r.metric || ':1773140400' AS identifier_ok
  FROM darkspere.jobs j JOIN darkspere.meter_reports r ON r.job_id = j.job_id
 WHERE r.account_id = :acct ORDER BY r.metric;
-- The same hour again (a later tick, another worker): nothing more.
SELECT darkspere.queue_meter_reports('2026-03-10 12:59+00');
-- The constraint itself: a second row for the hour is refused.
INSERT INTO darkspere.meter_reports (account_id, metric, hour, value, event_name, customer)
VALUES (:acct, 'sms_in', '2026-03-10 11:00+00', 1, 'x', 'cus_180');

-- More usage; sms_in's report is taken by Stripe, agent_messages' fails for good.
UPDATE darkspere.usage_counters SET used = used + 30 WHERE account_id = :acct AND metric = 'sms_in';
SELECT darkspere.meter_report_done(job_id, metric = 'sms_in', CASE WHEN metric <> 'sms_in' THEN 'Stripe answered 400' END)
  FROM darkspere.meter_reports WHERE account_id = :acct;
-- Next hour: only what was not reported (30 more segments; the failed 51 agent messages again).
SELECT darkspere.queue_meter_reports('2026-03-10 13:05+00');
SELECT metric, hour, value, reported_at IS NOT NULL AS reported, failed_at IS NOT NULL AS failed, error
  FROM darkspere.meter_reports WHERE account_id = :acct ORDER BY hour, metric;
-- The last hour of March is reported in the first hour of April, as March's.
UPDATE darkspere.usage_counters SET used = used + 15 WHERE account_id = :acct AND metric = 'sms_out';
SELECT darkspere.queue_meter_reports('2026-04-01 00:10+00');
SELECT metric, hour, value FROM darkspere.meter_reports WHERE account_id = :acct AND hour >= '2026-03-31' ORDER BY metric;

-- Statements: March closed once, numbered DS-202603-<n>.
SELECT darkspere.close_period('2026-03-01') > 0 AS made;
SELECT darkspere.close_period('2026-03-01') AS made_again;
SELECT number ~ '^DS-202603-[0-9]+$' AS numbered, plan, total_cents FROM darkspere.statements WHERE account_id = :acct;
SELECT line, kind, description, quantity, unit_cents, amount_cents FROM darkspere.statement_lines
 WHERE account_id = :acct ORDER BY line;
SELECT count(*) AS statements FROM darkspere.statements WHERE account_id = :acct;
-- The plan held at the month's end is billed: a change after it does not alter March.
SELECT darkspere.create_account('meter-180-b', 'free') AS b \gset
UPDATE darkspere.accounts SET created_at = '2026-01-05', plan = 'enterprise' WHERE account_id = :b;
INSERT INTO darkspere.account_plan_history (account_id, changed_at, old_plan, new_plan, reason)
VALUES (:b, '2026-02-10', 'free', 'pro', 'subscription active'),
       (:b, '2026-04-02', 'pro', 'enterprise', 'subscription active');
SELECT darkspere.close_period('2026-03-01');
SELECT plan, total_cents FROM darkspere.statements WHERE account_id = :b;
-- Numbers are distinct within the month.
SELECT count(DISTINCT number) = count(*) AS distinct_numbers FROM darkspere.statements WHERE period = '2026-03-01';
-- A month that has not ended cannot be closed.
SELECT darkspere.close_period((now() AT TIME ZONE 'UTC')::date);
