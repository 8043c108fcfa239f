-- bench/receive_sms/path.sql — pgbench script: spread.sql's text, then its whole path as the worker drives it
-- (bench.message_path, path-setup.sql): claims of up to four ready jobs, the agent's answer to each agent call
-- (the reply stored, its send queued) and the provider's answer to each send.
\set phone random(1, 10000)
\set acct (:phone % 20) + 1
SELECT bench.message_path('ACbench' || lpad(:acct::text, 2, '0'), '+1555100' || lpad(:acct::text, 4, '0'), '+1666' || lpad(:phone::text, 7, '0'), 'SMb' || :client_id || '_' || nextval('bench.sid'), 'bench-' || :client_id);
