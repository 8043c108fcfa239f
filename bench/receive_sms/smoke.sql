-- bench/receive_sms/smoke.sql — sanity check after setup or after a change to src/ext: every benchmark call must
-- route (not be rate-limited, over quota, queued or an unknown number). Fails (ON_ERROR_STOP) otherwise.
\set ON_ERROR_STOP on
DO $$
DECLARE r record;
BEGIN
    SELECT * INTO r FROM darkspere.receive_sms('ACbench03', '+15551000003', '+16660000042', 'smoke',
                                               'SMsmoke' || nextval('bench.sid'));
    IF r.disposition <> 'routed' OR r.agent_id IS NULL THEN RAISE EXCEPTION 'spread smoke: %', r; END IF;
    SELECT * INTO r FROM darkspere.receive_sms('ACbenchhot', '+15552000001', '+16660000042', 'smoke',
                                               'SMsmoke' || nextval('bench.sid'));
    IF r.disposition <> 'routed' OR r.agent_id IS NULL THEN RAISE EXCEPTION 'hot smoke: %', r; END IF;
    SELECT * INTO r FROM darkspere.receive_sms('ACbenchhot', '+15552000001', '+16660000042', 'smoke',
                                               'SMsmoke' || currval('bench.sid'));
    IF r.disposition <> 'duplicate' THEN RAISE EXCEPTION 'duplicate smoke: %', r; END IF;
    RAISE NOTICE 'smoke ok';
END $$;
SELECT disposition, count(*) FROM darkspere.messages m
  CROSS JOIN LATERAL (SELECT CASE WHEN m.status IN ('routed') THEN 'routed' ELSE m.status END AS disposition) d
 WHERE m.direction = 'in' GROUP BY 1 ORDER BY 1;
