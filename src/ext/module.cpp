// src/ext/module.cpp — library entry: the module magic and the darkspere.* settings.
//
// No shared_preload_libraries requirement: the settings are defined when the library is first loaded by a
// backend, and values set earlier with ALTER SYSTEM / ALTER DATABASE … SET darkspere.x are picked up then.
//
// Every setting is operator policy (limits, retention, health thresholds), so only a superuser may change it
// (PGC_SUSET): a worker or admin login must not lower the health bar or the retry limits for its own session.
// Superusers still set them per database or role (ALTER DATABASE / ALTER ROLE … SET), and GRANT SET ON
// PARAMETER delegates one. Only darkspere.secret_key_file is PGC_SIGHUP (a file the server reads, set in
// postgresql.conf); the others are read per call, per backend.
#include "ext/settings.hpp"
#include "ext/version_check.hpp"

extern "C" {
PG_MODULE_MAGIC;
void _PG_init(void);
}

namespace darkspere {

int session_idle_timeout_s = kSessionIdleTimeoutDefaultS;
int min_health_score = kMinHealthScoreDefault;
int history_turns = kHistoryTurnsDefault;
int agent_call_max_attempts = kAgentCallMaxAttemptsDefault;
int sms_send_max_attempts = kSmsSendMaxAttemptsDefault;
int job_retention_s = kJobRetentionDefaultS;
int dead_job_retention_s = kDeadJobRetentionDefaultS;
int message_retention_s = kMessageRetentionDefaultS;
int body_retention_s = kBodyRetentionDefaultS;
int consent_event_retention_s = kConsentEventRetentionDefaultS;
int delivery_event_retention_s = kDeliveryEventRetentionDefaultS;
int trace_retention_s = kTraceRetentionDefaultS;
int session_retention_s = kSessionRetentionDefaultS;
int payment_grace_s = kPaymentGraceDefaultS;
int notify_interval_ms = kNotifyIntervalDefaultMs;
char *secret_key_file = nullptr;
int agent_secret_grace_s = kAgentSecretGraceDefaultS;
int max_reply_segments = kMaxReplySegmentsDefault;
int probe_interval_s = kProbeIntervalDefaultS;
int alert_interval_s = kAlertIntervalDefaultS;
int auto_disable_after = kAutoDisableAfterDefault;
int auto_recover_after = kAutoRecoverAfterDefault;
int agent_check_retention_s = kAgentCheckRetentionDefaultS;
int agent_event_retention_s = kAgentEventRetentionDefaultS;

int counter_shard() {
    return MyProcPid % kCounterShards;
}

}  // namespace darkspere

using namespace darkspere;

// The context of every darkspere.* setting (top of this file); test/pgtap/030_privileges.sql checks it.
static constexpr GucContext kPolicyContext = PGC_SUSET;

void _PG_init(void) {
    DefineCustomIntVariable("darkspere.session_idle_timeout",
                            "Seconds of inactivity after which a session ends.", nullptr,
                            &session_idle_timeout_s, kSessionIdleTimeoutDefaultS, 60, INT_MAX / 2,
                            kPolicyContext, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("darkspere.min_health_score",
                            "Agents below this health score get no new sessions.", nullptr, &min_health_score,
                            kMinHealthScoreDefault, 0, 100, kPolicyContext, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "darkspere.history_turns", "Turns of conversation history sent with each agent call.", nullptr,
        &history_turns, kHistoryTurnsDefault, 0, 100, kPolicyContext, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("darkspere.agent_call_max_attempts",
                            "Attempts before an agent call is dead-lettered.", nullptr,
                            &agent_call_max_attempts, kAgentCallMaxAttemptsDefault, 1, 100, kPolicyContext, 0,
                            nullptr, nullptr, nullptr);
    DefineCustomIntVariable("darkspere.sms_send_max_attempts",
                            "Attempts before an SMS send is dead-lettered.", nullptr, &sms_send_max_attempts,
                            kSmsSendMaxAttemptsDefault, 1, 100, kPolicyContext, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("darkspere.job_retention",
                            "Seconds finished jobs are kept before tick() prunes them.", nullptr,
                            &job_retention_s, kJobRetentionDefaultS, 0, INT_MAX / 2, kPolicyContext,
                            GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("darkspere.dead_job_retention", "Seconds dead-lettered jobs are kept.", nullptr,
                            &dead_job_retention_s, kDeadJobRetentionDefaultS, 0, INT_MAX / 2, kPolicyContext,
                            GUC_UNIT_S, nullptr, nullptr, nullptr);
    // Retention (maintenance.cpp): 0 keeps for ever. Superuser-only like every policy setting: a tenant's or
    // worker's session must not shorten what is kept as evidence.
    DefineCustomIntVariable("darkspere.message_retention",
                            "Seconds messages are kept before tick() deletes them (0: for ever).", nullptr,
                            &message_retention_s, kMessageRetentionDefaultS, 0, INT_MAX / 2, kPolicyContext,
                            GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "darkspere.body_retention",
        "Seconds message bodies are kept before tick() redacts them, keeping the rest of the "
        "message (0: for ever).",
        nullptr, &body_retention_s, kBodyRetentionDefaultS, 0, INT_MAX / 2, kPolicyContext, GUC_UNIT_S,
        nullptr, nullptr, nullptr);
    DefineCustomIntVariable("darkspere.consent_event_retention",
                            "Seconds consent events are kept before tick() deletes them (0: for ever).",
                            nullptr, &consent_event_retention_s, kConsentEventRetentionDefaultS, 0,
                            INT_MAX / 2, kPolicyContext, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "darkspere.delivery_event_retention",
        "Seconds delivery status events are kept before tick() deletes them (0: for ever).", nullptr,
        &delivery_event_retention_s, kDeliveryEventRetentionDefaultS, 0, INT_MAX / 2, kPolicyContext,
        GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("darkspere.trace_retention",
                            "Seconds message trace events are kept before tick() deletes them (0: for ever).",
                            nullptr, &trace_retention_s, kTraceRetentionDefaultS, 0, INT_MAX / 2,
                            kPolicyContext, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "darkspere.session_retention",
        "Seconds an ended session without messages is kept before tick() deletes it (0: for "
        "ever).",
        nullptr, &session_retention_s, kSessionRetentionDefaultS, 0, INT_MAX / 2, kPolicyContext, GUC_UNIT_S,
        nullptr, nullptr, nullptr);
    DefineCustomIntVariable("darkspere.payment_grace",
                            "Seconds after a failed payment before the account is held to the free plan's "
                            "limits (until paid).",
                            nullptr, &payment_grace_s, kPaymentGraceDefaultS, 0, INT_MAX / 2, kPolicyContext,
                            GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("darkspere.notify_interval",
                            "Minimum milliseconds between two NOTIFYs of one backend.", nullptr,
                            &notify_interval_ms, kNotifyIntervalDefaultMs, 0, 10000, kPolicyContext,
                            GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("darkspere.secret_key_file",
                               "File holding the master key agent signing secrets are derived from (relative "
                               "to the data directory unless absolute; created with mode 0600 when missing).",
                               nullptr, &secret_key_file, kSecretKeyFileDefault, PGC_SIGHUP, 0, nullptr,
                               nullptr, nullptr);
    DefineCustomIntVariable("darkspere.agent_secret_grace",
                            "Seconds a rotated-out agent signing secret still signs requests.", nullptr,
                            &agent_secret_grace_s, kAgentSecretGraceDefaultS, 0, INT_MAX / 2, kPolicyContext,
                            GUC_UNIT_S, nullptr, nullptr, nullptr);
    // Superuser-only: a tenant's session must not raise what a reply may cost.
    DefineCustomIntVariable(
        "darkspere.max_reply_segments",
        "SMS segments after which an agent's reply is cut (the cut is recorded on the message).", nullptr,
        &max_reply_segments, kMaxReplySegmentsDefault, 1, kMaxReplySegmentsLimit, kPolicyContext, 0, nullptr,
        nullptr, nullptr);
    // Health probes (probes.cpp): superuser-only like the health threshold they feed.
    DefineCustomIntVariable("darkspere.probe_interval",
                            "Seconds between two health probes of an agent (0: no probes).", nullptr,
                            &probe_interval_s, kProbeIntervalDefaultS, 0, 86400, kPolicyContext, GUC_UNIT_S,
                            nullptr, nullptr, nullptr);
    // Alert rules (evaluate_alerts, read with current_setting): their cost grows with the agents, so tick()
    // evaluates them at most this often.
    DefineCustomIntVariable(
        "darkspere.alert_interval",
        "Minimum seconds between two evaluations of the alert rules by tick() (0: every tick).", nullptr,
        &alert_interval_s, kAlertIntervalDefaultS, 0, 3600, kPolicyContext, GUC_UNIT_S, nullptr, nullptr,
        nullptr);
    DefineCustomIntVariable("darkspere.auto_disable_after",
                            "Failed health probes in a row after which an active agent becomes unhealthy.",
                            nullptr, &auto_disable_after, kAutoDisableAfterDefault, 1, 100, kPolicyContext, 0,
                            nullptr, nullptr, nullptr);
    DefineCustomIntVariable("darkspere.auto_recover_after",
                            "Passing health probes in a row after which an unhealthy agent is active again.",
                            nullptr, &auto_recover_after, kAutoRecoverAfterDefault, 1, 100, kPolicyContext, 0,
                            nullptr, nullptr, nullptr);
    DefineCustomIntVariable("darkspere.agent_check_retention",
                            "Seconds health probe results are kept before tick() deletes them (0: for ever).",
                            nullptr, &agent_check_retention_s, kAgentCheckRetentionDefaultS, 0, INT_MAX / 2,
                            kPolicyContext, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("darkspere.agent_event_retention",
                            "Seconds agent status changes (agent_events) are kept before tick() deletes them "
                            "(0: for ever).",
                            nullptr, &agent_event_retention_s, kAgentEventRetentionDefaultS, 0, INT_MAX / 2,
                            kPolicyContext, GUC_UNIT_S, nullptr, nullptr, nullptr);
    define_version_check_setting();
    MarkGUCPrefixReserved("darkspere");
}
