// src/ext/settings.hpp — the darkspere.* settings (GUCs, defined in module.cpp): each group's default, bounds
// and why.
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

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
// Retention of the records themselves (maintenance.cpp; docs/operations.md "Retention" says why each
// default). 0 means keep for ever. Messages and their bodies are the tenant's data and consent events are
// compliance evidence: nothing of them is deleted unless the operator chooses a period. Delivery events only
// explain how a message's status came to be (the message keeps the result): 30 days. Ended sessions are
// deleted 30 days after they ended once no message of theirs is left (so never while messages are kept for
// ever).
constexpr int kMessageRetentionDefaultS = 0;
constexpr int kBodyRetentionDefaultS = 0;
constexpr int kConsentEventRetentionDefaultS = 0;
constexpr int kDeliveryEventRetentionDefaultS = 30 * 24 * 60 * 60;
constexpr int kTraceRetentionDefaultS = 7 * 24 * 60 * 60;
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
extern int trace_retention_s;
extern int session_retention_s;
// Billing (sql/darkspere--0.1.0--0.2.0.sql, docs/billing.md): how long after a failed payment an account
// keeps its plan's limits before it is held to the free plan's (read by darkspere.effective_plan); Stripe
// events are kept this long before tick() deletes them.
constexpr int kPaymentGraceDefaultS = 7 * 24 * 60 * 60;
constexpr int kStripeEventRetentionS = 30 * 24 * 60 * 60;
extern int payment_grace_s;
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

// Health probes (probes.cpp; docs/operations.md "Agent health probes"): tick() schedules a probe of each
// active or unhealthy agent this often (0: no probes); this many failed probes in a row make an active agent
// 'unhealthy', this many passing ones make it 'active' again; check results are kept this long.
constexpr int kProbeIntervalDefaultS = 30;
constexpr int kAlertIntervalDefaultS = 10;  // alert rules evaluated by tick() at most this often
extern int alert_interval_s;
constexpr int kAutoDisableAfterDefault = 3;
constexpr int kAutoRecoverAfterDefault = 3;
constexpr int kAgentCheckRetentionDefaultS = 7 * 24 * 60 * 60;
// Agent status changes (agent_events) are an audit trail: 90 days covers a quarter of incidents.
constexpr int kAgentEventRetentionDefaultS = 90 * 24 * 60 * 60;
extern int probe_interval_s;
extern int auto_disable_after;
extern int auto_recover_after;
extern int agent_check_retention_s;
extern int agent_event_retention_s;

// Shards of the agent-load and usage counters; a backend always writes the shard of its process id.
constexpr int kCounterShards = 16;
int counter_shard();
// retention_cutoff — the time before which a retention period of period_s lets rows go: now() (the
// transaction's start) minus the period. Passed to statements as a parameter, not computed in them: Citus
// refuses non-immutable expressions in some distributed modifications.
inline TimestampTz retention_cutoff(int period_s) {
    return GetCurrentTransactionStartTimestamp() - static_cast<TimestampTz>(period_s) * USECS_PER_SEC;
}

}  // namespace darkspere
