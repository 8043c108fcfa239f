-- 000_setup — helpers every regress file uses; pg_regress runs the files in name order in one database, so this
-- file runs first (to run one file alone: `make installcheck REGRESS="000_setup 050_queue"`).
--
-- regress.try(sql) runs a statement and returns 'ok', or its error as "SQLSTATE: message" with account, agent,
-- session and job ids masked as N, so that expected output stays stable while the error is still checked.
-- regress.finish_leftover_work() finishes the jobs and waiting messages earlier files left, so that claims and
-- tick() in the next file see only that file's work.
CREATE SCHEMA regress;
CREATE FUNCTION regress.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE sql; RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '(account|agent|session|job) [0-9]+', '\1 N', 'g');
END $$;
CREATE FUNCTION regress.finish_leftover_work() RETURNS void LANGUAGE sql AS $$
    UPDATE darkspere.jobs SET state = 'done', finished_at = now(), lease_until = NULL WHERE state IN ('pending', 'running');
    UPDATE darkspere.messages SET status = 'failed' WHERE status = 'waiting';
$$;
-- Health probes (150_health_probes) are off for the other files: tick() would otherwise queue a health_probe job
-- per agent, and their claims would see it. Every later file runs in a new session of this database.
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET darkspere.probe_interval = 0', current_database()); END $$;
-- Alert rules (185_alerts) are off for the other files: tick() would otherwise fire the seed rules on their data
-- (failing agents, low health) and its report would change with the order the files run in.
UPDATE darkspere.alert_rules SET enabled = false;
-- Every tick() evaluates them (185_alerts checks each tick's effect; the default is at most every 10 s).
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET darkspere.alert_interval = 0', current_database()); END $$;
