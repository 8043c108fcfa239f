-- 060_delivery_status — provider status callbacks: a monotonic delivery state per outbound message.
-- Errors are printed as "SQLSTATE: message" by regress.try (000_setup.sql).
\set VERBOSITY terse

-- Other test files share this database: finish the work they left, so claims and tick() see only this file's.
SELECT regress.finish_leftover_work() \gset
\set QUIET off

SELECT darkspere.create_account('delivery', 'pro') AS acct \gset
SELECT darkspere.add_number(:acct, '+15550600001', 'AC060');
SELECT count(*) FROM darkspere.register_agent(:acct, 'bot', 'https://agent.example/060', 'http', 100);
-- send(phone, sid) runs one conversation turn up to a queued SMS and completes its sms_send with the given sid.
CREATE FUNCTION pg_temp.send(phone text, sid text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE c record;
BEGIN
    PERFORM darkspere.receive_sms('AC060', '+15550600001', phone, 'hello', 'in-' || sid);
    SELECT * INTO c FROM darkspere.claim_jobs('w', 1);
    PERFORM darkspere.complete_job(c.job_id, c.attempt, '{"reply": "hi"}');
    SELECT * INTO c FROM darkspere.claim_jobs('w', 1);
    RETURN darkspere.complete_job(c.job_id, c.attempt, jsonb_build_object('sid', sid, 'status', 'queued'));
END $$;
CREATE FUNCTION pg_temp.st(sid text) RETURNS TABLE (status text, delivery_rank smallint, error_code int)
LANGUAGE sql AS $$ SELECT status, delivery_rank, error_code FROM darkspere.messages WHERE message_sid = sid $$;

-- In order: queued → sending → sent → delivered, each step applied.
SELECT pg_temp.send('+16660600001', 'SM060-A');
SELECT * FROM pg_temp.st('SM060-A');
SELECT darkspere.record_delivery_status('AC060', 'SM060-A', 'sending');
SELECT * FROM pg_temp.st('SM060-A');
SELECT darkspere.record_delivery_status('AC060', 'SM060-A', 'sent');
SELECT * FROM pg_temp.st('SM060-A');
SELECT darkspere.record_delivery_status('AC060', 'SM060-A', 'delivered');
SELECT * FROM pg_temp.st('SM060-A');
-- Out of order and repeated: a lower or equal rank changes nothing, but every callback is recorded.
SELECT darkspere.record_delivery_status('AC060', 'SM060-A', 'sent');
SELECT darkspere.record_delivery_status('AC060', 'SM060-A', 'delivered');
SELECT darkspere.record_delivery_status('AC060', 'SM060-A', 'queued');
SELECT * FROM pg_temp.st('SM060-A');
-- The first terminal status wins: undelivered / failed after delivered are ignored.
SELECT darkspere.record_delivery_status('AC060', 'SM060-A', 'undelivered', 30003);
SELECT darkspere.record_delivery_status('AC060', 'SM060-A', 'failed', 30008);
SELECT * FROM pg_temp.st('SM060-A');
-- read (rank 4) follows delivered.
SELECT darkspere.record_delivery_status('AC060', 'SM060-A', 'read');
SELECT * FROM pg_temp.st('SM060-A');
SELECT status, error_code, applied FROM darkspere.delivery_events WHERE message_sid = 'SM060-A' ORDER BY event_id;

-- Skipping ahead: delivered arrives before sent; the late sent is ignored.
SELECT pg_temp.send('+16660600002', 'SM060-B');
SELECT darkspere.record_delivery_status('AC060', 'SM060-B', 'delivered');
SELECT darkspere.record_delivery_status('AC060', 'SM060-B', 'sent');
SELECT darkspere.record_delivery_status('AC060', 'SM060-B', 'sending');
SELECT * FROM pg_temp.st('SM060-B');
-- A failure keeps its error code; read never follows a failure.
SELECT pg_temp.send('+16660600003', 'SM060-C');
SELECT darkspere.record_delivery_status('AC060', 'SM060-C', 'undelivered', 30005);
SELECT darkspere.record_delivery_status('AC060', 'SM060-C', 'delivered');
SELECT darkspere.record_delivery_status('AC060', 'SM060-C', 'read');
SELECT * FROM pg_temp.st('SM060-C');
-- read before delivered is not applied: read only follows delivered.
SELECT pg_temp.send('+16660600004', 'SM060-D');
SELECT darkspere.record_delivery_status('AC060', 'SM060-D', 'read');
SELECT * FROM pg_temp.st('SM060-D');
SELECT darkspere.record_delivery_status('AC060', 'SM060-D', 'delivered');
SELECT * FROM pg_temp.st('SM060-D');

-- Early callbacks: a status for a sid nobody stored yet is kept, then applied when complete_job stores the sid.
SELECT darkspere.record_delivery_status('AC060', 'SM060-E', 'sent');
SELECT darkspere.record_delivery_status('AC060', 'SM060-E', 'delivered');
SELECT status, applied FROM darkspere.delivery_events WHERE message_sid = 'SM060-E' ORDER BY event_id;
SELECT pg_temp.send('+16660600005', 'SM060-E');
SELECT * FROM pg_temp.st('SM060-E');
SELECT status, applied FROM darkspere.delivery_events WHERE message_sid = 'SM060-E' ORDER BY event_id;
-- an early failure too, with its error code.
SELECT darkspere.record_delivery_status('AC060', 'SM060-F', 'failed', 30007);
SELECT pg_temp.send('+16660600006', 'SM060-F');
SELECT * FROM pg_temp.st('SM060-F');
-- a callback for a sid that never shows up stays unapplied and touches no message.
SELECT darkspere.record_delivery_status('AC060', 'SM060-unknown', 'delivered');
SELECT status, applied FROM darkspere.delivery_events WHERE message_sid = 'SM060-unknown';
-- inbound messages are never touched by status callbacks, even when the sid matches.
SELECT disposition FROM darkspere.receive_sms('AC060', '+15550600001', '+16660600007', 'inbound', 'SM060-IN');
SELECT darkspere.record_delivery_status('AC060', 'SM060-IN', 'delivered');
SELECT direction, status, delivery_rank FROM darkspere.messages WHERE message_sid = 'SM060-IN';

-- A callback speaks only for messages of its own AccountSid's numbers: a tenant with its own Twilio account (its
-- callbacks verified with its own token) cannot mark another tenant's messages delivered or failed.
SELECT regress.finish_leftover_work() \gset
SELECT darkspere.create_account('delivery other', 'pro') AS other \gset
SELECT darkspere.add_number(:other, '+15550600002', 'AC060other');
SELECT pg_temp.send('+16660600008', 'SM060-G');
SELECT darkspere.record_delivery_status('AC060other', 'SM060-G', 'failed', 30008) AS forged;
SELECT * FROM pg_temp.st('SM060-G');
SELECT darkspere.record_delivery_status('AC060', 'SM060-G', 'delivered') AS genuine;
SELECT darkspere.record_delivery_status('AC060', 'SM060-G', 'sent') AS older;
SELECT * FROM pg_temp.st('SM060-G');
SELECT status, provider_account, applied FROM darkspere.delivery_events WHERE message_sid = 'SM060-G' ORDER BY event_id;
-- a forged callback that arrives before the sid is stored is kept, then refused when the sid shows up.
SELECT darkspere.record_delivery_status('AC060other', 'SM060-H', 'undelivered', 30005) AS early_forged;
SELECT darkspere.record_delivery_status('AC060', 'SM060-H', 'sent') AS early_genuine;
SELECT pg_temp.send('+16660600009', 'SM060-H');
SELECT * FROM pg_temp.st('SM060-H');
SELECT status, provider_account, applied FROM darkspere.delivery_events WHERE message_sid = 'SM060-H' ORDER BY event_id;
-- A number the account released speaks for nobody: its old messages keep their state.
SELECT pg_temp.send('+16660600010', 'SM060-I');
DELETE FROM darkspere.numbers WHERE number = '+15550600001';
SELECT darkspere.record_delivery_status('AC060', 'SM060-I', 'delivered') AS released_number;
SELECT * FROM pg_temp.st('SM060-I');
SELECT darkspere.add_number(:acct, '+15550600001', 'AC060');

-- With From (our number that sent the message, as the worker passes it): the number and the AccountSid name the
-- tenant first, and only that tenant's messages are read; the event keeps the tenant.
SELECT pg_temp.send('+16660600011', 'SM060-J');
SELECT darkspere.record_delivery_status('AC060', 'SM060-J', 'delivered', NULL, '+15550600001') AS with_from;
SELECT * FROM pg_temp.st('SM060-J');
SELECT status, account_id = :acct AS named_tenant, applied FROM darkspere.delivery_events WHERE message_sid = 'SM060-J';
-- Another AccountSid naming this tenant's number as From speaks for nobody: refused, recorded without a tenant.
SELECT darkspere.record_delivery_status('AC060other', 'SM060-J', 'failed', 30008, '+15550600001') AS forged_from;
-- ... and naming its own number, it reaches only its own messages: this sid is none of them (pending, unapplied).
SELECT darkspere.record_delivery_status('AC060other', 'SM060-J', 'undelivered', 30005, '+15550600002') AS own_from;
SELECT * FROM pg_temp.st('SM060-J');
SELECT status, account_id = :other AS other_tenant, account_id IS NULL AS no_tenant, applied
  FROM darkspere.delivery_events WHERE message_sid = 'SM060-J' ORDER BY event_id;
-- Early callbacks with From: this tenant's is applied when the sid is stored, the other tenant's refused.
SELECT darkspere.record_delivery_status('AC060other', 'SM060-K', 'failed', 30008, '+15550600002') AS early_other;
SELECT darkspere.record_delivery_status('AC060', 'SM060-K', 'sent', NULL, '+15550600001') AS early_own;
SELECT pg_temp.send('+16660600012', 'SM060-K');
SELECT * FROM pg_temp.st('SM060-K');
SELECT status, applied FROM darkspere.delivery_events WHERE message_sid = 'SM060-K' ORDER BY event_id;
-- A From that is no number at all: refused like another account's.
SELECT darkspere.record_delivery_status('AC060', 'SM060-K', 'delivered', NULL, '+15559999999') AS unknown_from;
SELECT * FROM pg_temp.st('SM060-K');

-- Bad input.
SELECT regress.try($$SELECT darkspere.record_delivery_status('AC060', 'SM060-A', 'bounced')$$) AS unknown_status;
SELECT regress.try($$SELECT darkspere.record_delivery_status('AC060', 'SM060-A', 'Delivered')$$) AS status_is_case_sensitive;
SELECT regress.try($$SELECT darkspere.record_delivery_status('AC060', 'SM060-A', '')$$) AS empty_status;
SELECT regress.try($$SELECT darkspere.record_delivery_status('AC060', 'SM060-A', NULL)$$) AS null_status;
SELECT regress.try($$SELECT darkspere.record_delivery_status('AC060', NULL, 'sent')$$) AS null_sid;
SELECT regress.try($$SELECT darkspere.record_delivery_status('AC060', '', 'sent')$$) AS empty_sid;
SELECT regress.try($$SELECT darkspere.record_delivery_status(NULL, 'SM060-A', 'sent')$$) AS null_account;
SELECT regress.try($$SELECT darkspere.record_delivery_status('', 'SM060-A', 'sent')$$) AS empty_account;
SELECT regress.try($$SELECT darkspere.record_delivery_status('AC060', 'SM060-A', 'sent', NULL, '')$$) AS empty_from;
SELECT count(*) AS events_of_bad_calls FROM darkspere.delivery_events WHERE status IN ('bounced', 'Delivered', '') OR message_sid = '' OR provider_account = '';
