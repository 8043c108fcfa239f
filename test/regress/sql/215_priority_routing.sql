-- 215_priority_routing — the priority_routing feature (issue #15): an account that has it gets its agent calls
-- and replies queued at priority -1, so under contention claim_jobs hands them out before older jobs of accounts
-- without it (priority 0).
\set VERBOSITY terse

SELECT regress.finish_leftover_work() \gset

-- tenant(name, plan, number) makes an account with one number and one active agent.
CREATE FUNCTION pg_temp.tenant(name text, plan text, number text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE id bigint;
BEGIN
    id := darkspere.create_account(name, plan);
    PERFORM darkspere.add_number(id, number, 'AC190');
    PERFORM darkspere.register_agent(id, name || ' bot', 'https://agent.example/190', 'http', 100);
    RETURN id;
END $$;
SELECT pg_temp.tenant('prio free', 'free', '+15550190001') AS free_acct \gset
SELECT pg_temp.tenant('prio pro', 'pro', '+15550190002') AS pro_acct \gset

-- The free account's three messages come first, then the pro account's one.
SELECT count(*) FROM generate_series(1, 3) n,
       darkspere.receive_sms('AC190', '+15550190001', '+1666019000' || n, 'hi', 'SM190-F-' || n);
SELECT count(*) FROM darkspere.receive_sms('AC190', '+15550190002', '+16660190100', 'hi', 'SM190-P-1');
SELECT a.name, j.priority, count(*) FROM darkspere.jobs j JOIN darkspere.accounts a USING (account_id)
 WHERE j.account_id IN (:free_acct, :pro_acct) AND j.state = 'pending' GROUP BY 1, 2 ORDER BY 1;

-- Room for one job: the pro account's, though it is the newest.
SELECT a.name FROM darkspere.claim_jobs('w190', 1, '1 minute', '{}', '{}') c
  JOIN darkspere.jobs j ON j.job_id = c.job_id JOIN darkspere.accounts a ON a.account_id = j.account_id;
-- An override taking the feature away: the account's next call waits its turn like anyone's.
INSERT INTO darkspere.account_features (account_id, feature, enabled, reason)
VALUES (:pro_acct, 'priority_routing', false, 'regress 190');
SELECT count(*) FROM darkspere.receive_sms('AC190', '+15550190002', '+16660190101', 'hi', 'SM190-P-2');
SELECT j.priority FROM darkspere.jobs j JOIN darkspere.messages m ON m.message_id = j.message_id
 WHERE m.message_sid = 'SM190-P-2';
SELECT regress.finish_leftover_work() \gset
