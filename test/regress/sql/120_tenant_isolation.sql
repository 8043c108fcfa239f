-- 120_tenant_isolation — one tenant cannot act on another tenant's numbers, nor on what a phone may do with
-- other tenants (issue #10, items 12–14). Tenant A is the attacker: it has its own Twilio account (so it can sign
-- webhooks for its own AccountSid) and forges whatever it likes; tenant B is the victim.
-- Errors are printed as "SQLSTATE: message" by regress.try (000_setup.sql).
\set VERBOSITY terse

-- Other test files share this database: finish the work they left, so claims see only this file's.
SELECT regress.finish_leftover_work() \gset
\set QUIET off

-- Two pro tenants, each with its own Twilio AccountSid, one number and one agent; B has texts for every keyword.
SELECT darkspere.create_account('tenant A', 'pro') AS a \gset
SELECT darkspere.create_account('tenant B', 'pro', 'B: reply STOP to stop') AS b \gset
UPDATE darkspere.accounts SET opt_out_text = 'B: unsubscribed', opt_in_text = 'B: welcome back' WHERE account_id = :b;
SELECT darkspere.add_number(:a, '+15551200001', 'AC120a');
SELECT darkspere.add_number(:b, '+15551200002', 'AC120b');
SELECT agent_id AS a_bot FROM darkspere.register_agent(:a, 'a bot', 'https://agent.example/120a', 'http', 1000) \gset
SELECT agent_id AS b_bot FROM darkspere.register_agent(:b, 'b bot', 'https://agent.example/120b', 'http', 1000) \gset

------------------------------------------------------------------------------------------------------------------
-- Item 12: a number answers only to the AccountSid that owns it.
------------------------------------------------------------------------------------------------------------------

-- A number cannot lose its AccountSid (0.1.0 allowed a number without one, and such a number took webhooks
-- signed for any configured AccountSid).
SELECT regress.try($$UPDATE darkspere.numbers SET provider_account = NULL WHERE number = '+15551200002'$$)
    AS clear_provider_account;

-- Tenant A signs with its own AccountSid and targets B's number: a message, a STOP and a HELP, through each of the
-- three receive paths. Every one is an unknown number: no message, session, opt-out, consent event, usage, rate
-- limit hit or reply for B.
SELECT disposition, session_id, message_id, agent_id, reply
  FROM darkspere.receive_sms('AC120a', '+15551200002', '+16661200001', 'injected', 'SM120-001');
SELECT disposition, session_id, message_id, agent_id, reply
  FROM darkspere.receive_sms('AC120a', '+15551200002', '+16661200001', 'STOP', 'SM120-002');
SELECT disposition, reply, job_id
  FROM darkspere.receive_sms_leased('AC120a', '+15551200002', '+16661200001', 'HELP', 'SM120-003', 0, NULL,
                                    'w-120', '30 seconds');
SELECT ord, disposition, session_id, message_id, reply
  FROM darkspere.receive_sms_batch('[
    {"provider_account": "AC120a", "to_number": "+15551200002", "from_number": "+16661200001", "body": "batched",
     "message_sid": "SM120-004"},
    {"provider_account": "AC120a", "to_number": "+15551200002", "from_number": "+16661200001", "body": "stop",
     "message_sid": "SM120-005"}]');
SELECT (SELECT count(*) FROM darkspere.messages WHERE account_id = :b) AS b_messages,
       (SELECT count(*) FROM darkspere.sessions WHERE account_id = :b) AS b_sessions,
       (SELECT count(*) FROM darkspere.opt_outs WHERE account_id = :b) AS b_opt_outs,
       (SELECT count(*) FROM darkspere.consent_events WHERE account_id = :b) AS b_consent_events,
       (SELECT sum(used) FROM darkspere.usage(:b)) AS b_usage,
       (SELECT count(*) FROM darkspere.rate_limit_state WHERE subject LIKE '%+16661200001') AS rate_limit_rows;
-- The forgeries consumed no MessageSid: B's own webhook with the same sid is received.
SELECT disposition, agent_id = :b_bot AS b_bot
  FROM darkspere.receive_sms('AC120b', '+15551200002', '+16661200001', 'hello B', 'SM120-001');
-- Every receive path requires the AccountSid.
SELECT regress.try($$SELECT darkspere.receive_sms(NULL, '+15551200002', '+16661200001', 'x', 'SM120-009')$$)
    AS receive_sms_null_account;
SELECT regress.try($$SELECT darkspere.receive_sms_leased(NULL, '+15551200002', '+16661200001', 'x', 'SM120-009', 0,
                                                         NULL, 'w-120', '30 seconds')$$) AS leased_null_account;
SELECT regress.try($$SELECT darkspere.receive_sms_batch('[{"provider_account": null, "to_number": "+15551200002",
    "from_number": "+16661200001", "body": "x", "message_sid": "SM120-009"}]')$$) AS batch_null_account;

------------------------------------------------------------------------------------------------------------------
-- Item 13: per-phone rate limits are per tenant; one higher ceiling counts the phone across tenants.
------------------------------------------------------------------------------------------------------------------

-- Tenant A forges 61 messages "from" phone +16661200013 to its own number: 60 are routed, the 61st goes over the
-- phone rule (60 a minute) and blocks the phone with A; the next is refused as blocked.
SELECT disposition, count(*)
  FROM (SELECT (darkspere.receive_sms('AC120a', '+15551200001', '+16661200013', 'forged ' || i, 'SM120-13-' || i)).disposition
          FROM generate_series(1, 61) i) d
 GROUP BY disposition ORDER BY disposition;
SELECT disposition FROM darkspere.receive_sms('AC120a', '+15551200001', '+16661200013', 'forged 62', 'SM120-13-62');
-- The phone's next message to tenant B is routed: A's flood blocked it with A only.
SELECT disposition, agent_id = :b_bot AS b_bot
  FROM darkspere.receive_sms('AC120b', '+15551200002', '+16661200013', 'hello B', 'SM120-13-b1');
-- The counters: the phone with A (61 hits, blocked), with B (1 hit), and the ceiling across tenants, which counts
-- the messages the tenants' rules let through (60 + 1), not A's refused ones.
SELECT scope, replace(replace(subject, :a || ':', 'A:'), :b || ':', 'B:') AS subject, hits,
       COALESCE(blocked_until > now(), false) AS blocked
  FROM darkspere.rate_limit_state WHERE subject LIKE '%+16661200013' ORDER BY scope, subject;

-- The ceiling is a rule of its own (rate_limit_rules 'phone_ceiling', 600 a minute by default, blocks for 5
-- minutes): with an override of 2 for phone +16661200014, its third message, whichever tenant it is for, is
-- refused and blocks the phone with every tenant. A message the ceiling refuses is not counted by the tenant's
-- rule.
INSERT INTO darkspere.rate_limit_overrides VALUES ('phone_ceiling', '+16661200014', 2, 60, 300);
SELECT disposition FROM darkspere.receive_sms('AC120a', '+15551200001', '+16661200014', 'one', 'SM120-14-1');
SELECT disposition FROM darkspere.receive_sms('AC120b', '+15551200002', '+16661200014', 'two', 'SM120-14-2');
SELECT disposition FROM darkspere.receive_sms('AC120a', '+15551200001', '+16661200014', 'three', 'SM120-14-3');
SELECT disposition FROM darkspere.receive_sms('AC120b', '+15551200002', '+16661200014', 'four', 'SM120-14-4');
SELECT scope, replace(replace(subject, :a || ':', 'A:'), :b || ':', 'B:') AS subject, hits,
       COALESCE(blocked_until > now(), false) AS blocked
  FROM darkspere.rate_limit_state WHERE subject LIKE '%+16661200014' ORDER BY scope, subject;

-- Outbound too: tenant A's replies having used up the phone_out rule for phone +16661200015 (10 a minute, then
-- held for 10 minutes) hold A's next reply, not B's.
SELECT darkspere.rate_limit('phone_out', :a || ':+16661200015', 11) AS a_replies_over_the_limit;
SELECT job_id AS a_job, attempt AS a_attempt
  FROM darkspere.receive_sms_leased('AC120a', '+15551200001', '+16661200015', 'to A', 'SM120-15-a', 0, NULL,
                                    'w-120', '30 seconds') \gset
SELECT job_id AS b_job, attempt AS b_attempt
  FROM darkspere.receive_sms_leased('AC120b', '+15551200002', '+16661200015', 'to B', 'SM120-15-b', 0, NULL,
                                    'w-120', '30 seconds') \gset
SELECT darkspere.complete_job(:a_job, :a_attempt, '{"reply": "A answers"}') AS a_completed,
       darkspere.complete_job(:b_job, :b_attempt, '{"reply": "B answers"}') AS b_completed;
SELECT CASE j.account_id WHEN :a THEN 'A' WHEN :b THEN 'B' END AS tenant, j.payload->>'body' AS body,
       COALESCE(j.last_error LIKE 'held by the phone_out rate limit until %', false) AS held
  FROM darkspere.jobs j WHERE j.kind = 'sms_send' AND j.payload->>'to' = '+16661200015' ORDER BY tenant;

------------------------------------------------------------------------------------------------------------------
-- Item 14: keyword replies are throttled and metered; consent is always recorded.
------------------------------------------------------------------------------------------------------------------

-- r14(phone, body, sid): tenant B receives a keyword; shows the disposition and whether a reply text came back.
CREATE FUNCTION pg_temp.r14(phone text, body text, sid text) RETURNS TABLE (disposition text, reply text)
LANGUAGE sql AS $$ SELECT r.disposition, r.reply FROM darkspere.receive_sms('AC120b', '+15551200002', phone, body, sid) r $$;
SELECT COALESCE(sum(used), 0) AS sms_out_before FROM darkspere.usage(:b) WHERE metric = 'sms_out' \gset

-- Twenty HELPs from one phone in a row: one reply; every message is stored and every HELP recorded.
SELECT reply, count(*) FROM (SELECT (pg_temp.r14('+16661200020', 'HELP', 'SM120-20-' || i)).* FROM generate_series(1, 20) i) h
 GROUP BY reply ORDER BY reply NULLS LAST;
SELECT count(*) AS stored, count(*) FILTER (WHERE status = 'keyword') AS as_keyword
  FROM darkspere.messages WHERE message_sid LIKE 'SM120-20-%';
SELECT count(*) AS help_events FROM darkspere.consent_events WHERE account_id = :b AND phone = '+16661200020' AND action = 'help';
-- Each keyword has its own allowance: STOP, START, STOP, START from that phone answer the first STOP and the
-- first START only, and each changes consent: the phone ends opted in.
SELECT * FROM pg_temp.r14('+16661200020', 'STOP', 'SM120-21-1');
SELECT * FROM pg_temp.r14('+16661200020', 'START', 'SM120-21-2');
SELECT * FROM pg_temp.r14('+16661200020', 'STOP', 'SM120-21-3');
SELECT * FROM pg_temp.r14('+16661200020', 'START', 'SM120-21-4');
SELECT action, count(*) FROM darkspere.consent_events WHERE account_id = :b AND phone = '+16661200020' GROUP BY action ORDER BY action;
SELECT count(*) AS opted_out FROM darkspere.opt_outs WHERE account_id = :b AND phone = '+16661200020';
-- Another phone has its own allowance.
SELECT * FROM pg_temp.r14('+16661200021', 'help', 'SM120-22-1');
-- After the window (rule keyword_reply: 10 minutes), HELP is answered again.
UPDATE darkspere.rate_limit_state SET window_start = window_start - interval '11 minutes'
 WHERE scope = 'keyword_reply' AND subject = :b || ':+16661200020:help';
SELECT * FROM pg_temp.r14('+16661200020', 'HELP', 'SM120-23-1');
-- The replies sent are outbound SMS of B's and counted as such, by segments: 2 HELP + STOP + START + HELP of the
-- other phone = 5 one-segment texts. Replies not sent count nothing.
SELECT used - :sms_out_before AS sms_out_added FROM darkspere.usage(:b) WHERE metric = 'sms_out';
-- A long keyword text counts its segments (161 GSM-7 characters: 2), through the batch path too.
UPDATE darkspere.accounts SET help_text = repeat('h', 161) WHERE account_id = :b;
SELECT ord, disposition, length(reply) AS reply_chars FROM darkspere.receive_sms_batch('[
    {"provider_account": "AC120b", "to_number": "+15551200002", "from_number": "+16661200022", "body": "HELP",
     "message_sid": "SM120-24-1"},
    {"provider_account": "AC120b", "to_number": "+15551200002", "from_number": "+16661200022", "body": "INFO",
     "message_sid": "SM120-24-2"}]');
SELECT used - :sms_out_before AS sms_out_added FROM darkspere.usage(:b) WHERE metric = 'sms_out';
