-- bench/receive_sms/batch.sql — pgbench script: :batch inbound SMS in one receive_sms_batch call, each like
-- spread.sql's (a random one of 10,000 phones to its account's number; 20 accounts, 50 agents), as the worker
-- sends the webhooks that waited for a connection. A transaction stores :batch messages.
SELECT count(*) FROM darkspere.receive_sms_batch((
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'provider_account', 'ACbench' || lpad((p % 20 + 1)::text, 2, '0'),
               'to_number', '+1555100' || lpad((p % 20 + 1)::text, 4, '0'),
               'from_number', '+1666' || lpad(p::text, 7, '0'),
               'body', 'Hello, what are your opening hours today?',
               'message_sid', 'SMm' || :client_id || '_' || nextval('bench.sid')))
      FROM (SELECT (random() * 9999)::int + 1 AS p FROM generate_series(1, :batch)) g));
