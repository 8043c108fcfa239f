-- 010_schema — the public SQL contract: every function with its exact argument types, the tables, volatility,
-- and who may execute what (mutating functions are not executable by PUBLIC).
BEGIN;
SELECT plan(92);

SELECT has_schema('darkspere');
SELECT has_extension('darkspere');

-- Functions of the contract, with exact argument types.
SELECT has_function('darkspere', 'create_account', ARRAY['text', 'text', 'text']);
SELECT has_function('darkspere', 'add_number', ARRAY['bigint', 'text', 'text']);
SELECT has_function('darkspere', 'register_agent', ARRAY['bigint', 'text', 'text', 'text', 'integer']);
SELECT has_function('darkspere', 'set_agent_status', ARRAY['bigint', 'text']);
SELECT has_function('darkspere', 'record_agent_result', ARRAY['bigint', 'boolean', 'integer']);
SELECT has_function('darkspere', 'receive_sms', ARRAY['text', 'text', 'text', 'text', 'text', 'integer', 'text']);
SELECT has_function('darkspere', 'get_or_create_session', ARRAY['bigint', 'text', 'text']);
SELECT has_function('darkspere', 'history', ARRAY['bigint', 'integer']);
SELECT has_function('darkspere', 'claim_jobs', ARRAY['text', 'integer', 'interval']);
SELECT has_function('darkspere', 'claim_jobs', ARRAY['text', 'integer', 'interval', 'bigint[]']);
SELECT has_function('darkspere', 'claim_jobs', ARRAY['text', 'integer', 'interval', 'bigint[]', 'bigint[]']);
SELECT has_function('darkspere', 'rotate_agent_secret', ARRAY['bigint']);
SELECT has_function('darkspere', 'complete_job', ARRAY['bigint', 'integer', 'jsonb']);
SELECT has_function('darkspere', 'fail_job', ARRAY['bigint', 'integer', 'text', 'boolean']);
SELECT has_function('darkspere', 'record_delivery_status', ARRAY['text', 'text', 'text', 'integer', 'text']);
SELECT has_function('darkspere', 'rate_limit', ARRAY['text', 'text', 'integer']);
SELECT has_function('darkspere', 'usage', ARRAY['bigint', 'date']);
SELECT has_function('darkspere', 'sms_segments', ARRAY['text']);
SELECT has_function('darkspere', 'twilio_signature', ARRAY['text', 'text', 'jsonb']);
SELECT has_function('darkspere', 'twilio_signature_valid', ARRAY['text', 'text', 'jsonb', 'text']);
SELECT has_function('darkspere', 'stripe_signature_valid', ARRAY['text', 'text', 'text', 'integer', 'timestamp with time zone']);
SELECT has_function('darkspere', 'tick', ARRAY[]::text[]);
SELECT has_function('darkspere', 'requeue_dead_job', ARRAY['bigint']);

-- Return types.
SELECT function_returns('darkspere', 'create_account', ARRAY['text', 'text', 'text'], 'bigint');
SELECT function_returns('darkspere', 'add_number', ARRAY['bigint', 'text', 'text'], 'void');
SELECT function_returns('darkspere', 'register_agent', ARRAY['bigint', 'text', 'text', 'text', 'integer'], 'setof record');
SELECT function_returns('darkspere', 'receive_sms', ARRAY['text', 'text', 'text', 'text', 'text', 'integer', 'text'], 'setof record');
SELECT function_returns('darkspere', 'get_or_create_session', ARRAY['bigint', 'text', 'text'], 'darkspere.sessions');
SELECT function_returns('darkspere', 'complete_job', ARRAY['bigint', 'integer', 'jsonb'], 'boolean');
SELECT function_returns('darkspere', 'fail_job', ARRAY['bigint', 'integer', 'text', 'boolean'], 'boolean');
SELECT function_returns('darkspere', 'rate_limit', ARRAY['text', 'text', 'integer'], 'boolean');
SELECT function_returns('darkspere', 'twilio_signature', ARRAY['text', 'text', 'jsonb'], 'text');
SELECT function_returns('darkspere', 'tick', ARRAY[]::text[], 'jsonb');
-- receive_sms's row has the contract's columns, in order.
SELECT is((SELECT array_to_string(proargnames[8:12], ',') FROM pg_proc WHERE oid = 'darkspere.receive_sms'::regproc),
          'disposition,session_id,message_id,agent_id,reply', 'receive_sms returns (disposition, session_id, message_id, agent_id, reply)');
SELECT is((SELECT array_to_string(proargnames[4:7], ',') FROM pg_proc WHERE oid = 'darkspere.claim_jobs(text,integer,interval)'::regprocedure),
          'job_id,attempt,kind,payload', 'claim_jobs returns (job_id, attempt, kind, payload)');
SELECT is((SELECT array_to_string(proargnames[6:8], ',') FROM pg_proc WHERE oid = 'darkspere.register_agent'::regproc),
          'agent_id,api_key,signing_secret', 'register_agent returns (agent_id, api_key, signing_secret)');
SELECT is((SELECT array_to_string(proargnames[3:7], ',') FROM pg_proc WHERE oid = 'darkspere.usage'::regproc),
          'metric,used,included,overage,overage_cents', 'usage returns (metric, used, included, overage, overage_cents)');

-- Volatility: pure computations are immutable, readers stable, everything that writes volatile.
SELECT volatility_is('darkspere', 'sms_segments', ARRAY['text'], 'immutable');
SELECT volatility_is('darkspere', 'twilio_signature', ARRAY['text', 'text', 'jsonb'], 'immutable');
SELECT volatility_is('darkspere', 'stripe_signature_valid', ARRAY['text', 'text', 'text', 'integer', 'timestamp with time zone'], 'stable');
SELECT volatility_is('darkspere', 'history', ARRAY['bigint', 'integer'], 'stable');
SELECT volatility_is('darkspere', 'usage', ARRAY['bigint', 'date'], 'stable');
SELECT volatility_is('darkspere', 'receive_sms', ARRAY['text', 'text', 'text', 'text', 'text', 'integer', 'text'], 'volatile');
SELECT volatility_is('darkspere', 'claim_jobs', ARRAY['text', 'integer', 'interval'], 'volatile');
SELECT volatility_is('darkspere', 'claim_jobs', ARRAY['text', 'integer', 'interval', 'bigint[]'], 'volatile');
SELECT volatility_is('darkspere', 'rate_limit', ARRAY['text', 'text', 'integer'], 'volatile');
SELECT volatility_is('darkspere', 'tick', ARRAY[]::text[], 'volatile');

-- Tables.
SELECT has_table('darkspere', t, 'table darkspere.' || t) FROM unnest(ARRAY['plans', 'accounts', 'numbers', 'agents', 'agent_load',
    'sessions', 'messages', 'delivery_events', 'opt_outs', 'consent_events', 'rate_limit_rules', 'rate_limit_overrides',
    'rate_limit_state', 'usage_counters', 'jobs']) t;
SELECT has_view('darkspere', 'queue_depth', 'view darkspere.queue_depth');
SELECT has_view('darkspere', 'dead_jobs', 'view darkspere.dead_jobs');
SELECT has_index('darkspere', 'sessions', 'sessions_one_active', 'one active session per (account, number, phone)');
SELECT col_not_null('darkspere', 'agents', 'api_key_hash', 'agents store only the API key hash');
SELECT hasnt_column('darkspere', 'agents', 'api_key', 'agents never store the API key itself');

-- Privileges: a fresh role may compute signatures and segments, but not call anything that writes or reads tenants.
CREATE ROLE darkspere_pgtap_nobody NOLOGIN;
SELECT ok(NOT has_function_privilege('darkspere_pgtap_nobody', f, 'EXECUTE'), 'PUBLIC cannot execute ' || f)
  FROM unnest(ARRAY['darkspere.create_account(text,text,text)', 'darkspere.add_number(bigint,text,text)',
                    'darkspere.register_agent(bigint,text,text,text,integer)', 'darkspere.set_agent_status(bigint,text)',
                    'darkspere.record_agent_result(bigint,boolean,integer)',
                    'darkspere.receive_sms(text,text,text,text,text,integer,text)',
                    'darkspere.get_or_create_session(bigint,text,text)', 'darkspere.history(bigint,integer)',
                    'darkspere.claim_jobs(text,integer,interval)',
                    'darkspere.claim_jobs(text,integer,interval,bigint[])', 'darkspere.complete_job(bigint,integer,jsonb)',
                    'darkspere.fail_job(bigint,integer,text,boolean)', 'darkspere.record_delivery_status(text,text,text,integer,text)',
                    'darkspere.rate_limit(text,text,integer)', 'darkspere.usage(bigint,date)', 'darkspere.tick()',
                    'darkspere.requeue_dead_job(bigint)', 'darkspere.rotate_agent_secret(bigint)',
                    'darkspere.claim_jobs(text,integer,interval,bigint[],bigint[])']) f;
SELECT ok(has_function_privilege('darkspere_pgtap_nobody', f, 'EXECUTE'), 'PUBLIC may execute ' || f)
  FROM unnest(ARRAY['darkspere.sms_segments(text)', 'darkspere.twilio_signature(text,text,jsonb)',
                    'darkspere.twilio_signature_valid(text,text,jsonb,text)',
                    'darkspere.stripe_signature_valid(text,text,text,integer,timestamp with time zone)']) f;

SELECT * FROM finish();
ROLLBACK;
