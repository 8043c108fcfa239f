// src/ext/darkspere.hpp — what the extension's concern files offer each other.
//
// Each function here runs inside an SPI connection opened by the SQL-callable entry point and is written in
// PostgreSQL-zone style (it may raise with ereport). File per concern: sessions.cpp, routing.cpp, health.cpp,
// ratelimit.cpp, billing.cpp, keywords.cpp, queue.cpp, delivery.cpp, maintenance.cpp, notify.cpp.
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

// ---- Settings (GUCs, defined in module.cpp). Each group: default, bounds and why. ----
// Sessions end after this much inactivity; an expired session never blocks a new one.
constexpr int kSessionIdleTimeoutDefaultS = 24 * 60 * 60;
// Agents below this health score receive no new sessions (default 70, docs/architecture.md#defaults).
constexpr int kMinHealthScoreDefault = 70;
// Turns of history handed to an agent with every call.
constexpr int kHistoryTurnsDefault = 10;
// agent_call gives up (dead-letter + fallback text) after this many attempts.
constexpr int kAgentCallMaxAttemptsDefault = 3;
// sms_send retries 429/5xx/network errors with backoff this many times in all.
constexpr int kSmsSendMaxAttemptsDefault = 8;
// Finished jobs are pruned after this long; dead-lettered ones are kept longer for operators.
constexpr int kJobRetentionDefaultS = 24 * 60 * 60;
constexpr int kDeadJobRetentionDefaultS = 14 * 24 * 60 * 60;
// Retention of the records themselves (maintenance.cpp; docs/operations.md "Retention" says why each default).
// 0 means keep for ever. Messages and their bodies are the tenant's data and consent events are compliance
// evidence: nothing of them is deleted unless the operator chooses a period. Delivery events only explain how a
// message's status came to be (the message keeps the result): 30 days. Ended sessions are deleted 30 days after
// they ended once no message of theirs is left (so never while messages are kept for ever).
constexpr int kMessageRetentionDefaultS = 0;
constexpr int kBodyRetentionDefaultS = 0;
constexpr int kConsentEventRetentionDefaultS = 0;
constexpr int kDeliveryEventRetentionDefaultS = 30 * 24 * 60 * 60;
constexpr int kSessionRetentionDefaultS = 30 * 24 * 60 * 60;
// A backend sends NOTIFY darkspere at most this often: NOTIFY takes a database-wide lock at commit, so
// notifying every transaction would serialise all commits (docs/architecture.md#wake-ups).
constexpr int kNotifyIntervalDefaultMs = 100;

// A reply is cut after this many SMS segments (the rest is left out, the cut recorded on the message): what
// one agent answer may cost, and what one ack may cost the database.
constexpr int kMaxReplySegmentsDefault = 10;
constexpr int kMaxReplySegmentsLimit = 100;

extern int session_idle_timeout_s;
extern int min_health_score;
extern int history_turns;
extern int agent_call_max_attempts;
extern int sms_send_max_attempts;
extern int job_retention_s;
extern int dead_job_retention_s;
extern int message_retention_s;
extern int body_retention_s;
extern int consent_event_retention_s;
extern int delivery_event_retention_s;
extern int session_retention_s;
extern int notify_interval_ms;
// Agent signing secrets (agent_secrets.cpp): the master key file, relative to the data directory, and how
// long a rotated-out secret still signs (the worker sends both signatures meanwhile, so agents can switch
// over).
constexpr const char *kSecretKeyFileDefault = "darkspere_secret.key";
constexpr int kAgentSecretGraceDefaultS = 24 * 60 * 60;
extern char *secret_key_file;
extern int agent_secret_grace_s;
// An agent's capacity (calls in flight at once) is at most this: more would let one agent hold every slot.
constexpr int kAgentCapacityMax = 1000;
extern int max_reply_segments;

// ---- Circuit breaker and health (health.cpp) ----
constexpr int kCircuitFailureThreshold = 5;  // consecutive failures that open the circuit
constexpr int kCircuitOpenSeconds = 60;      // cool-down before a half-open trial call
constexpr int kTrialCallSeconds = 120;       // a trial call that never reports frees the slot after this
constexpr int kHealthWindow = 20;            // results that make up the uptime share
constexpr int kSmsBodyMaxChars = 1600;       // Twilio's hard limit for one message body

// Shards of the agent-load and usage counters; a backend always writes the shard of its process id.
constexpr int kCounterShards = 16;
int counter_shard();

// ---- Validation helpers (validate.cpp): raise class-22 errors that name the argument and the value. ----
char *required_text(FunctionCallInfo fcinfo, int argno, const char *argname);
char *optional_text(FunctionCallInfo fcinfo, int argno);
int64 required_int64(FunctionCallInfo fcinfo, int argno, const char *argname);
int32 required_int32(FunctionCallInfo fcinfo, int argno, const char *argname);
void require_e164(const char *value, const char *argname);
void require_non_empty(const char *value, const char *argname);
void require_account_sid(const char *value, const char *argname);  // "AC" + up to 32 letters or digits
void require_body_length(const char *body, const char *argname);
void require_one_of(const char *value, const char *const *allowed, const char *argname);
void require_lease(const Interval *lease);  // more than 0, at most 24 hours, no months or days
// raise_missing — 42704 undefined_object, "<what> <id> does not exist": the row a caller named is not there.
[[noreturn]] void raise_missing(const char *what, int64 id);

// ---- Accounts (accounts.cpp) ----
struct AccountTexts {
    char *help_text;
    char *opt_out_text;
    char *opt_in_text;
    char *fallback_text;
};
void require_account(int64 account_id);

// ---- Agent signing secrets (agent_secrets.cpp) ----
constexpr int kAgentSecretChars = 4 + 64;  // "dsk_" + hex of HMAC-SHA256
// agent_signing_secret — the secret of (agent, generation), derived from the master key (created on first
// use).
void agent_signing_secret(int64 agent_id, int32 generation, char out[kAgentSecretChars + 1]);
// agent_signing_secrets_jsonb — {"signing_secrets": [current] or [current, previous]} for an agent_call
// payload.
Datum agent_signing_secrets_jsonb(int64 agent_id, int32 generation, bool in_grace);

// ---- Sessions (sessions.cpp) ----
struct SessionRef {
    int64 session_id;
    int64 agent_id;            // 0 when the session has no agent yet
    bool agent_eligible;       // the bound agent may keep serving this session (sticky)
    bool has_queued_messages;  // earlier messages of this session wait for an agent
};
SessionRef session_get_or_create(int64 account_id, const char *service_number, const char *phone);
void session_bind_agent(int64 session_id, int64 agent_id);

// ---- Routing (routing.cpp) ----
// pick_agent — the best eligible agent of the account that is not in `exclude`, or 0 when none is.
int64 pick_agent(int64 account_id, const int64 *exclude, int nexclude);
// agent_load_add — adds delta to the agent's in-flight calls (sharded); deferred inside an ack batch.
void agent_load_add(int64 agent_id, int delta);
void agent_load_write(int64 agent_id, int delta);  // now, whatever batch is open

// ---- Health (health.cpp) ----
struct HealthResult {
    bool ok;
    int latency_ms;
    bool latency_known;
};
// health_record — one call result into the agent's score and circuit; deferred inside an ack batch.
void health_record(int64 agent_id, bool ok, int latency_ms, bool latency_known);
// health_write — applies results (oldest first) under the agent's row lock and stores the outcome once.
void health_write(int64 agent_id, const HealthResult *results, int nresults);

// ---- Rate limits (ratelimit.cpp) ----
enum class LimitVerdict { allowed, limited, blocked };
LimitVerdict rate_limit_hit(const char *scope, const char *subject, int cost, TimestampTz *blocked_until);
// Per-phone limits are per tenant: scope "phone" (inbound) and "phone_out" (outbound) count subject
// "<account_id>:<phone>", so one tenant's traffic with a phone never blocks the phone with another tenant.
// "phone_ceiling" counts the bare phone across every tenant, a separate and higher rule; "keyword_reply"
// counts "<account_id>:<phone>:<keyword>" (at most one STOP / START / HELP reply per window).
constexpr const char *kPhoneScope = "phone";
constexpr const char *kPhoneOutScope = "phone_out";
constexpr const char *kPhoneCeilingScope = "phone_ceiling";
constexpr const char *kKeywordReplyScope = "keyword_reply";
char *tenant_subject(int64 account_id, const char *phone);  // "<account_id>:<phone>", palloc'd
// phone_limit_hit — one inbound message from the phone to the account: counted by the tenant's rule and by
// the phone's ceiling in one statement (ceiling row locked first); a message either rule refuses is counted
// by neither (the refusing rule keeps its hit, as rate_limit_hit does).
LimitVerdict phone_limit_hit(int64 account_id, const char *phone);
// keyword_reply_hit — locks the phone's ceiling row (uncounted) and, when reply_due, counts a reply to the
// keyword ("opt_out", "opt_in", "help"); true when that reply may be sent.
bool keyword_reply_hit(int64 account_id, const char *phone, const char *keyword, bool reply_due);

// ---- Usage and quotas (billing.cpp) ----
// usage_add — counts usage this month; deferred inside an ack batch. metric must be a string constant.
void usage_add(int64 account_id, const char *metric, int64 amount);
void usage_write(int64 account_id, const char *metric, int64 amount);  // now, whatever batch is open
// quota_allows_inbound — false when a hard-capped plan has no room for `segments` more inbound SMS or for one
// more agent message this month.
bool quota_allows_inbound(int64 account_id, int segments);
bool quota_allows_outbound(int64 account_id, int segments);

// ---- Keywords (keywords.cpp) ----
enum class Keyword { none, opt_out, opt_in, help };
Keyword classify_keyword(const char *body);
bool is_opted_out(int64 account_id, const char *service_number, const char *phone);

// ---- SMS text (sms_sql.cpp) ----
struct Segments {
    bool ucs2;
    int segments;
    int units;
};
Segments count_sms_segments(const char *utf8);

// ---- Queue (queue.cpp) ----
// enqueue_agent_call — queues the turn's call (or hands it off, see handoff.cpp) and counts it on the agent.
int64 enqueue_agent_call(int64 account_id, int64 session_id, int64 message_id, int64 agent_id);
// ReplyChecks — what the caller already read about the recipient in this transaction, so enqueue_reply need
// not read it again: whether the phone opted out, whether the plan has a hard cap.
struct ReplyChecks {
    bool known;
    bool opted_out;
    bool hard_cap;
};
// enqueue_reply — stores an outbound reply (split into ≤1600-character messages, cut after
// darkspere.max_reply_segments SMS segments) and queues its sms_send jobs, unless the phone opted out or the
// plan cap is reached (then the message is stored as suppressed). body need not end with a NUL.
void enqueue_reply(int64 account_id, int64 session_id, int64 reply_to, const char *service_number,
                   const char *phone, const char *body, size_t body_len, int64 agent_id,
                   const char *request_id, const ReplyChecks *checks);
inline void enqueue_reply(int64 account_id, int64 session_id, int64 reply_to, const char *service_number,
                          const char *phone, const char *body, int64 agent_id, const char *request_id,
                          const ReplyChecks *checks = nullptr) {
    enqueue_reply(account_id, session_id, reply_to, service_number, phone, body, strlen(body), agent_id,
                  request_id, checks);
}
// route_message — binds a stored inbound message to an agent and queues its agent_call; returns the agent or
// 0.
int64 route_message(int64 account_id, int64 session_id, int64 message_id, int64 agent_id);

// job_complete / job_fail — the fenced acks of complete_job / fail_job: false, changing nothing, when
// (job_id, attempt) no longer holds the lease.
bool job_complete(int64 job_id, int32 attempt, Jsonb *result);
bool job_fail(int64 job_id, int32 attempt, const char *error, bool retryable);

// ---- jsonb fields (jsonb_fields.cpp) ----
JsonbValue *jsonb_key(Jsonb *object, const char *key);  // top-level key of an object; nullptr when absent
const char *jsonb_type_name(const JsonbValue *v);       // as jsonb_typeof names it
double jsonb_number(const JsonbValue *v);               // a jbvNumeric value as double
char *jsonb_text(JsonbValue *v);                        // as ->> gives it: nullptr for null or absent

// ---- Delivery (delivery.cpp) ----
void apply_pending_delivery_events(const char *message_sid);

// ---- Counter batches (counter_batch.cpp) ----
// While a batch call (ack_jobs, receive_sms_batch) runs, counter updates are summed in memory and written
// once, in key order, by batch_flush: the batch_defer_* functions return true when they took the update.
// Readers of those counters inside a batch add what is pending (agent load in pick_agent, quota room);
// pick_agent flushes first only when agent health is pending (an ack batch's failover). batch_open(items)
// starts one; batch_close() ends it — call it in PG_FINALLY, after batch_flush on success (on error, what is
// pending goes with the aborted transaction).
void batch_open(int items);
void batch_close();
bool batch_defer_usage(int64 account_id, const char *metric, int64 amount);
bool batch_defer_load(int64 agent_id, int delta);
bool batch_defer_health(int64 agent_id, const HealthResult &result);
int64 batch_pending_usage(int64 account_id, const char *metric);
bool batch_health_pending();
// batch_pending_loads — the agent load changes not written yet, as bigint[] agents and int[] deltas (empty
// arrays outside a batch), palloc'd in the current context.
void batch_pending_loads(ArrayType **agents, ArrayType **deltas);
void batch_flush();

// ---- Hand-off (handoff.cpp) ----
// While a scope is open, a new job that may run now is stored already leased to the scope's worker and
// recorded here for the SQL call to return (see handoff.cpp).
struct HandedJob {
    int64 job_id;
    int32 attempt;
    const char *kind;  // a string constant
    Datum payload;     // jsonb, copied into the scope's context
};
struct HandoffScope {
    MemoryContext context;
    Datum worker, lease;  // text, interval
    int budget;           // jobs the worker has room for
    int64 *busy;          // agents at the worker's share: their calls wait for a claim
    int nbusy;
    HandedJob *jobs;
    int njobs;
};
// require_handoff_target — the worker (text) and lease (interval) arguments of a hand-off: present and valid.
void require_handoff_target(FunctionCallInfo fcinfo, int worker_arg, int lease_arg);
void handoff_init(HandoffScope *scope, MemoryContext context, Datum worker, Datum lease, int budget,
                  ArrayType *busy_agents);
void handoff_open(HandoffScope *scope);  // then handoff_close in PG_FINALLY, whatever happens
void handoff_close();
// handoff_lease — the worker and lease for a new job (agent_id 0 for sends) while the budget lasts.
bool handoff_lease(int64 agent_id, Datum *worker, Datum *lease);
void handoff_record(int64 job_id, int32 attempt, const char *kind, Datum payload);

// ---- Wake-up (notify.cpp) ----
void notify_worker();

}  // namespace darkspere
