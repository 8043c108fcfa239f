-- bench/receive_sms/spread_delegated.sql — spread.sql through darkspere.receive_sms_for(account, …), which
-- darkspere.distribute() registers with create_distributed_function: Citus sends the whole call to the node that
-- holds the account's shards. Arguments must be constants for Citus to delegate a call, so the MessageSid is
-- made of the client id and a random number (no sequence).
\set phone random(1, 10000)
\set acct (:phone % 20) + 1
\set n random(1, 1000000000000)
SELECT disposition FROM darkspere.receive_sms_for(:acct, 'ACbench' || lpad(:acct::text, 2, '0'), '+1555100' || lpad(:acct::text, 4, '0'), '+1666' || lpad(:phone::text, 7, '0'), 'Hello, what are your opening hours today?', 'SMd' || :client_id || '_' || :n);
