-- sql/darkspere--0.1.0.sql — install script of the darkspere extension, version 0.1.0.
--
-- Glossary
--   account   a tenant: owns service numbers, agents, sessions, usage
--   session   one conversation: (account, service number, end-user phone) bound to one agent; expires when idle
--   job       durable unit of outbound work for darkspere-worker (agent_call, sms_send, …)
--   attempt   one claim of a job; acks are fenced by (job_id, attempt)
--   lease     how long a claimed job belongs to its worker before tick() makes it claimable again
--
-- Decisions live in C++ (src/ext/*.cpp); this script declares tables, seeds and the SQL surface.
\echo Use "CREATE EXTENSION darkspere" to load this file. \quit

------------------------------------------------------------------------------------------------------------------
-- Plans and accounts
------------------------------------------------------------------------------------------------------------------

-- Money is integer cents. NULL included amounts and limits mean "unlimited".
CREATE TABLE darkspere.plans (
    plan                    text PRIMARY KEY,
    monthly_cents           bigint NOT NULL CHECK (monthly_cents >= 0),
    sms_in_included         bigint CHECK (sms_in_included >= 0),
    sms_out_included        bigint CHECK (sms_out_included >= 0),
    agent_messages_included bigint CHECK (agent_messages_included >= 0),
    max_agents              int CHECK (max_agents >= 0),
    max_numbers             int CHECK (max_numbers >= 0),
    hard_cap                boolean NOT NULL,
    sms_overage_cents       int NOT NULL DEFAULT 0 CHECK (sms_overage_cents >= 0),  -- per SMS segment
    agent_overage_cents     int NOT NULL DEFAULT 0 CHECK (agent_overage_cents >= 0), -- per agent message
    is_seed                 boolean NOT NULL DEFAULT false
);
INSERT INTO darkspere.plans VALUES
    ('free',          0,  100,   50,   500,    1,    1, true,  0, 0, true),
    ('pro',        2900, 5000, 2000, 10000,    5,   10, false, 5, 1, true),
    ('enterprise', 49900, NULL, NULL,  NULL, NULL, NULL, false, 0, 0, true);
SELECT pg_catalog.pg_extension_config_dump('darkspere.plans', 'WHERE NOT is_seed');

CREATE TABLE darkspere.accounts (
    account_id         bigserial PRIMARY KEY,
    name               text NOT NULL CHECK (name <> ''),
    plan               text NOT NULL REFERENCES darkspere.plans,
    help_text          text,      -- reply to HELP / INFO
    opt_out_text       text,      -- reply to STOP and friends
    opt_in_text        text,      -- reply to START / YES / UNSTOP
    fallback_text      text,      -- sent when no agent could answer
    stripe_customer_id text,
    created_at         timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('darkspere.accounts', '');
SELECT pg_catalog.pg_extension_config_dump('darkspere.accounts_account_id_seq', '');

-- A service number receives SMS for exactly one account; provider_account is the Twilio AccountSid owning it.
CREATE TABLE darkspere.numbers (
    account_id       bigint NOT NULL REFERENCES darkspere.accounts ON DELETE CASCADE,
    number           text NOT NULL UNIQUE,
    provider_account text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, number)
);
SELECT pg_catalog.pg_extension_config_dump('darkspere.numbers', '');

------------------------------------------------------------------------------------------------------------------
-- Agents and their health
------------------------------------------------------------------------------------------------------------------

CREATE TABLE darkspere.agents (
    account_id           bigint NOT NULL REFERENCES darkspere.accounts ON DELETE CASCADE,
    agent_id             bigserial PRIMARY KEY,
    name                 text NOT NULL CHECK (name <> ''),
    endpoint             text NOT NULL,
    protocol             text NOT NULL CHECK (protocol IN ('http', 'mcp')),
    tool_name            text NOT NULL DEFAULT 'chat',
    capacity             int NOT NULL CHECK (capacity > 0),   -- agent calls in flight at once
    status               text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'maintenance', 'disabled')),
    api_key_hash         bytea NOT NULL,                      -- SHA-256 of the key; the key itself is never stored
    -- Health: bit i of results_mask is 1 when the i-th most recent call failed (bit 0 = newest).
    results_mask         bigint NOT NULL DEFAULT 0,
    results_count        int NOT NULL DEFAULT 0 CHECK (results_count BETWEEN 0 AND 64),
    latency_ms           int,                                 -- moving average of successful calls
    consecutive_failures int NOT NULL DEFAULT 0,
    health_score         int NOT NULL DEFAULT 100 CHECK (health_score BETWEEN 0 AND 100),
    circuit              text NOT NULL DEFAULT 'closed' CHECK (circuit IN ('closed', 'open', 'half_open')),
    circuit_until        timestamptz,                         -- open: end of cool-down; half_open: trial deadline
    last_result_at       timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name)
);
SELECT pg_catalog.pg_extension_config_dump('darkspere.agents', '');
SELECT pg_catalog.pg_extension_config_dump('darkspere.agents_agent_id_seq', '');

-- In-flight agent calls per agent, split over shards so concurrent routing never queues on one row lock.
-- An agent's load is the sum of its shards; a shard may go negative (decremented by another backend).
CREATE TABLE darkspere.agent_load (
    agent_id  bigint NOT NULL REFERENCES darkspere.agents ON DELETE CASCADE,
    shard     smallint NOT NULL,
    in_flight int NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, shard)
) WITH (fillfactor = 50);
SELECT pg_catalog.pg_extension_config_dump('darkspere.agent_load', '');

------------------------------------------------------------------------------------------------------------------
-- Sessions and messages
------------------------------------------------------------------------------------------------------------------

CREATE TABLE darkspere.sessions (
    account_id       bigint NOT NULL REFERENCES darkspere.accounts ON DELETE CASCADE,
    session_id       bigserial PRIMARY KEY,
    service_number   text NOT NULL,
    phone            text NOT NULL,
    agent_id         bigint REFERENCES darkspere.agents ON DELETE SET NULL,
    state            text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'expired', 'closed')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_activity_at timestamptz NOT NULL DEFAULT now(),
    ended_at         timestamptz
);
-- At most one active session per (account, service number, phone): the arbiter of get_or_create_session.
CREATE UNIQUE INDEX sessions_one_active ON darkspere.sessions (account_id, service_number, phone)
    WHERE state = 'active';
CREATE INDEX sessions_idle ON darkspere.sessions (last_activity_at) WHERE state = 'active';
SELECT pg_catalog.pg_extension_config_dump('darkspere.sessions', '');
SELECT pg_catalog.pg_extension_config_dump('darkspere.sessions_session_id_seq', '');

-- Inbound status: routed | waiting (no agent yet) → answered | failed; suppressed (opted out), keyword.
-- Outbound status: pending → the provider's status (queued, sent, delivered, …); suppressed; failed.
-- Outbound status: pending → sent → delivered | undelivered | failed; suppressed (opted out), canceled.
CREATE TABLE darkspere.messages (
    account_id     bigint NOT NULL REFERENCES darkspere.accounts ON DELETE CASCADE,
    message_id     bigserial PRIMARY KEY,
    session_id     bigint REFERENCES darkspere.sessions ON DELETE CASCADE,
    direction      text NOT NULL CHECK (direction IN ('in', 'out')),
    service_number text NOT NULL,
    phone          text NOT NULL,
    body           text NOT NULL,
    status         text NOT NULL,
    delivery_rank  smallint NOT NULL DEFAULT 0,   -- monotonic rank of the provider status (twilio.md §4)
    message_sid    text UNIQUE,                   -- Twilio MessageSid (inbound idempotency key; outbound sid)
    num_media      int NOT NULL DEFAULT 0,
    encoding       text,
    segments       int,
    agent_id       bigint,
    reply_to       bigint,
    request_id     text,
    error_code     int,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_session ON darkspere.messages (session_id, message_id);
-- Inbound messages waiting for an eligible agent (disposition 'queued'), routed by tick() in order.
CREATE INDEX messages_waiting ON darkspere.messages (session_id, message_id) WHERE status = 'waiting';
SELECT pg_catalog.pg_extension_config_dump('darkspere.messages', '');
SELECT pg_catalog.pg_extension_config_dump('darkspere.messages_message_id_seq', '');

-- Every provider status callback, applied or not (callbacks arrive out of order, twice, or before the sid).
CREATE TABLE darkspere.delivery_events (
    event_id    bigserial PRIMARY KEY,
    message_sid text NOT NULL,
    status      text NOT NULL,
    error_code  int,
    applied     boolean NOT NULL DEFAULT false,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX delivery_events_sid ON darkspere.delivery_events (message_sid);
SELECT pg_catalog.pg_extension_config_dump('darkspere.delivery_events', '');
SELECT pg_catalog.pg_extension_config_dump('darkspere.delivery_events_event_id_seq', '');

------------------------------------------------------------------------------------------------------------------
-- Compliance: opt-outs and the consent log
------------------------------------------------------------------------------------------------------------------

CREATE TABLE darkspere.opt_outs (
    account_id     bigint NOT NULL REFERENCES darkspere.accounts ON DELETE CASCADE,
    service_number text NOT NULL,
    phone          text NOT NULL,
    opted_out_at   timestamptz NOT NULL DEFAULT now(),
    source         text NOT NULL,   -- 'keyword' or 'provider' (Twilio error 21610)
    PRIMARY KEY (account_id, service_number, phone)
);
SELECT pg_catalog.pg_extension_config_dump('darkspere.opt_outs', '');

-- Consent evidence: who changed consent, when, how.
CREATE TABLE darkspere.consent_events (
    account_id     bigint NOT NULL REFERENCES darkspere.accounts ON DELETE CASCADE,
    event_id       bigserial PRIMARY KEY,
    service_number text NOT NULL,
    phone          text NOT NULL,
    action         text NOT NULL CHECK (action IN ('opt_out', 'opt_in', 'help')),
    source         text NOT NULL,
    keyword        text,
    message_sid    text,
    at             timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('darkspere.consent_events', '');
SELECT pg_catalog.pg_extension_config_dump('darkspere.consent_events_event_id_seq', '');

------------------------------------------------------------------------------------------------------------------
-- Rate limits
------------------------------------------------------------------------------------------------------------------

-- A rule allows max_hits per window (which starts at the first hit); the hit that exceeds it blocks the subject
-- for block_s seconds.
CREATE TABLE darkspere.rate_limit_rules (
    scope    text PRIMARY KEY,
    max_hits int NOT NULL CHECK (max_hits > 0),
    window_s int NOT NULL CHECK (window_s > 0),
    block_s  int NOT NULL CHECK (block_s >= 0),
    is_seed  boolean NOT NULL DEFAULT false
);
INSERT INTO darkspere.rate_limit_rules VALUES
    ('phone',      60, 60,  300, true),   -- inbound SMS per end-user phone
    ('phone_out',  10, 60,  600, true),   -- outbound SMS per end-user phone
    ('ip',        300, 60,  900, true),   -- requests per client IP
    ('agent',     100, 60,   60, true),   -- agent API calls per agent
    ('api_key',   100, 60,   60, true);   -- agent API calls per API key
SELECT pg_catalog.pg_extension_config_dump('darkspere.rate_limit_rules', 'WHERE NOT is_seed');

CREATE TABLE darkspere.rate_limit_overrides (
    scope    text NOT NULL REFERENCES darkspere.rate_limit_rules ON DELETE CASCADE,
    subject  text NOT NULL,
    max_hits int NOT NULL CHECK (max_hits > 0),
    window_s int NOT NULL CHECK (window_s > 0),
    block_s  int NOT NULL CHECK (block_s >= 0),
    PRIMARY KEY (scope, subject)
);
SELECT pg_catalog.pg_extension_config_dump('darkspere.rate_limit_overrides', '');

-- Counters are short-lived and rebuilt by traffic: unlogged, so counting costs no WAL (a crash resets them).
CREATE UNLOGGED TABLE darkspere.rate_limit_state (
    scope         text NOT NULL,
    subject       text NOT NULL,
    window_start  timestamptz NOT NULL,
    hits          int NOT NULL,
    blocked_until timestamptz,
    PRIMARY KEY (scope, subject)
) WITH (fillfactor = 70);

------------------------------------------------------------------------------------------------------------------
-- Usage
------------------------------------------------------------------------------------------------------------------

-- Usage per account, calendar month and metric, split over shards so one busy account never serialises on a
-- counter row. A metric's usage is the sum of its shards.
CREATE TABLE darkspere.usage_counters (
    account_id bigint NOT NULL REFERENCES darkspere.accounts ON DELETE CASCADE,
    period     date NOT NULL,    -- first day of the calendar month (UTC)
    metric     text NOT NULL CHECK (metric IN ('sms_in', 'sms_out', 'agent_messages')),
    shard      smallint NOT NULL,
    used       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, period, metric, shard)
) WITH (fillfactor = 50);
SELECT pg_catalog.pg_extension_config_dump('darkspere.usage_counters', '');

------------------------------------------------------------------------------------------------------------------
-- The job queue
------------------------------------------------------------------------------------------------------------------

CREATE TABLE darkspere.jobs (
    job_id          bigserial PRIMARY KEY,
    account_id      bigint,
    kind            text NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done', 'dead')),
    attempt         int NOT NULL DEFAULT 0,        -- claims so far; the fencing token of acks
    max_attempts    int NOT NULL CHECK (max_attempts > 0),
    priority        smallint NOT NULL DEFAULT 0,   -- lower runs first
    available_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_until     timestamptz,
    claimed_by      text,
    idempotency_key text NOT NULL UNIQUE,
    ordering_key    text,                          -- jobs sharing a key run one at a time, in job_id order
    session_id      bigint,
    message_id      bigint,
    agent_id        bigint,
    tried_agents    bigint[] NOT NULL DEFAULT '{}',
    payload         jsonb NOT NULL DEFAULT '{}',
    result          jsonb,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 500,
        autovacuum_analyze_scale_factor = 0.05);
CREATE INDEX jobs_ready ON darkspere.jobs (priority, job_id) WHERE state = 'pending';
-- The partial indexes below also require their leading column to be non-null (true of every row they serve:
-- lookups are `ordering_key = …`, `lease_until < …`, `finished_at < …`). Without that, a statement that only
-- says `job_id = $1 AND state = 'running'` (every ack's fence) satisfies the predicate, and a plan cached right
-- after autovacuum, when the index looked tiny, scanned a whole partial index per ack instead of the primary
-- key: measured, twice the buffers per ack once the plan flipped (docs/benchmarks.md, section 2a).
CREATE INDEX jobs_ordering ON darkspere.jobs (ordering_key, job_id)
    WHERE ordering_key IS NOT NULL AND state IN ('pending', 'running');
CREATE INDEX jobs_leases ON darkspere.jobs (lease_until) WHERE lease_until IS NOT NULL AND state = 'running';
CREATE INDEX jobs_finished ON darkspere.jobs (finished_at) WHERE finished_at IS NOT NULL AND state IN ('done', 'dead');
SELECT pg_catalog.pg_extension_config_dump('darkspere.jobs', '');
SELECT pg_catalog.pg_extension_config_dump('darkspere.jobs_job_id_seq', '');

CREATE VIEW darkspere.queue_depth AS
    SELECT kind, state, count(*) AS jobs, min(available_at) AS oldest_available_at
    FROM darkspere.jobs WHERE state IN ('pending', 'running') GROUP BY kind, state;

CREATE VIEW darkspere.dead_jobs AS
    SELECT job_id, account_id, kind, attempt, last_error, payload, created_at, finished_at
    FROM darkspere.jobs WHERE state = 'dead';

------------------------------------------------------------------------------------------------------------------
-- Functions (C++ in darkspere.so unless noted)
------------------------------------------------------------------------------------------------------------------

CREATE FUNCTION darkspere.create_account(name text, plan text DEFAULT 'free', help_text text DEFAULT NULL)
RETURNS bigint AS 'MODULE_PATHNAME', 'darkspere_create_account' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION darkspere.add_number(account_id bigint, number text, provider_account text DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'darkspere_add_number' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION darkspere.register_agent(account_id bigint, name text, endpoint text, protocol text DEFAULT 'http',
                                         capacity int DEFAULT 10)
RETURNS TABLE (agent_id bigint, api_key text)
AS 'MODULE_PATHNAME', 'darkspere_register_agent' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION darkspere.set_agent_status(agent_id bigint, status text)
RETURNS void AS 'MODULE_PATHNAME', 'darkspere_set_agent_status' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION darkspere.record_agent_result(agent_id bigint, ok boolean, latency_ms int)
RETURNS void AS 'MODULE_PATHNAME', 'darkspere_record_agent_result' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION darkspere.receive_sms(provider_account text, to_number text, from_number text, body text,
                                      message_sid text, num_media int DEFAULT 0, request_id text DEFAULT NULL)
RETURNS TABLE (disposition text, session_id bigint, message_id bigint, agent_id bigint, reply text)
AS 'MODULE_PATHNAME', 'darkspere_receive_sms' LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1;

-- receive_sms_leased — receive_sms for the worker that received the webhook and has room for one more job:
-- when the message is routed and its agent_call may run now (no earlier turn of the session pending or running,
-- its agent not in busy_agents), the call is stored already leased to `worker` as attempt 1 and returned
-- (job_id, attempt, payload as claim_jobs would return it), so the worker calls the agent without a claim.
CREATE FUNCTION darkspere.receive_sms_leased(provider_account text, to_number text, from_number text, body text,
                                             message_sid text, num_media int, request_id text, worker text,
                                             lease interval, busy_agents bigint[] DEFAULT '{}')
RETURNS TABLE (disposition text, session_id bigint, message_id bigint, agent_id bigint, reply text,
               job_id bigint, attempt int, payload jsonb)
AS 'MODULE_PATHNAME', 'darkspere_receive_sms_leased' LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1;

-- receive_sms_batch — receive_sms for many inbound SMS in one call and one transaction (a worker under load sends
-- the webhooks that wait for a connection together). messages is a JSON array of objects with receive_sms's
-- argument names as keys (to_number, from_number, body, message_sid required; provider_account, num_media,
-- request_id optional) and take_call (boolean, default false). Returns one row per message in the order given
-- (ord from 1) with receive_sms_leased's columns: with a worker, a message whose take_call is true may have its
-- agent_call leased to it, unless its agent is in busy_agents. Each message is decided exactly as receive_sms
-- would; they are processed by phone and service number (so concurrent batches lock conversations in one
-- order), one conversation's messages in the order given. Any error aborts the whole call.
CREATE FUNCTION darkspere.receive_sms_batch(messages jsonb, worker text DEFAULT NULL, lease interval DEFAULT NULL,
                                            busy_agents bigint[] DEFAULT '{}')
RETURNS TABLE (ord int, disposition text, session_id bigint, message_id bigint, agent_id bigint, reply text,
               job_id bigint, attempt int, payload jsonb)
AS 'MODULE_PATHNAME', 'darkspere_receive_sms_batch' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION darkspere.get_or_create_session(account_id bigint, service_number text, phone text)
RETURNS darkspere.sessions
AS 'MODULE_PATHNAME', 'darkspere_get_or_create_session' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- history — the conversation of a session, oldest first: the last max_messages turns.
CREATE FUNCTION darkspere.history(session_id bigint, max_messages int DEFAULT 10)
RETURNS TABLE (direction text, body text, created_at timestamptz)
AS 'MODULE_PATHNAME', 'darkspere_history' LANGUAGE C STABLE PARALLEL SAFE;

CREATE FUNCTION darkspere.claim_jobs(worker text, max_jobs int DEFAULT 50, lease interval DEFAULT '2 minutes')
RETURNS TABLE (job_id bigint, attempt int, kind text, payload jsonb)
AS 'MODULE_PATHNAME', 'darkspere_claim_jobs' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- The same, passing over agent_call jobs of busy_agents: a worker whose calls to one slow agent fill its share
-- of in-flight slots keeps claiming everything else, so slow agents never hold up fast ones.
CREATE FUNCTION darkspere.claim_jobs(worker text, max_jobs int, lease interval, busy_agents bigint[])
RETURNS TABLE (job_id bigint, attempt int, kind text, payload jsonb)
AS 'MODULE_PATHNAME', 'darkspere_claim_jobs' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION darkspere.complete_job(job_id bigint, attempt int, result jsonb DEFAULT '{}')
RETURNS boolean AS 'MODULE_PATHNAME', 'darkspere_complete_job' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION darkspere.fail_job(job_id bigint, attempt int, error text, retryable boolean DEFAULT true)
RETURNS boolean AS 'MODULE_PATHNAME', 'darkspere_fail_job' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- ack_jobs — many acks in one call, each exactly as complete_job / fail_job: acks is a JSON array of
-- {job_id, attempt, complete, result} / {job_id, attempt, complete: false, error, retryable}. Returns one row
-- per ack in order (ord, accepted) and, when handoff_max > 0, up to handoff_max sms_send jobs the acks created
-- that may run now, already leased to `worker` as attempt 1 (job_id, attempt, kind, payload; ord NULL): the
-- worker runs them as if it had claimed them. Usage, agent load and health updates of the batch are written
-- once per key at its end.
CREATE FUNCTION darkspere.ack_jobs(acks jsonb, worker text DEFAULT NULL, lease interval DEFAULT NULL,
                                   handoff_max int DEFAULT 0)
RETURNS TABLE (ord int, accepted boolean, job_id bigint, attempt int, kind text, payload jsonb)
AS 'MODULE_PATHNAME', 'darkspere_ack_jobs' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION darkspere.requeue_dead_job(job_id bigint)
RETURNS boolean AS 'MODULE_PATHNAME', 'darkspere_requeue_dead_job' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION darkspere.record_delivery_status(message_sid text, status text, error_code int DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'darkspere_record_delivery_status' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION darkspere.record_provider_opt_out(service_number text, phone text)
RETURNS void AS 'MODULE_PATHNAME', 'darkspere_record_provider_opt_out' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION darkspere.rate_limit(scope text, subject text, cost int DEFAULT 1)
RETURNS boolean AS 'MODULE_PATHNAME', 'darkspere_rate_limit' LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION darkspere.usage(account_id bigint)
RETURNS TABLE (metric text, used bigint, included bigint, overage bigint, overage_cents bigint)
AS 'MODULE_PATHNAME', 'darkspere_usage' LANGUAGE C STABLE PARALLEL SAFE;

CREATE FUNCTION darkspere.sms_segments(body text)
RETURNS TABLE (encoding text, segments int, units int)
AS 'MODULE_PATHNAME', 'darkspere_sms_segments' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION darkspere.twilio_signature(auth_token text, url text, params jsonb)
RETURNS text AS 'MODULE_PATHNAME', 'darkspere_twilio_signature' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION darkspere.twilio_signature_valid(auth_token text, url text, params jsonb, signature text)
RETURNS boolean AS 'MODULE_PATHNAME', 'darkspere_twilio_signature_valid' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION darkspere.stripe_signature_valid(secret text, payload text, header text, tolerance_s int DEFAULT 300,
                                                 at timestamptz DEFAULT now())
RETURNS boolean AS 'MODULE_PATHNAME', 'darkspere_stripe_signature_valid' LANGUAGE C STABLE PARALLEL SAFE;

CREATE FUNCTION darkspere.tick()
RETURNS jsonb AS 'MODULE_PATHNAME', 'darkspere_tick' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Function bodies with secrets-bearing or tenant-wide effects are for the DarkSpere roles only.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA darkspere FROM PUBLIC;
GRANT EXECUTE ON FUNCTION darkspere.sms_segments(text), darkspere.twilio_signature(text, text, jsonb),
    darkspere.twilio_signature_valid(text, text, jsonb, text),
    darkspere.stripe_signature_valid(text, text, text, int, timestamptz) TO PUBLIC;
