-- bench/receive_sms/delegated_floor.sql — the least a delegated call can cost: an empty function keyed by
-- account (bench_call_floor, which bench/run-citus.sh registers with create_distributed_function like
-- receive_sms_for), called with the same account spread as spread_delegated.sql. Its latency is the round trip
-- client → coordinator → the account's node and back that every delegated text pays before doing anything.
\set phone random(1, 10000)
\set acct (:phone % 20) + 1
SELECT public.bench_call_floor(:acct);
