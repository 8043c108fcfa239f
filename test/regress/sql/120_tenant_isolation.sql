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
