-- 020_validation — every validation error of every function raises a class-22 SQLSTATE naming the argument;
-- keyword handling (STOP / stop / " Stop " / "STOP PLEASE").
BEGIN;
SELECT plan(77);

SELECT darkspere.create_account('pgtap', 'pro', 'pgtap help') AS acct \gset
SELECT darkspere.add_number(:acct, '+15559200001', 'ACtap');
SELECT agent_id AS agent FROM darkspere.register_agent(:acct, 'bot', 'https://agent.example/tap', 'http', 100) \gset

-- create_account
SELECT throws_ok($$SELECT darkspere.create_account(NULL)$$, '22004', 'name must not be null', 'create_account: NULL name');
SELECT throws_ok($$SELECT darkspere.create_account('')$$, '22023', 'name must not be empty', 'create_account: empty name');
SELECT throws_ok($$SELECT darkspere.create_account('x', NULL)$$, '22004', 'plan must not be null', 'create_account: NULL plan');
SELECT throws_ok($$SELECT darkspere.create_account('x', 'gold')$$, '42704', 'unknown plan: "gold"', 'create_account: unknown plan');
-- add_number
SELECT throws_ok($$SELECT darkspere.add_number(NULL, '+15559200002')$$, '22004', 'account_id must not be null', 'add_number: NULL account');
SELECT throws_ok(format($$SELECT darkspere.add_number(%s, NULL)$$, :acct), '22004', 'number must not be null', 'add_number: NULL number');
SELECT throws_ok(format($$SELECT darkspere.add_number(%s, '5559200002', 'ACtap')$$, :acct), '22023', 'invalid E.164 number for number: "5559200002"', 'add_number: not E.164');
SELECT throws_ok(format($$SELECT darkspere.add_number(%s, '+15559200002', '')$$, :acct), '22023', 'provider_account must not be empty', 'add_number: empty provider_account');
SELECT throws_ok($$SELECT darkspere.add_number(-1, '+15559200002', 'ACtap')$$, '42704', 'account -1 does not exist', 'add_number: unknown account');
SELECT throws_ok(format($$SELECT darkspere.add_number(%s, '+15559200001', 'ACtap')$$, :acct), '23505', NULL, 'add_number: number taken');
SELECT throws_ok(format($$SELECT darkspere.add_number(%s, '+15559200002')$$, :acct), '22004', 'provider_account must not be null', 'add_number: no provider_account');
SELECT throws_ok(format($$SELECT darkspere.add_number(%s, '+15559200002', 'SK1')$$, :acct), '22023', 'invalid Twilio AccountSid for provider_account: "SK1"', 'add_number: provider_account not an AccountSid');
SELECT throws_ok($$SELECT darkspere.receive_sms(NULL, '+15559200001', '+1666', 'x', 'SMtap')$$, '22004', 'provider_account must not be null', 'receive_sms: NULL provider_account');
-- register_agent
SELECT throws_ok($$SELECT darkspere.register_agent(NULL, 'a', 'https://a/')$$, '22004', 'account_id must not be null', 'register_agent: NULL account');
SELECT throws_ok(format($$SELECT darkspere.register_agent(%s, NULL, 'https://a/')$$, :acct), '22004', 'name must not be null', 'register_agent: NULL name');
SELECT throws_ok(format($$SELECT darkspere.register_agent(%s, '', 'https://a/')$$, :acct), '22023', 'name must not be empty', 'register_agent: empty name');
SELECT throws_ok(format($$SELECT darkspere.register_agent(%s, 'a', NULL)$$, :acct), '22004', 'endpoint must not be null', 'register_agent: NULL endpoint');
SELECT throws_ok(format($$SELECT darkspere.register_agent(%s, 'a', 'ftp://a/')$$, :acct), '22023', 'invalid endpoint: "ftp://a/"', 'register_agent: bad endpoint');
SELECT throws_ok(format($$SELECT darkspere.register_agent(%s, 'a', 'https://a/', NULL)$$, :acct), '22004', 'protocol must not be null', 'register_agent: NULL protocol');
SELECT throws_ok(format($$SELECT darkspere.register_agent(%s, 'a', 'https://a/', 'grpc')$$, :acct), '22023', 'invalid protocol: "grpc"', 'register_agent: bad protocol');
SELECT throws_ok(format($$SELECT darkspere.register_agent(%s, 'a', 'https://a/', 'http', NULL)$$, :acct), '22004', 'capacity must not be null', 'register_agent: NULL capacity');
SELECT throws_ok(format($$SELECT darkspere.register_agent(%s, 'a', 'https://a/', 'http', 0)$$, :acct), '22023', 'capacity must be positive: 0', 'register_agent: zero capacity');
SELECT throws_ok($$SELECT darkspere.register_agent(-1, 'a', 'https://a/')$$, '42704', 'account -1 does not exist', 'register_agent: unknown account');
-- set_agent_status
SELECT throws_ok($$SELECT darkspere.set_agent_status(NULL, 'active')$$, '22004', 'agent_id must not be null', 'set_agent_status: NULL agent');
SELECT throws_ok(format($$SELECT darkspere.set_agent_status(%s, NULL)$$, :agent), '22004', 'status must not be null', 'set_agent_status: NULL status');
SELECT throws_ok(format($$SELECT darkspere.set_agent_status(%s, 'paused')$$, :agent), '22023', 'invalid status: "paused"', 'set_agent_status: bad status');
SELECT throws_ok($$SELECT darkspere.set_agent_status(-1, 'active')$$, '42704', 'agent -1 does not exist', 'set_agent_status: unknown agent');
-- record_agent_result
SELECT throws_ok($$SELECT darkspere.record_agent_result(NULL, true, 1)$$, '22004', 'agent_id must not be null', 'record_agent_result: NULL agent');
SELECT throws_ok(format($$SELECT darkspere.record_agent_result(%s, NULL, 1)$$, :agent), '22004', 'ok must not be null', 'record_agent_result: NULL ok');
SELECT throws_ok(format($$SELECT darkspere.record_agent_result(%s, true, -1)$$, :agent), '22023', 'latency_ms must not be negative: -1', 'record_agent_result: negative latency');
SELECT throws_ok($$SELECT darkspere.record_agent_result(-1, true, 1)$$, '42704', 'agent -1 does not exist', 'record_agent_result: unknown agent');
-- receive_sms
SELECT throws_ok($$SELECT darkspere.receive_sms('ACtap', NULL, '+1666', 'x', 'SMtap')$$, '22004', 'to_number must not be null', 'receive_sms: NULL to_number');
SELECT throws_ok($$SELECT darkspere.receive_sms('ACtap', 'abc', '+1666', 'x', 'SMtap')$$, '22023', 'invalid E.164 number for to_number: "abc"', 'receive_sms: to_number not E.164');
SELECT throws_ok($$SELECT darkspere.receive_sms('ACtap', '+15559200001', NULL, 'x', 'SMtap')$$, '22004', 'from_number must not be null', 'receive_sms: NULL from_number');
SELECT throws_ok($$SELECT darkspere.receive_sms('ACtap', '+15559200001', '', 'x', 'SMtap')$$, '22023', 'from_number must not be empty', 'receive_sms: empty from_number');
SELECT throws_ok($$SELECT darkspere.receive_sms('ACtap', '+15559200001', '+1666', NULL, 'SMtap')$$, '22004', 'body must not be null', 'receive_sms: NULL body');
SELECT throws_ok($$SELECT darkspere.receive_sms('ACtap', '+15559200001', '+1666', repeat('x', 1601), 'SMtap')$$, '22001', 'body is 1601 characters long; the limit is 1600', 'receive_sms: body over 1,600 characters');
SELECT throws_ok($$SELECT darkspere.receive_sms('ACtap', '+15559200001', '+1666', 'x', NULL)$$, '22004', 'message_sid must not be null', 'receive_sms: NULL message_sid');
SELECT throws_ok($$SELECT darkspere.receive_sms('ACtap', '+15559200001', '+1666', 'x', '')$$, '22023', 'message_sid must not be empty', 'receive_sms: empty message_sid');
SELECT throws_ok($$SELECT darkspere.receive_sms('ACtap', '+15559200001', '+1666', 'x', 'SMtap', -1)$$, '22023', 'num_media must not be negative: -1', 'receive_sms: negative num_media');
SELECT is((SELECT count(*) FROM darkspere.messages WHERE message_sid = 'SMtap'), 0::bigint, 'receive_sms: nothing stored by failed calls');
-- get_or_create_session / history
SELECT throws_ok($$SELECT darkspere.get_or_create_session(NULL, '+15559200001', '+1666')$$, '22004', 'account_id must not be null', 'get_or_create_session: NULL account');
SELECT throws_ok(format($$SELECT darkspere.get_or_create_session(%s, 'x', '+1666')$$, :acct), '22023', 'invalid E.164 number for service_number: "x"', 'get_or_create_session: bad service number');
SELECT throws_ok(format($$SELECT darkspere.get_or_create_session(%s, '+15559200001', '')$$, :acct), '22023', 'phone must not be empty', 'get_or_create_session: empty phone');
SELECT throws_ok($$SELECT darkspere.get_or_create_session(-1, '+15559200001', '+1666')$$, '42704', 'account -1 does not exist', 'get_or_create_session: unknown account');
SELECT throws_ok($$SELECT darkspere.history(NULL)$$, '22004', 'session_id must not be null', 'history: NULL session');
SELECT throws_ok($$SELECT darkspere.history(-1)$$, '42704', 'session -1 does not exist', 'history: unknown session');
SELECT throws_ok($$SELECT darkspere.history(1, -1)$$, '22023', 'max_messages must not be negative: -1', 'history: negative max_messages');
-- queue
SELECT throws_ok($$SELECT darkspere.claim_jobs(NULL)$$, '22004', 'worker must not be null', 'claim_jobs: NULL worker');
SELECT throws_ok($$SELECT darkspere.claim_jobs('')$$, '22023', 'worker must not be empty', 'claim_jobs: empty worker');
SELECT throws_ok($$SELECT darkspere.claim_jobs('w', -1)$$, '22023', 'max_jobs must be between 0 and 10000: -1', 'claim_jobs: negative max_jobs');
SELECT throws_ok($$SELECT darkspere.claim_jobs('w', 1, '0 s')$$, '22023', 'lease must be between 0 and 24 hours', 'claim_jobs: zero lease');
SELECT throws_ok($$SELECT darkspere.claim_jobs('w', 1, NULL)$$, '22004', 'lease must not be null', 'claim_jobs: NULL lease');
SELECT throws_ok($$SELECT darkspere.complete_job(NULL, 1)$$, '22004', 'job_id must not be null', 'complete_job: NULL job');
SELECT throws_ok($$SELECT darkspere.complete_job(1, 1, '[]')$$, '22023', 'result must be a jsonb object', 'complete_job: result not an object');
SELECT throws_ok($$SELECT darkspere.fail_job(1, NULL, 'x')$$, '22004', 'attempt must not be null', 'fail_job: NULL attempt');
SELECT throws_ok($$SELECT darkspere.requeue_dead_job(NULL)$$, '22004', 'job_id must not be null', 'requeue_dead_job: NULL job');
-- delivery, limits, usage, signatures
SELECT throws_ok($$SELECT darkspere.record_delivery_status('AC1', 'SM1', 'bounced')$$, '22023', 'invalid delivery status: "bounced"', 'record_delivery_status: unknown status');
SELECT throws_ok($$SELECT darkspere.record_delivery_status('AC1', '', 'sent')$$, '22023', 'message_sid must not be empty', 'record_delivery_status: empty sid');
SELECT throws_ok($$SELECT darkspere.record_delivery_status('AC1', 'SM1', 'sent', NULL, '')$$, '22023', 'from_number must not be empty', 'record_delivery_status: empty From');
SELECT throws_ok($$SELECT darkspere.rate_limit('nope', 'x')$$, '42704', 'unknown rate limit scope: "nope"', 'rate_limit: unknown scope');
SELECT throws_ok($$SELECT darkspere.rate_limit('ip', '')$$, '22023', 'subject must not be empty', 'rate_limit: empty subject');
SELECT throws_ok($$SELECT darkspere.rate_limit('ip', 'x', 0)$$, '22023', 'cost must be positive: 0', 'rate_limit: zero cost');
SELECT throws_ok($$SELECT darkspere.usage(-1)$$, '42704', 'account -1 does not exist', 'usage: unknown account');
SELECT throws_ok($$SELECT darkspere.record_provider_opt_out('+15559299999', '+1666')$$, '42704', 'no account has service number +15559299999', 'record_provider_opt_out: unknown number');
SELECT throws_ok($$SELECT darkspere.rotate_agent_secret(-1)$$, '42704', 'agent -1 does not exist', 'rotate_agent_secret: unknown agent');
SELECT throws_ok($$SELECT darkspere.twilio_signature('', 'https://x/', '{}')$$, '22023', 'auth_token must not be empty', 'twilio_signature: empty token');
SELECT throws_ok($$SELECT darkspere.twilio_signature('t', 'https://x/', '[]')$$, '22023', 'params must be a jsonb object', 'twilio_signature: params not an object');
SELECT throws_ok($$SELECT darkspere.stripe_signature_valid('s', 'p', 'h', -1)$$, '22023', 'tolerance_s must not be negative: -1', 'stripe_signature_valid: negative tolerance');

-- Keywords: the whole body, one word, any case, surrounding whitespace ignored.
SELECT results_eq(
    $$SELECT (darkspere.receive_sms('ACtap', '+15559200001', '+1666920010' || i, b, 'SMtap-kw-' || i)).disposition
        FROM unnest(ARRAY['STOP', 'stop', ' Stop ', 'STOP PLEASE']) WITH ORDINALITY k(b, i) ORDER BY i$$,
    ARRAY['opted_out', 'opted_out', 'opted_out', 'routed'],
    'STOP / stop / " Stop " opt out; "STOP PLEASE" is a normal message (each from its own phone)');
SELECT results_eq(
    $$SELECT (darkspere.receive_sms('ACtap', '+15559200001', '+16669200002', b, 'SMtap-kw2-' || i)).disposition
        FROM unnest(ARRAY['hello', 'STOP', 'still there?', E'start\n', 'back', 'Help', 'INFO please']) WITH ORDINALITY k(b, i) ORDER BY i$$,
    ARRAY['routed', 'opted_out', 'opted_out', 'opted_in', 'routed', 'help', 'routed'],
    'a conversation through opt-out, opt-in and help');
SELECT results_eq(
    $$SELECT (darkspere.receive_sms('ACtap', '+15559200001', '+16669200003', b, 'SMtap-kw3-' || i)).reply
        FROM unnest(ARRAY['HELP', 'STOP', 'HELP']) WITH ORDINALITY k(b, i) ORDER BY i$$,
    ARRAY['pgtap help', NULL, NULL],
    'HELP answers with the help text, but not once the phone opted out');
SELECT is((SELECT count(*) FROM darkspere.opt_outs WHERE phone LIKE '+166692001%'), 3::bigint, 'three phones opted out');
SELECT is((SELECT array_agg(m.body) FROM darkspere.jobs j JOIN darkspere.messages m USING (message_id) WHERE m.phone LIKE '+166692001%'),
          ARRAY['STOP PLEASE'], 'only "STOP PLEASE" reached an agent');
SELECT lives_ok($$SELECT darkspere.receive_sms('ACtap', '+15559200001', '+16669200101', 'STOP', 'SMtap-kw-again')$$, 'STOP again is fine');
SELECT is((SELECT count(*) FROM darkspere.opt_outs WHERE phone = '+16669200101'), 1::bigint, 'one opt-out row however often STOP is sent');
SELECT is((SELECT array_agg(action ORDER BY event_id) FROM darkspere.consent_events WHERE phone = '+16669200002'),
          ARRAY['opt_out', 'opt_in', 'help'], 'consent events record opt-out, opt-in and help');

SELECT * FROM finish();
ROLLBACK;
