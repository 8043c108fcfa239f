-- bench/receive_sms/path-setup.sql — for path.sql (run by bench/ab-sql.sh after setup.sql): bench.message_path,
-- one text's whole path in SQL as the worker drives it, and no backlog (the warm-up's queued agent calls are
-- marked done, so that every round claims the jobs its own texts made).
CREATE OR REPLACE FUNCTION bench.message_path(account text, number text, phone text, sid text, worker text)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    j record;
    acked int := 0;
BEGIN
    PERFORM darkspere.receive_sms(account, number, phone, 'Hello, what are your opening hours today?', sid);
    -- Up to four ready jobs of any client: this text's agent call, and earlier texts' calls and sends.
    FOR j IN SELECT * FROM darkspere.claim_jobs(worker, 4, '1 minute') LOOP
        IF j.kind = 'agent_call' THEN
            PERFORM darkspere.complete_job(j.job_id, j.attempt,
                                           '{"reply": "We open at nine and close at six.", "latency_ms": 120}');
        ELSIF j.kind = 'sms_send' THEN
            PERFORM darkspere.complete_job(j.job_id, j.attempt, jsonb_build_object(
                'sid', 'SMo' || j.job_id, 'status', 'queued', 'segments', 1, 'latency_ms', 80));
        END IF;
        acked := acked + 1;
    END LOOP;
    RETURN acked;
END $$;
UPDATE darkspere.jobs SET state = 'done', finished_at = now() WHERE state = 'pending';
VACUUM ANALYZE darkspere.jobs;
