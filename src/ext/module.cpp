// src/ext/module.cpp — library entry: the module magic and the darkspere.* settings.
//
// No shared_preload_libraries requirement: the settings are defined when the library is first loaded by a
// backend, and values set earlier with ALTER SYSTEM / ALTER DATABASE … SET darkspere.x are picked up then.
#include "ext/darkspere.hpp"
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
int notify_interval_ms = kNotifyIntervalDefaultMs;

int counter_shard() {
    return MyProcPid % kCounterShards;
}

}  // namespace darkspere

using namespace darkspere;

void _PG_init(void) {
    DefineCustomIntVariable("darkspere.session_idle_timeout",
                            "Seconds of inactivity after which a session ends.", nullptr,
                            &session_idle_timeout_s, kSessionIdleTimeoutDefaultS, 60, INT_MAX / 2,
                            PGC_USERSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("darkspere.min_health_score",
                            "Agents below this health score get no new sessions.", nullptr, &min_health_score,
                            kMinHealthScoreDefault, 0, 100, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "darkspere.history_turns", "Turns of conversation history sent with each agent call.", nullptr,
        &history_turns, kHistoryTurnsDefault, 0, 100, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("darkspere.agent_call_max_attempts",
                            "Attempts before an agent call is dead-lettered.", nullptr,
                            &agent_call_max_attempts, kAgentCallMaxAttemptsDefault, 1, 100, PGC_USERSET, 0,
                            nullptr, nullptr, nullptr);
    DefineCustomIntVariable("darkspere.sms_send_max_attempts",
                            "Attempts before an SMS send is dead-lettered.", nullptr, &sms_send_max_attempts,
                            kSmsSendMaxAttemptsDefault, 1, 100, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("darkspere.job_retention",
                            "Seconds finished jobs are kept before tick() prunes them.", nullptr,
                            &job_retention_s, kJobRetentionDefaultS, 0, INT_MAX / 2, PGC_USERSET, GUC_UNIT_S,
                            nullptr, nullptr, nullptr);
    DefineCustomIntVariable("darkspere.dead_job_retention", "Seconds dead-lettered jobs are kept.", nullptr,
                            &dead_job_retention_s, kDeadJobRetentionDefaultS, 0, INT_MAX / 2, PGC_USERSET,
                            GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("darkspere.notify_interval",
                            "Minimum milliseconds between two NOTIFYs of one backend.", nullptr,
                            &notify_interval_ms, kNotifyIntervalDefaultMs, 0, 10000, PGC_USERSET, GUC_UNIT_MS,
                            nullptr, nullptr, nullptr);
    define_version_check_setting();
    MarkGUCPrefixReserved("darkspere");
}
