-- 220_mcp_gate — mcp_protocol enforced at routing time (issue #15, docs/billing.md "MCP agents and the plan"):
-- an account that loses the feature (downgrade, expired override) keeps its MCP agents but they take no turn; a
-- session stuck to one moves to an http agent; with no agent left but MCP ones the message fails at once and the
-- fallback text answers (disposition mcp_not_in_plan), and so does a message already waiting (tick()); an
-- override or an upgrade routes to MCP agents again.
\set VERBOSITY terse

SELECT regress.finish_leftover_work() \gset

SELECT darkspere.create_account('gate-220', 'pro') AS acct \gset
UPDATE darkspere.accounts SET fallback_text = 'Our assistant is unavailable on this plan. Call us at 555-0100.'
 WHERE account_id = :acct;
SELECT darkspere.add_number(:acct, '+15552200001', 'AC220');
SELECT agent_id AS mcp FROM darkspere.register_agent(:acct, 'mcp-a', 'https://agent.example/220m', 'mcp', 10) \gset
SELECT agent_id AS http FROM darkspere.register_agent(:acct, 'http-a', 'https://agent.example/220h', 'http', 10) \gset

CREATE FUNCTION regress.sms220(phone text, sid text) RETURNS TABLE (disposition text, agent text, reply text)
LANGUAGE sql AS $$
    SELECT r.disposition, g.name, r.reply
      FROM darkspere.receive_sms('AC220', '+15552200001', phone, 'hi', sid, 0, 'req-' || sid) r
      LEFT JOIN darkspere.agents g ON g.agent_id = r.agent_id
$$;
-- The replies stored for one inbound message (the fallback text has no agent).
CREATE FUNCTION regress.replies220(sid text) RETURNS TABLE (status text, body text, agent_id bigint)
LANGUAGE sql AS $$
    SELECT o.status, o.body, o.agent_id FROM darkspere.messages i JOIN darkspere.messages o ON o.reply_to = i.message_id
     WHERE i.message_sid = sid ORDER BY o.message_id
$$;

-- On pro: the MCP agent (registered first, equal health) takes the first session, which sticks to it.
SELECT * FROM regress.sms220('+16662200001', 'SM220-01');
SELECT * FROM regress.sms220('+16662200001', 'SM220-02');

-- Downgrade to free (a subscription deleted, a plan changed by hand): the MCP agent takes no more turns. The
-- session stuck to it moves to the http agent; a new session goes there too.
UPDATE darkspere.accounts SET plan = 'free' WHERE account_id = :acct;
SELECT allowed, reason FROM darkspere.feature_access(:acct, 'mcp_protocol');
SELECT * FROM regress.sms220('+16662200001', 'SM220-03');
SELECT s.agent_id = :http AS session_moved_to_http FROM darkspere.sessions s
 WHERE s.account_id = :acct AND s.phone = '+16662200001' AND s.state = 'active';
SELECT * FROM regress.sms220('+16662200002', 'SM220-04');

-- An http agent that may come back (maintenance): the message waits for it, as without the gate.
SELECT darkspere.set_agent_status(:http, 'maintenance');
SELECT * FROM regress.sms220('+16662200003', 'SM220-05');
SELECT status FROM darkspere.messages WHERE message_sid = 'SM220-05';

-- No http agent at all (disabled): waiting would be silent until the session expires. The message fails at
-- once, its trace says why, and the account's fallback text is the reply (an SMS job; no agent wrote it).
SELECT darkspere.set_agent_status(:http, 'disabled');
SELECT * FROM regress.sms220('+16662200004', 'SM220-06');
SELECT status, agent_id FROM darkspere.messages WHERE message_sid = 'SM220-06';
SELECT * FROM regress.replies220('SM220-06');
SELECT step, detail ->> 'disposition' AS disposition FROM darkspere.trace_events
 WHERE request_id = 'req-SM220-06' ORDER BY event_id;
SELECT count(*) AS sms_jobs FROM darkspere.jobs j JOIN darkspere.messages o ON o.message_id = j.message_id
  JOIN darkspere.messages i ON i.message_id = o.reply_to WHERE i.message_sid = 'SM220-06' AND j.kind = 'sms_send';
-- The message that was waiting for the http agent (SM220-05) is not left waiting either: tick() fails it the
-- same way, with its own fallback reply.
SELECT darkspere.tick() IS NOT NULL AS ticked;
SELECT status FROM darkspere.messages WHERE message_sid = 'SM220-05';
SELECT * FROM regress.replies220('SM220-05');
SELECT step, detail ->> 'reason' AS reason FROM darkspere.trace_events
 WHERE request_id = 'req-SM220-05' ORDER BY event_id;
-- A session stuck to the MCP agent gets the same answer.
SELECT * FROM regress.sms220('+16662200001', 'SM220-07');

-- Without a fallback text the message still fails at once, with nothing sent.
UPDATE darkspere.accounts SET fallback_text = NULL WHERE account_id = :acct;
SELECT * FROM regress.sms220('+16662200005', 'SM220-08');
SELECT count(*) AS replies FROM regress.replies220('SM220-08');
UPDATE darkspere.accounts SET fallback_text = 'Our assistant is unavailable on this plan. Call us at 555-0100.'
 WHERE account_id = :acct;

-- An override gives mcp_protocol back: the MCP agent takes turns again (the stuck session too).
INSERT INTO darkspere.account_features VALUES (:acct, 'mcp_protocol', true, NULL, now() + interval '1 hour', 'trial');
SELECT * FROM regress.sms220('+16662200006', 'SM220-09');
SELECT * FROM regress.sms220('+16662200001', 'SM220-10');
-- The override expires: gated again.
UPDATE darkspere.account_features SET expires_at = now() - interval '1 second' WHERE account_id = :acct;
SELECT disposition, agent FROM regress.sms220('+16662200006', 'SM220-11');

-- Upgrade (back to pro): MCP routing is restored.
DELETE FROM darkspere.account_features WHERE account_id = :acct;
UPDATE darkspere.accounts SET plan = 'pro' WHERE account_id = :acct;
SELECT * FROM regress.sms220('+16662200006', 'SM220-12');
SELECT * FROM regress.sms220('+16662200007', 'SM220-13');

-- A pro account held to the free plan's limits (payment past due beyond the grace) is gated the same way.
INSERT INTO darkspere.subscriptions (account_id, stripe_customer_id, past_due_since)
VALUES (:acct, 'cus_220', now() - interval '30 days');
SELECT darkspere.effective_plan(:acct);
SELECT disposition, agent FROM regress.sms220('+16662200007', 'SM220-14');
DELETE FROM darkspere.subscriptions WHERE account_id = :acct;

-- Every inbound message was counted once, whatever happened to it (14 one-segment messages).
SELECT metric, sum(used) FROM darkspere.usage_counters WHERE account_id = :acct AND metric = 'sms_in' GROUP BY metric;

-- Held to the free plan's limits includes free's hard cap: with free's 100 inbound segments used, a held
-- account's message is over_quota (the hard cap read by receive_sms is the effective plan's, not the plan bought).
INSERT INTO darkspere.usage_counters AS u (account_id, period, metric, shard, used)
VALUES (:acct, date_trunc('month', now() AT TIME ZONE 'UTC')::date, 'sms_in', 0, 86)
ON CONFLICT (account_id, period, metric, shard) DO UPDATE SET used = u.used + 86;
INSERT INTO darkspere.subscriptions (account_id, stripe_customer_id, past_due_since)
VALUES (:acct, 'cus_220', now() - interval '30 days');
SELECT disposition, agent FROM regress.sms220('+16662200007', 'SM220-15');
-- Paid (no longer past due): pro again, no hard cap.
UPDATE darkspere.subscriptions SET past_due_since = NULL WHERE account_id = :acct;
SELECT disposition, agent FROM regress.sms220('+16662200007', 'SM220-16');
DELETE FROM darkspere.subscriptions WHERE account_id = :acct;

DROP FUNCTION regress.sms220(text, text);
DROP FUNCTION regress.replies220(text);
SELECT regress.finish_leftover_work() \gset
