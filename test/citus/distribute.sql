-- test/citus/distribute.sql — lays the darkspere schema out on the Citus cluster the tests start (test/citus/run,
-- test/citus/nodes for the e2e subset): the operator's tool, darkspere.distribute(), as docs/scaling.md tells an
-- operator to run it, then its result once more to show that a second run changes nothing.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
-- :delegate (psql -v delegate=false; default true): false keeps every text through the coordinator and its one
-- queue, the layout bench/run-e2e.sh compares one queue per node with.
\if :{?delegate}
\else
\set delegate true
\endif
SELECT object, action FROM darkspere.distribute(delegate => :'delegate');
SELECT 1 / (count(*) FILTER (WHERE action NOT IN ('already placed', 'stays on the coordinator', 'already delegated',
                                                  'not delegated')
                                   AND action NOT LIKE 'group %: 0 sequences moved%') = 0)::int
  FROM darkspere.distribute(delegate => :'delegate');
