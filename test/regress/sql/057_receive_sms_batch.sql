-- 057_receive_sms_batch — many inbound SMS in one call and one transaction: each message decided exactly as
-- receive_sms would, processed by phone (so concurrent batches lock conversations in one order) but answered in
-- the order given, usage and agent load written once, and, with a worker, the calls of the messages it has room
-- for (take_call) handed to it already leased as receive_sms_leased does. Any error aborts the whole call.
-- Errors are printed as "SQLSTATE: message" by regress.try (000_setup.sql).
\set VERBOSITY terse

-- Other test files share this database: finish the work they left, so claims see only this file's.
SELECT regress.finish_leftover_work() \gset
\set QUIET off

-- A pro account with an opt-out text and one agent; a second account (same Twilio account) with its own agent.
SELECT darkspere.create_account('batch receive', 'pro') AS acct \gset
UPDATE darkspere.accounts SET opt_out_text = 'You are unsubscribed' WHERE account_id = :acct;
SELECT darkspere.add_number(:acct, '+15550570001', 'AC057');
SELECT agent_id AS bot FROM darkspere.register_agent(:acct, 'bot', 'https://agent.example/bot', 'http', 100) \gset
SELECT darkspere.create_account('batch receive other', 'pro') AS other \gset
SELECT darkspere.add_number(:other, '+15550570002', 'AC057');
SELECT agent_id AS other_bot FROM darkspere.register_agent(:other, 'other bot', 'https://agent.example/other', 'http', 100) \gset

-- Bad input is refused with the value named: the array itself, each element (by position, 0-based) and its
-- required keys, num_media and take_call, the worker, the lease (checked even without a worker) and the busy
-- agents. Nothing of the batch is stored.
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_batch(NULL)$$) AS null_messages;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_batch('{"to_number": "+15550570001"}')$$) AS object_not_array;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_batch('"SM057"')$$) AS scalar_not_array;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_batch('[1, 2]')$$) AS elements_not_objects;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_batch('[
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570001", "body": "hi", "message_sid": "SM057-x1"},
    {"provider_account": "AC057", "from_number": "+16660570002", "body": "hi", "message_sid": "SM057-x2"}]')$$) AS missing_to_number;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_batch('[
    {"to_number": "+15550570001", "from_number": "+16660570001", "body": "hi", "message_sid": "SM057-x1"}]')$$) AS missing_provider_account;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_batch('[
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570001", "body": null, "message_sid": "SM057-x1"}]')$$) AS null_body;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_batch('[
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570001", "body": "hi", "message_sid": "SM057-x1", "num_media": "two"}]')$$) AS num_media_not_integer;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_batch('[
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570001", "body": "hi", "message_sid": "SM057-x1", "num_media": -1}]')$$) AS negative_num_media;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_batch('[
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570001", "body": "hi", "message_sid": "SM057-x1", "take_call": "maybe"}]')$$) AS take_call_not_boolean;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_batch('[]', '', '30 s')$$) AS empty_worker;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_batch('[]', NULL, '-5 days')$$) AS bad_lease_without_worker;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_batch('[]', NULL, NULL, '{NULL}')$$) AS null_busy_agent_without_worker;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_batch('[]', 'w', NULL)$$) AS no_lease;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_batch('[]', 'w', '0 s')$$) AS zero_lease;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_batch('[]', 'w', '30 s', '{1,NULL}')$$) AS null_busy_agent;
-- A value the checks refuse is named by its element's position in the CONTEXT line. Every element is checked,
-- in the order given, before any is received: of two bad elements the first is reported.
\set VERBOSITY default
SELECT * FROM darkspere.receive_sms_batch('[
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570001", "body": "hi", "message_sid": "SM057-x1"},
    {"provider_account": "AC057", "to_number": "15550570001", "from_number": "+16660570002", "body": "hi", "message_sid": "SM057-x2"}]');
\set VERBOSITY terse
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_batch('[
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570009", "body": "hi", "message_sid": "SM057-x1", "num_media": -1},
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570001", "body": "hi", "message_sid": "SM057-x2", "num_media": "x"}]')$$)
    AS first_bad_reported;
SELECT count(*) AS stored FROM darkspere.messages WHERE message_sid LIKE 'SM057-x%';
SELECT count(*) AS sessions FROM darkspere.sessions WHERE account_id = :acct;

-- An empty array is an empty answer.
SELECT count(*) AS empty_batch FROM darkspere.receive_sms_batch('[]');
SELECT count(*) AS empty_batch_with_worker FROM darkspere.receive_sms_batch('[]', 'w-057', '30 seconds');

-- One batch of every kind of message, the phones in descending order: a first turn the worker takes (take_call),
-- a long message of another phone it does not take, the first phone's next turn, a STOP, a message to a number
-- nobody owns, Twilio's retry of the first message, a message for an agent the worker is busy with, and a first
-- turn of yet another phone the worker takes too.
SELECT used AS sms_in_before FROM darkspere.usage(:acct) WHERE metric = 'sms_in' \gset
CREATE TEMP TABLE mixed AS
SELECT * FROM darkspere.receive_sms_batch(format('[
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570019", "body": "What time is it?",
     "message_sid": "SM057-1", "request_id": "req-057-1", "take_call": true},
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570018", "body": "%s",
     "message_sid": "SM057-2", "take_call": false},
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570019", "body": "And the date?",
     "message_sid": "SM057-3", "take_call": true},
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570017", "body": "STOP",
     "message_sid": "SM057-4", "take_call": true},
    {"provider_account": "AC057", "to_number": "+15550570099", "from_number": "+16660570016", "body": "Anyone?",
     "message_sid": "SM057-5", "take_call": true},
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570019", "body": "What time is it?",
     "message_sid": "SM057-1", "request_id": "req-057-1", "take_call": true},
    {"provider_account": "AC057", "to_number": "+15550570002", "from_number": "+16660570015", "body": "Busy agent",
     "message_sid": "SM057-7", "take_call": true},
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570014", "body": "Me too",
     "message_sid": "SM057-8", "request_id": "req-057-8", "take_call": true}]', repeat('long ', 40))::jsonb,
    'w-057', '30 seconds', ARRAY[:other_bot]::bigint[]);
-- One row per message in the order given (ord from 1), each with receive_sms's answer; the two first turns taken
-- came back leased, each with its own call (attempt 1, the payload a claim would build). The retry names the
-- first message's ids and takes nothing.
SELECT ord, disposition, session_id IS NOT NULL AS has_session, message_id IS NOT NULL AS has_message,
       (SELECT name FROM darkspere.agents a WHERE a.agent_id = m.agent_id) AS agent, reply,
       job_id IS NOT NULL AS handed_off, attempt, payload->>'body' AS body, payload->>'request_id' AS request_id,
       payload->'history' AS history
  FROM mixed m ORDER BY ord;
SELECT d.message_id = f.message_id AS same_message, d.session_id = f.session_id AS same_session
  FROM mixed d, mixed f WHERE d.ord = 6 AND f.ord = 1;
-- They were stored by phone, then position, not in the order given: the last message (lowest phone) first.
SELECT ord, rank() OVER (ORDER BY message_id) AS stored_as
  FROM mixed WHERE message_id IS NOT NULL AND disposition <> 'duplicate' ORDER BY ord;
-- The jobs: the first turns taken run leased to the worker; the first phone's next turn waits behind its first
-- (one call per session at a time); the message not taken and the busy agent's wait for a claim. No job for STOP.
SELECT m.ord, j.state, j.attempt, j.claimed_by,
       j.lease_until BETWEEN now() + interval '25 s' AND clock_timestamp() + interval '30 s' AS lease_30s,
       j.job_id = m.job_id AS returned_job
  FROM mixed m JOIN darkspere.jobs j ON j.message_id = m.message_id AND j.kind = 'agent_call'
 WHERE m.disposition <> 'duplicate' ORDER BY m.ord;
SELECT count(*) AS stop_jobs FROM darkspere.jobs WHERE message_id = (SELECT message_id FROM mixed WHERE ord = 4);
-- Usage and load as the same messages one by one would give: sms_in +6 (1 + 2 segments + 1 + STOP's 1 + 1; the
-- unknown number and the retry count nothing, the busy agent's message counts for the other account), four calls
-- in flight on bot and one on the other account's agent.
SELECT used - :sms_in_before AS sms_in_added FROM darkspere.usage(:acct) WHERE metric = 'sms_in';
SELECT used AS other_sms_in FROM darkspere.usage(:other) WHERE metric = 'sms_in';
SELECT sum(in_flight) AS bot_in_flight FROM darkspere.agent_load WHERE agent_id = :bot;
SELECT sum(in_flight) AS other_in_flight FROM darkspere.agent_load WHERE agent_id = :other_bot;
-- A claim finds the two waiting calls that may run; the next turn still waits for the first.
SELECT left(payload->>'body', 10) AS body FROM darkspere.claim_jobs('w-other', 10, '30 seconds') ORDER BY 1;
-- The STOP was honoured: the phone is opted out.
SELECT count(*) AS opted_out FROM darkspere.opt_outs WHERE account_id = :acct AND phone = '+16660570017';

-- One phone's messages keep the order given even with other phones between them in the array, and whichever
-- side of them those phones sort: message ids grow in the order given.
CREATE TEMP TABLE interleaved AS
SELECT * FROM darkspere.receive_sms_batch('[
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570029", "body": "one", "message_sid": "SM057-21"},
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570028", "body": "two", "message_sid": "SM057-22"},
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570030", "body": "three", "message_sid": "SM057-23"},
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570029", "body": "four", "message_sid": "SM057-24"},
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570028", "body": "five", "message_sid": "SM057-25"},
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570029", "body": "six", "message_sid": "SM057-26"}]');
SELECT i.ord, m.phone, m.body, rank() OVER (PARTITION BY m.phone ORDER BY m.message_id) AS turn,
       rank() OVER (ORDER BY m.message_id) AS stored_as
  FROM interleaved i JOIN darkspere.messages m USING (message_id) ORDER BY i.ord;
SELECT count(DISTINCT session_id) AS sessions FROM interleaved;

-- Without a worker nothing is handed off, take_call or not: the calls wait, pending, for a claim.
CREATE TEMP TABLE unleased AS
SELECT * FROM darkspere.receive_sms_batch('[
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570041", "body": "no worker", "message_sid": "SM057-41",
     "take_call": true},
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570042", "body": "no worker either", "message_sid": "SM057-42",
     "take_call": true}]');
SELECT ord, disposition, job_id IS NULL AS not_handed_off, attempt, payload FROM unleased ORDER BY ord;
SELECT j.state, j.claimed_by FROM darkspere.jobs j JOIN unleased u USING (message_id) ORDER BY u.ord;
SELECT payload->>'body' AS body FROM darkspere.claim_jobs('w-other', 10, '30 seconds')
 WHERE kind = 'agent_call' AND payload->>'body' LIKE 'no worker%' ORDER BY 1;

-- A batch that fails while its messages are received (here a test trigger refuses the message whose phone sorts
-- last, so every other message was already received) stores none of them: no message, session or job, the usage
-- counter unchanged — and the next receive_sms outside a batch counts its usage at once (the batch's deferred
-- counters did not outlive the error).
CREATE FUNCTION pg_temp.refuse_explosive() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.body = 'explosive' THEN
        RAISE EXCEPTION 'refused by the test trigger';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_explosive BEFORE INSERT ON darkspere.messages
    FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse_explosive();
SELECT used AS sms_in_before FROM darkspere.usage(:acct) WHERE metric = 'sms_in' \gset
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_batch('[
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570053", "body": "explosive", "message_sid": "SM057-53"},
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570051", "body": "kept?", "message_sid": "SM057-51", "take_call": true},
    {"provider_account": "AC057", "to_number": "+15550570001", "from_number": "+16660570052", "body": "kept?", "message_sid": "SM057-52"}]',
    'w-057', '30 seconds')$$) AS failed_while_receiving;
DROP TRIGGER refuse_explosive ON darkspere.messages;
SELECT count(*) AS stored FROM darkspere.messages WHERE message_sid IN ('SM057-51', 'SM057-52', 'SM057-53');
SELECT count(*) AS sessions FROM darkspere.sessions WHERE phone IN ('+16660570051', '+16660570052', '+16660570053');
SELECT count(*) AS jobs FROM darkspere.jobs j JOIN darkspere.sessions s USING (session_id)
 WHERE s.phone IN ('+16660570051', '+16660570052', '+16660570053');
SELECT used - :sms_in_before AS sms_in_added FROM darkspere.usage(:acct) WHERE metric = 'sms_in';
SELECT disposition FROM darkspere.receive_sms('AC057', '+15550570001', '+16660570054', 'after the error', 'SM057-54');
SELECT used - :sms_in_before AS counted_at_once FROM darkspere.usage(:acct) WHERE metric = 'sms_in';

-- Counters a batch has not written yet still count inside it. A hard-capped plan one message below its sms_in
-- allowance: the first message (by phone) is routed, the next two are over quota — as one by one in that order.
SELECT darkspere.create_account('batch capped', 'free') AS capped \gset
SELECT darkspere.add_number(:capped, '+15550570003', 'AC057');
SELECT count(*) AS agents FROM darkspere.register_agent(:capped, 'capped bot', 'https://agent.example/capped', 'http', 10);
INSERT INTO darkspere.usage_counters (account_id, period, metric, shard, used)
VALUES (:capped, pg_catalog.date_trunc('month', now() AT TIME ZONE 'UTC')::date, 'sms_in', 0,
        (SELECT sms_in_included - 1 FROM darkspere.plans WHERE plan = 'free'));
SELECT ord, disposition FROM darkspere.receive_sms_batch('[
    {"provider_account": "AC057", "to_number": "+15550570003", "from_number": "+16660570063", "body": "third", "message_sid": "SM057-63"},
    {"provider_account": "AC057", "to_number": "+15550570003", "from_number": "+16660570061", "body": "first", "message_sid": "SM057-61"},
    {"provider_account": "AC057", "to_number": "+15550570003", "from_number": "+16660570062", "body": "second", "message_sid": "SM057-62"}]')
 ORDER BY ord;
SELECT used = (SELECT sms_in_included FROM darkspere.plans WHERE plan = 'free') AS at_the_cap
  FROM darkspere.usage(:capped) WHERE metric = 'sms_in';
-- An agent with room for two calls and three new conversations: two are routed to it, the third waits for an
-- agent ('queued'), because choosing an agent adds the batch's pending load to the stored one.
SELECT darkspere.create_account('batch small agent', 'pro') AS small \gset
SELECT darkspere.add_number(:small, '+15550570004', 'AC057');
SELECT agent_id AS small_bot FROM darkspere.register_agent(:small, 'small bot', 'https://agent.example/small', 'http', 2) \gset
SELECT ord, disposition, agent_id = :small_bot AS to_small_bot FROM darkspere.receive_sms_batch('[
    {"provider_account": "AC057", "to_number": "+15550570004", "from_number": "+16660570071", "body": "one", "message_sid": "SM057-71"},
    {"provider_account": "AC057", "to_number": "+15550570004", "from_number": "+16660570072", "body": "two", "message_sid": "SM057-72"},
    {"provider_account": "AC057", "to_number": "+15550570004", "from_number": "+16660570073", "body": "three", "message_sid": "SM057-73"}]')
 ORDER BY ord;
SELECT sum(in_flight) AS small_bot_in_flight FROM darkspere.agent_load WHERE agent_id = :small_bot;

-- At most 1,000 messages per call (every message's rows stay locked until the call commits).
SELECT regress.try(format($$SELECT count(*) FROM darkspere.receive_sms_batch(%L::jsonb)$$,
    (SELECT jsonb_agg(jsonb_build_object('provider_account', 'AC057', 'to_number', '+15550570001', 'from_number', '+16660570080', 'body', 'x',
                                         'message_sid', 'SM057-big-' || g)) FROM generate_series(1, 1001) g))) AS too_many;

UPDATE darkspere.jobs SET state = 'done', finished_at = now(), lease_until = NULL WHERE state IN ('pending', 'running');
