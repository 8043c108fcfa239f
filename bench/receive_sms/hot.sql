-- bench/receive_sms/hot.sql — pgbench script: one inbound SMS from a random one of 10,000 phones to the single
-- hot number (one account, one number, 5 agents). MessageSid unique per transaction.
\set phone random(1, 10000)
SELECT * FROM darkspere.receive_sms('ACbenchhot', '+15552000001', '+1666' || lpad(:phone::text, 7, '0'), 'Hello, what are your opening hours today?', 'SMh' || :client_id || '_' || nextval('bench.sid'));
