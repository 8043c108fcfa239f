-- 052_reply_cap — an agent's reply costs at most darkspere.max_reply_segments SMS segments: longer replies are cut
-- at a segment boundary, the cut is recorded on the message, and a reply of megabytes is planned in one pass.
-- Errors are printed as "SQLSTATE: message" by regress.try (000_setup.sql).
\set VERBOSITY terse

-- Other test files share this database: finish the work they left, so claims and tick() see only this file's.
SELECT regress.finish_leftover_work() \gset
\set QUIET off

SELECT darkspere.create_account('reply cap', 'pro') AS acct \gset
SELECT darkspere.add_number(:acct, '+15550520001', 'AC052');
SELECT count(*) FROM darkspere.register_agent(:acct, 'talker', 'https://agent.example/052', 'http', 100);
-- turn(phone, sid, reply) runs one conversation turn whose agent answers `reply`; returns complete_job's verdict.
CREATE FUNCTION pg_temp.turn(phone text, sid text, reply text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE c record;
BEGIN
    PERFORM darkspere.receive_sms('AC052', '+15550520001', phone, 'Tell me everything', sid);
    SELECT * INTO c FROM darkspere.claim_jobs('w052', 100) WHERE kind = 'agent_call';  -- earlier sends go along
    RETURN darkspere.complete_job(c.job_id, c.attempt, jsonb_build_object('reply', reply));
END $$;
-- reply(sid) shows the outbound messages answering sid, with their sms_send jobs.
CREATE FUNCTION pg_temp.reply(sid text)
RETURNS TABLE (chars int, encoding text, segments int, status text, truncated_from_bytes bigint, sends bigint)
LANGUAGE sql AS $$
    SELECT length(m.body), m.encoding, m.segments, m.status, m.reply_truncated_from_bytes,
           (SELECT count(*) FROM darkspere.jobs j WHERE j.message_id = m.message_id AND j.kind = 'sms_send')
      FROM darkspere.messages m
     WHERE m.reply_to = (SELECT message_id FROM darkspere.messages WHERE message_sid = sid)
     ORDER BY m.message_id
$$;

SHOW darkspere.max_reply_segments;

-- A 10 MB reply: at most 10 segments are stored and sent — GSM-7, 10 × 153 characters, one message — and the
-- message records how long the whole reply was.
SELECT pg_temp.turn('+16660520001', 'SM052-001', repeat('abcdefghi ', 1048576)) AS acked;
SELECT * FROM pg_temp.reply('SM052-001');
SELECT count(*) AS sms_send_jobs, sum(m.segments) AS segments
  FROM darkspere.jobs j JOIN darkspere.messages m ON m.message_id = j.message_id
 WHERE j.kind = 'sms_send' AND m.reply_to = (SELECT message_id FROM darkspere.messages WHERE message_sid = 'SM052-001');
-- The text sent is the reply's beginning, cut where the tenth segment ends.
SELECT body = left(repeat('abcdefghi ', 200), 1530) AS prefix_of_reply
  FROM darkspere.messages WHERE reply_to = (SELECT message_id FROM darkspere.messages WHERE message_sid = 'SM052-001');
-- The job keeps the agent's result, but not megabytes of it: its reply is cut to 64 KiB.
SELECT octet_length(result->>'reply') AS stored_reply_bytes FROM darkspere.jobs
 WHERE kind = 'agent_call' AND message_id = (SELECT message_id FROM darkspere.messages WHERE message_sid = 'SM052-001');

-- UCS-2 holds 67 characters a segment: 10 segments are 670 characters.
SELECT pg_temp.turn('+16660520002', 'SM052-002', repeat('ж', 500000)) AS acked;
SELECT * FROM pg_temp.reply('SM052-002');

-- A reply that fits exactly is not cut; one character more is.
SELECT pg_temp.turn('+16660520003', 'SM052-003', repeat('x', 1530)) AS acked;
SELECT * FROM pg_temp.reply('SM052-003');
SELECT pg_temp.turn('+16660520004', 'SM052-004', repeat('x', 1531)) AS acked;
SELECT * FROM pg_temp.reply('SM052-004');

-- With a higher cap a long reply is split into messages of at most 1,600 characters (words kept whole) and the
-- last one is cut where the budget ends: 11 + 11 + 3 segments.
SET darkspere.max_reply_segments = 25;
SELECT pg_temp.turn('+16660520005', 'SM052-005', repeat('word ', 2000)) AS acked;
SELECT * FROM pg_temp.reply('SM052-005');
RESET darkspere.max_reply_segments;

-- The setting is the operator's: bounded, and a tenant's role cannot raise it.
SELECT regress.try($$SET darkspere.max_reply_segments = 0$$) AS below_minimum;
SELECT regress.try($$SET darkspere.max_reply_segments = 101$$) AS above_maximum;
CREATE ROLE regress_052_tenant;
SET ROLE regress_052_tenant;
SET darkspere.max_reply_segments = 100;
SHOW darkspere.max_reply_segments;
RESET ROLE;
DROP ROLE regress_052_tenant;
