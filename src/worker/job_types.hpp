// src/worker/job_types.hpp — what a queue job is to the worker: its id, its attempt, its kind and its state,
// typed, with the one mapping between the kinds and states and their SQL strings (docs/queue-contract.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace darkspere::worker {

// JobId — darkspere.jobs.job_id (bigint).
using JobId = std::int64_t;
// Attempt — darkspere.jobs.attempt (int): the fencing token of one lease of a job.
using Attempt = std::int32_t;

// JobKind — darkspere.jobs.kind.
enum class JobKind { agent_call, sms_send, health_probe, stripe_meter, alert_notify };
// JobState — darkspere.jobs.state.
enum class JobState { pending, running, done, dead };

// sql_text — the string the database stores for a kind or state.
std::string_view sql_text(JobKind kind);
std::string_view sql_text(JobState state);

// job_kind_from_sql, job_state_from_sql — the kind or state a database string names; nullopt for any other
// string (a kind this worker does not know is the caller's error path, never a guess).
std::optional<JobKind> job_kind_from_sql(std::string_view text);
std::optional<JobState> job_state_from_sql(std::string_view text);

// job_kind_label, job_state_label — a kind or state as a metrics label; "unknown" for one the worker could
// not read (so a label's values stay the known few).
std::string job_kind_label(std::optional<JobKind> kind);
std::string job_state_label(std::optional<JobState> state);

// parse_job_id, parse_attempt — a bigint / int column as the database prints it (optional '-', decimal
// digits, in range); nullopt for NULL, an empty string, trailing characters or an overflow.
std::optional<JobId> parse_job_id(const std::optional<std::string> &text);
std::optional<Attempt> parse_attempt(const std::optional<std::string> &text);

}  // namespace darkspere::worker
