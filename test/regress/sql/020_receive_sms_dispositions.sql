-- 020_receive_sms_dispositions — every disposition of receive_sms, keywords, limits, quotas, queued routing, bad input.
-- Errors are printed as "SQLSTATE: message" by regress.try (000_setup.sql).
\set VERBOSITY terse

-- Other test files share this database: finish the work they left, so claims and tick() see only this file's.
SELECT regress.finish_leftover_work() \gset
\set QUIET off

-- A pro account with texts for every keyword, two service numbers, one agent.
SELECT darkspere.create_account('dispositions', 'pro', 'Dispositions help') AS acct \gset
UPDATE darkspere.accounts SET opt_out_text = 'You are unsubscribed', opt_in_text = 'Welcome back' WHERE account_id = :acct;
SELECT darkspere.add_number(:acct, '+15550200001', 'AC020');
SELECT darkspere.add_number(:acct, '+15550200002', 'AC020');
SELECT agent_id AS agent FROM darkspere.register_agent(:acct, 'bot', 'https://agent.example/020', 'http', 1000) \gset
-- r(…) shows receive_sms's row with ids as booleans and the agent by name (ids depend on earlier tests).
CREATE FUNCTION pg_temp.r(to_number text, from_number text, body text, sid text, provider text DEFAULT 'AC020')
RETURNS TABLE (disposition text, has_session boolean, has_message boolean, agent text, reply text)
LANGUAGE sql AS $$
    SELECT r.disposition, r.session_id IS NOT NULL, r.message_id IS NOT NULL,
           (SELECT a.name FROM darkspere.agents a WHERE a.agent_id = r.agent_id), r.reply
      FROM darkspere.receive_sms(provider, to_number, from_number, body, sid) r
$$;

-- routed: stored, bound to the agent, one agent_call job carrying everything the worker needs.
SELECT * FROM darkspere.receive_sms('AC020', '+15550200001', '+16660200001', 'hello', 'SM020-001', 0, 'req-1') \gset first_
SELECT :'first_disposition' AS disposition, :first_agent_id = :agent AS to_the_agent;
SELECT direction, body, status, phone, service_number, encoding, segments, agent_id = :agent AS agent_ok, request_id
  FROM darkspere.messages WHERE message_id = :first_message_id;
SELECT kind, state, attempt, max_attempts, ordering_key = 'session:' || :first_session_id AS ordering_by_session
  FROM darkspere.jobs WHERE message_id = :first_message_id;
SELECT (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(payload) k) AS payload_keys,
       payload->>'body' AS body, payload->>'from' AS "from", payload->>'to' AS "to", payload->>'endpoint' AS endpoint,
       payload->>'protocol' AS protocol, payload->>'request_id' AS request_id, payload->'history' AS history
  FROM darkspere.claim_jobs('w020', 1);
-- No request id: the payload names the message instead.
SELECT disposition, message_id AS no_request_id_message FROM darkspere.receive_sms('AC020', '+15550200002', '+16660200002', 'hi', 'SM020-002') \gset
SELECT :'disposition' AS disposition, payload->>'request_id' = 'msg-' || :no_request_id_message AS default_request_id
  FROM darkspere.claim_jobs('w020', 1);
-- NULL provider_account: refused (every webhook speaks for an AccountSid, which must own the number).
SELECT regress.try($$SELECT darkspere.receive_sms(NULL, '+15550200001', '+16660200003', 'no provider', 'SM020-003')$$) AS null_provider_account;

-- duplicate: the same MessageSid returns the original ids and changes nothing.
SELECT count(*) AS messages_before FROM darkspere.messages WHERE account_id = :acct \gset
SELECT r.disposition, r.session_id = :first_session_id AS same_session, r.message_id = :first_message_id AS same_message,
       r.agent_id = :agent AS same_agent, r.reply
  FROM darkspere.receive_sms('AC020', '+15550200001', '+16660200001', 'hello again', 'SM020-001') r;
SELECT r.disposition, r.message_id = :first_message_id AS same_message
  FROM darkspere.receive_sms('AC020', '+15550200002', '+16660200099', 'other body, other phone', 'SM020-001') r;
SELECT count(*) - :messages_before AS new_messages, (SELECT count(*) FROM darkspere.jobs WHERE message_id = :first_message_id) AS jobs
  FROM darkspere.messages WHERE account_id = :acct;

-- unknown_number: nothing is stored.
SELECT * FROM pg_temp.r('+15550200999', '+16660200001', 'to nobody', 'SM020-010');
SELECT * FROM pg_temp.r('+15550200001', '+16660200001', 'wrong owner', 'SM020-011', 'AC-somebody-else');
SELECT count(*) AS stored FROM darkspere.messages WHERE message_sid IN ('SM020-010', 'SM020-011');
-- an unknown number does not consume the sid: the right webhook with the same sid is routed later.
SELECT * FROM pg_temp.r('+15550200001', '+16660200001', 'wrong owner', 'SM020-011');

-- opted_out: STOP opts the phone out of this service number and answers with the account's opt-out text.
SELECT * FROM pg_temp.r('+15550200001', '+16660200010', 'STOP', 'SM020-020');
SELECT service_number, phone, source FROM darkspere.opt_outs WHERE account_id = :acct;
SELECT action, source, keyword, message_sid FROM darkspere.consent_events WHERE account_id = :acct ORDER BY event_id;
SELECT status, session_id IS NULL AS no_session FROM darkspere.messages WHERE message_sid = 'SM020-020';
-- an opted-out phone's messages are stored as suppressed, reach no agent and get no reply.
SELECT * FROM pg_temp.r('+15550200001', '+16660200010', 'are you there?', 'SM020-021');
SELECT status, agent_id, (SELECT count(*) FROM darkspere.jobs j WHERE j.message_id = m.message_id) AS jobs
  FROM darkspere.messages m WHERE message_sid = 'SM020-021';
-- STOP again: still opted out, no second confirmation text; HELP while opted out gets no text either.
SELECT * FROM pg_temp.r('+15550200001', '+16660200010', 'stop', 'SM020-022');
SELECT * FROM pg_temp.r('+15550200001', '+16660200010', 'HELP', 'SM020-023');
-- opt-outs are per service number: the account's other number still routes this phone.
SELECT * FROM pg_temp.r('+15550200002', '+16660200010', 'other line', 'SM020-024');

-- opted_in: START (or YES / UNSTOP) opts back in with the account's opt-in text; messages route again.
SELECT * FROM pg_temp.r('+15550200001', '+16660200010', 'Start', 'SM020-025');
SELECT count(*) AS opt_outs_left FROM darkspere.opt_outs WHERE account_id = :acct AND service_number = '+15550200001';
SELECT * FROM pg_temp.r('+15550200001', '+16660200010', 'back again', 'SM020-026');
-- YES and UNSTOP opt in too; the opt-in text was just sent, so not again within 10 minutes (rule keyword_reply).
SELECT * FROM pg_temp.r('+15550200001', '+16660200010', 'YES', 'SM020-027');
SELECT * FROM pg_temp.r('+15550200001', '+16660200010', 'unstop', 'SM020-028');

-- help: HELP / INFO answer with the account's help text (NULL when it has none); nothing reaches an agent.
SELECT * FROM pg_temp.r('+15550200001', '+16660200011', 'HELP', 'SM020-030');
-- INFO is HELP too (its text was just sent, so not again: rule keyword_reply).
SELECT * FROM pg_temp.r('+15550200001', '+16660200011', ' info ', 'SM020-031');
SELECT darkspere.create_account('no texts') AS quiet \gset
SELECT darkspere.add_number(:quiet, '+15550200003', 'AC020');
SELECT * FROM pg_temp.r('+15550200003', '+16660200011', 'help', 'SM020-032');
SELECT * FROM pg_temp.r('+15550200003', '+16660200011', 'stop', 'SM020-033');

-- keywords: the whole body, one word, any case, surrounding whitespace ignored.
SELECT body, (pg_temp.r('+15550200001', '+16660200012', body, 'SM020-04' || i)).disposition
  FROM (VALUES (1, 'STOPALL'), (2, E'unsubscribe\n'), (3, E'\tCancel'), (4, 'end'), (5, 'QUIT'), (6, 'revoke'),
               (7, 'OptOut'), (8, 'start'), (9, 'STOP PLEASE')) v(i, body) ORDER BY i;
SELECT body, (pg_temp.r('+15550200001', '+16660200013', body, 'SM020-05' || i)).disposition
  FROM (VALUES (1, 'please stop'), (2, 'STOP!'), (3, 'S T O P'), (4, 'helpme'), (5, 'starting'), (6, '')) v(i, body) ORDER BY i;

-- rate_limited, then blocked: with an override of 2 per minute, the third message is limited (and blocks the
-- phone), the fourth finds it blocked; neither is stored. Keywords still work while blocked.
-- The phone rule counts per account: the subject is "<account_id>:<phone>".
INSERT INTO darkspere.rate_limit_overrides (scope, subject, max_hits, window_s, block_s) VALUES ('phone', :acct || ':+16660200020', 2, 60, 300);
SELECT * FROM pg_temp.r('+15550200001', '+16660200020', 'one', 'SM020-060');
SELECT * FROM pg_temp.r('+15550200001', '+16660200020', 'two', 'SM020-061');
SELECT * FROM pg_temp.r('+15550200001', '+16660200020', 'three', 'SM020-062');
SELECT * FROM pg_temp.r('+15550200001', '+16660200020', 'four', 'SM020-063');
SELECT count(*) AS stored FROM darkspere.messages WHERE message_sid IN ('SM020-062', 'SM020-063');
SELECT hits, blocked_until > now() AS blocked FROM darkspere.rate_limit_state WHERE scope = 'phone' AND subject = :acct || ':+16660200020';
SELECT * FROM pg_temp.r('+15550200001', '+16660200020', 'STOP', 'SM020-064');
-- the block ends: the phone is counted again from a fresh window.
UPDATE darkspere.rate_limit_state SET blocked_until = now() - interval '1 second', window_start = now() - interval '10 minutes'
 WHERE scope = 'phone' AND subject = :acct || ':+16660200020';
SELECT * FROM pg_temp.r('+15550200001', '+16660200020', 'START', 'SM020-065');
SELECT * FROM pg_temp.r('+15550200001', '+16660200020', 'five', 'SM020-066');

-- over_quota: the free plan's hard cap of 100 inbound SMS segments a month. 99 used: one segment fits, then none.
SELECT darkspere.create_account('capped', 'free') AS capped \gset
SELECT darkspere.add_number(:capped, '+15550200004', 'AC020');
SELECT count(*) FROM darkspere.register_agent(:capped, 'bot', 'https://agent.example/capped');
INSERT INTO darkspere.usage_counters (account_id, period, metric, shard, used)
VALUES (:capped, date_trunc('month', now() AT TIME ZONE 'UTC')::date, 'sms_in', 0, 98);
SELECT * FROM pg_temp.r('+15550200004', '+16660200030', repeat('x', 161), 'SM020-070');  -- 2 segments, 2 left
SELECT * FROM pg_temp.r('+15550200004', '+16660200030', 'one more', 'SM020-071');
SELECT count(*) AS stored FROM darkspere.messages WHERE message_sid = 'SM020-071';
SELECT metric, used, included, overage, overage_cents FROM darkspere.usage(:capped) WHERE metric = 'sms_in';
-- keywords are honoured over the cap: an opt-out always works.
SELECT * FROM pg_temp.r('+15550200004', '+16660200030', 'STOP', 'SM020-072');
-- an exhausted agent-message allowance refuses inbound messages too (no agent could answer them).
SELECT darkspere.create_account('capped agents', 'free') AS capped2 \gset
SELECT darkspere.add_number(:capped2, '+15550200005', 'AC020');
SELECT count(*) FROM darkspere.register_agent(:capped2, 'bot', 'https://agent.example/capped2');
INSERT INTO darkspere.usage_counters (account_id, period, metric, shard, used)
VALUES (:capped2, date_trunc('month', now() AT TIME ZONE 'UTC')::date, 'agent_messages', 3, 500);
SELECT * FROM pg_temp.r('+15550200005', '+16660200031', 'anyone?', 'SM020-073');
-- a pro account is never capped: past its included SMS it keeps routing (and bills overage).
INSERT INTO darkspere.usage_counters AS u (account_id, period, metric, shard, used)
VALUES (:acct, date_trunc('month', now() AT TIME ZONE 'UTC')::date, 'sms_in', 0, 6000)
ON CONFLICT (account_id, period, metric, shard) DO UPDATE SET used = u.used + 6000;
SELECT * FROM pg_temp.r('+15550200001', '+16660200032', 'over the included amount', 'SM020-074');

-- queued: no eligible agent now (the only agent is in maintenance); stored as waiting, no job yet.
SELECT darkspere.create_account('queued', 'pro') AS q \gset
SELECT darkspere.add_number(:q, '+15550200006', 'AC020');
SELECT agent_id AS q_agent FROM darkspere.register_agent(:q, 'later', 'https://agent.example/later') \gset
SELECT darkspere.set_agent_status(:q_agent, 'maintenance');
SELECT * FROM pg_temp.r('+15550200006', '+16660200040', 'first, while nobody is there', 'SM020-080');
SELECT * FROM pg_temp.r('+15550200006', '+16660200040', 'second', 'SM020-081');
SELECT message_sid, status, agent_id FROM darkspere.messages WHERE account_id = :q ORDER BY message_id;
SELECT count(*) AS jobs FROM darkspere.jobs WHERE account_id = :q;
SELECT darkspere.tick() IS NOT NULL AS ticked;
SELECT message_sid, status FROM darkspere.messages WHERE account_id = :q ORDER BY message_id;
-- the agent comes back: tick() routes the oldest waiting message of the session, in order.
SELECT darkspere.set_agent_status(:q_agent, 'active');
-- a new message behind waiting ones queues too, so the session's order is kept.
SELECT * FROM pg_temp.r('+15550200006', '+16660200040', 'third', 'SM020-082');
SELECT darkspere.tick() IS NOT NULL AS ticked;
SELECT message_sid, status, agent_id = :q_agent AS agent_ok FROM darkspere.messages WHERE account_id = :q ORDER BY message_id;
SELECT darkspere.tick() IS NOT NULL AS ticked;
SELECT darkspere.tick() IS NOT NULL AS ticked;
SELECT m.message_sid, m.status, j.kind, j.state FROM darkspere.messages m JOIN darkspere.jobs j USING (message_id)
 WHERE m.account_id = :q ORDER BY m.message_id;
-- with nothing waiting, a message routes directly again.
SELECT * FROM pg_temp.r('+15550200006', '+16660200041', 'new phone', 'SM020-083');

-- bad input: class-22 errors naming the argument; nothing is stored.
SELECT regress.try($$SELECT darkspere.receive_sms('AC020', NULL, '+16660200050', 'x', 'SM020-090')$$) AS null_to;
SELECT regress.try($$SELECT darkspere.receive_sms('AC020', '5550200001', '+16660200050', 'x', 'SM020-090')$$) AS to_not_e164;
SELECT regress.try($$SELECT darkspere.receive_sms('AC020', '+15550200001', NULL, 'x', 'SM020-090')$$) AS null_from;
SELECT regress.try($$SELECT darkspere.receive_sms('AC020', '+15550200001', '', 'x', 'SM020-090')$$) AS empty_from;
SELECT regress.try($$SELECT darkspere.receive_sms('AC020', '+15550200001', '+16660200050', NULL, 'SM020-090')$$) AS null_body;
SELECT regress.try($$SELECT darkspere.receive_sms('AC020', '+15550200001', '+16660200050', 'x', NULL)$$) AS null_sid;
SELECT regress.try($$SELECT darkspere.receive_sms('AC020', '+15550200001', '+16660200050', 'x', '')$$) AS empty_sid;
SELECT regress.try($$SELECT darkspere.receive_sms('AC020', '+15550200001', '+16660200050', repeat('x', 1601), 'SM020-090')$$) AS body_1601_chars;
SELECT regress.try($$SELECT darkspere.receive_sms('AC020', '+15550200001', '+16660200050', repeat('é', 1601), 'SM020-090')$$) AS body_1601_multibyte_chars;
SELECT regress.try($$SELECT darkspere.receive_sms('AC020', '+15550200001', '+16660200050', 'x', 'SM020-090', -1)$$) AS negative_num_media;
SELECT count(*) AS stored FROM darkspere.messages WHERE message_sid = 'SM020-090';
-- limits are inclusive: 1,600 characters (multi-byte ones count once), an empty body and NULL num_media are fine.
SELECT disposition FROM darkspere.receive_sms('AC020', '+15550200001', '+16660200051', repeat('é', 1600), 'SM020-091');
SELECT encoding, segments, num_media FROM darkspere.messages WHERE message_sid = 'SM020-091';
SELECT disposition FROM darkspere.receive_sms('AC020', '+15550200001', '+16660200052', 'pic', 'SM020-092', NULL);
SELECT disposition FROM darkspere.receive_sms('AC020', '+15550200001', '+16660200053', 'pics', 'SM020-093', 3);
SELECT num_media FROM darkspere.messages WHERE message_sid IN ('SM020-092', 'SM020-093') ORDER BY message_sid;
