// src/worker/job_runner_run.cpp — job execution: a claimed or handed-off row read into a job, run by its kind
// (an agent call over http or MCP, an SMS send through Twilio) and turned into the outcome to ack (see
// job_runner.hpp).
#include "job_runner.hpp"

#include "alert_notify.hpp"

#include <algorithm>

#include <boost/asio/post.hpp>

#include "egress_policy.hpp"
#include "job_runner_internal.hpp"
#include "log.hpp"
#include "stripe_api.hpp"

namespace darkspere::worker {

namespace asio = boost::asio;
using job_runner_internal::seconds_since;
using std::chrono::milliseconds;

namespace {

std::string id_text(const nlohmann::json &v) {
    if (v.is_string())
        return v.get<std::string>();
    if (v.is_number_integer())
        return std::to_string(v.get<long long>());
    return "";
}

std::string str(const nlohmann::json &obj, const char *key) {
    auto it = obj.find(key);
    return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// account_number — the account id of a job's tenant; 0 when it is not a positive number.
long long account_number(const std::string &tenant) {
    if (tenant.empty() || tenant.size() > 18 || tenant.find_first_not_of("0123456789") != std::string::npos)
        return 0;
    return std::stoll(tenant);
}

}  // namespace

std::string tenant_of(const nlohmann::json &payload) {
    auto it = payload.find("account_id");
    return it == payload.end() ? std::string() : id_text(*it);
}

bool agent_turn_from_payload(const nlohmann::json &payload, milliseconds deadline, AgentTurn *turn,
                             std::string *protocol, std::string *error) {
    if (!payload.is_object()) {
        *error = "agent_call payload is not an object";
        return false;
    }
    turn->endpoint = str(payload, "endpoint");
    if (turn->endpoint.empty()) {
        *error = "agent_call payload lacks endpoint";
        return false;
    }
    if (auto it = payload.find("agent_id"); it != payload.end() && it->is_number_integer())
        turn->agent_id = it->get<long long>();
    *protocol = str(payload, "protocol");
    if (protocol->empty())
        *protocol = "http";
    turn->tool_name = str(payload, "tool_name");  // null: the default tool
    turn->session_id = payload.contains("session_id") ? id_text(payload["session_id"]) : "";
    turn->message = str(payload, "body");
    turn->from = str(payload, "from");
    turn->to = str(payload, "to");
    turn->request_id = str(payload, "request_id");
    if (auto it = payload.find("history"); it != payload.end() && it->is_array())
        turn->history = *it;
    else
        turn->history = nlohmann::json::array();
    turn->deadline = deadline;
    turn->signing_secrets.clear();
    if (auto it = payload.find("signing_secrets"); it != payload.end() && it->is_array()) {
        for (const auto &secret : *it) {
            if (secret.is_string() && !secret.get<std::string>().empty())
                turn->signing_secrets.push_back(secret.get<std::string>());
        }
    }
    return true;
}

std::optional<ClaimedJob> job_from_row(const PgResult &r, size_t i, std::optional<JobKind> kind_of_all) {
    std::optional<JobId> job_id = parse_job_id(r.value(i, "job_id"));
    std::optional<Attempt> attempt = parse_attempt(r.value(i, "attempt"));
    if (!job_id || !attempt)
        return std::nullopt;
    ClaimedJob job;
    job.job_id = *job_id;
    job.attempt = *attempt;
    std::string kind = r.value(i, "kind").value_or("");
    job.kind = kind_of_all ? kind_of_all : job_kind_from_sql(kind);
    job.payload = nlohmann::json::parse(r.value(i, "payload").value_or("null"), nullptr, false);
    if (job.payload.is_object()) {
        job.request_id = str(job.payload, "request_id");
        job.tenant = tenant_of(job.payload);
    }
    if (job.payload.is_discarded())
        job.unusable = "malformed job payload";
    else if (!job.kind)
        job.unusable = "unknown job kind: " + kind;
    return job;
}

void JobRunner::run_handed_off(ClaimedJob job) {
    ++metrics_.jobs_handed_off;
    run(std::move(job));
}

void JobRunner::run(ClaimedJob job) {
    ++in_flight_;
    metrics_.jobs_in_flight = in_flight_;
    log_debug("job claimed", {{"job_id", job.job_id},
                              {"attempt", job.attempt},
                              {"kind", job_kind_label(job.kind)},
                              {"request_id", job.request_id}});
    if (!job.unusable.empty()) {
        std::string reason = job.unusable;
        job_finished(fail_ack(job, std::move(reason), false));
        return;
    }
    switch (*job.kind) {
        case JobKind::agent_call:
            run_agent_call(std::move(job));
            return;
        case JobKind::sms_send:
            run_sms_send(std::move(job));
            return;
        case JobKind::health_probe:
            run_health_probe(std::move(job));
            return;
        case JobKind::stripe_meter:
            run_stripe_meter(std::move(job));
            return;
        case JobKind::alert_notify:
            run_alert_notify(std::move(job));
            return;
    }
}

// run_stripe_meter — one meter event to Stripe (payload from darkspere.queue_meter_reports). Reported: the
// job completes and its meter_reports row is marked; a retryable answer retries with the same identifier and
// Idempotency-Key; anything else fails for good and the amount goes with the next hour's report.
void JobRunner::run_stripe_meter(ClaimedJob job) {
    RunnerSettings settings = settings_();
    std::string error;
    auto call = stripe_meter_call(job.payload, &error);
    if (!call) {
        job_finished(fail_ack(job, error, false));
        return;
    }
    if (!stripe_http || settings.stripe_api_key.empty()) {
        job_finished(fail_ack(job, "stripe-api-key is not configured", true));
        return;
    }
    auto request = stripe_api_request(*call, settings.stripe_base, settings.stripe_api_key, &error);
    if (!request) {
        job_finished(fail_ack(job, error, false));
        return;
    }
    stripe_http->send(std::move(*request), [this, job](HttpResponse res) {
        long status = res.too_large ? 0 : res.status;
        StripeMeterVerdict verdict = classify_stripe_meter(status);
        log_info("stripe meter event", {{"request_id", job.request_id},
                                        {"job_id", job.job_id},
                                        {"identifier", job.payload.value("identifier", "")},
                                        {"status", status}});
        if (verdict == StripeMeterVerdict::reported) {
            Ack a = ack_of(job);
            a.complete = true;
            a.result = {{"stripe_status", status}, {"identifier", job.payload.value("identifier", "")}};
            a.outcome = "completed";
            job_finished(std::move(a));
            return;
        }
        // Stripe's error message (never the key) is the job's last_error.
        std::string why = "Stripe answered " + std::to_string(status);
        nlohmann::json body = nlohmann::json::parse(res.body, nullptr, false);
        if (status == 0)
            why = "Stripe did not answer: " + stripe_answer_text(res);
        else if (body.is_object() && body.contains("error") && body["error"].is_object() &&
                 body["error"].value("message", "") != "")
            why += ": " + body["error"].value("message", "");
        job_finished(fail_ack(job, why.substr(0, 300), verdict == StripeMeterVerdict::retry));
    });
}

// run_alert_notify — one alert webhook POST (alert_notify.hpp). A refused URL or an unusable payload is
// final; a failed delivery is retried by the queue (5 attempts, with its backoff).
void JobRunner::run_alert_notify(ClaimedJob job) {
    HttpRequest request;
    std::string error;
    if (!alert_notify_request(job.payload, &request, &error)) {
        job_finished(fail_ack(job, error, false));
        return;
    }
    if (std::string refusal = url_scheme_refusal(request.url, settings_().allow_insecure_http);
        !refusal.empty()) {
        job_finished(fail_ack(job, refusal, false));
        return;
    }
    agent_http_.send(std::move(request), [this, job](HttpResponse response) {
        AlertNotifyOutcome outcome = alert_notify_outcome(response);
        log_info("alert notification finished",
                 {{"request_id", job.request_id},
                  {"job_id", job.job_id},
                  {"attempt", job.attempt},
                  {"delivered", outcome.delivered},
                  {"error", outcome.delivered ? nlohmann::json() : nlohmann::json(outcome.error)}});
        if (!outcome.delivered) {
            job_finished(fail_ack(job, outcome.error, true));
            return;
        }
        Ack a = ack_of(job);
        a.complete = true;
        a.result = {{"status", response.status}};
        a.outcome = "completed";
        job_finished(std::move(a));
    });
}

// run_health_probe — one probe (payload: agent_id, endpoint, protocol, probe_path, deadline_ms,
// signing_secrets). Whatever happens, the job completes with {ok, latency_ms, error}: a failed probe is a
// result for the database to weigh (probes.cpp), not a job to retry. The egress policy and request signing
// are those of agent calls (same HTTP client, same secrets).
void JobRunner::run_health_probe(ClaimedJob job) {
    auto started = std::chrono::steady_clock::now();
    auto complete = [this, job, started](const AgentOutcome &outcome) {
        long latency_ms = static_cast<long>(seconds_since(started) * 1000);
        log_info("health probe finished",
                 {{"request_id", job.request_id},
                  {"job_id", job.job_id},
                  {"agent_id", job.payload.value("agent_id", 0LL)},
                  {"ok", outcome.ok},
                  {"latency_ms", latency_ms},
                  {"error", outcome.ok ? nlohmann::json() : nlohmann::json(outcome.error)}});
        Ack a = ack_of(job);
        a.complete = true;
        a.result = {{"ok", outcome.ok}, {"latency_ms", latency_ms}};
        if (!outcome.ok)
            a.result["error"] = outcome.error.empty() ? std::string("probe failed") : outcome.error;
        a.outcome = "completed";
        job_finished(std::move(a));
    };
    AgentTurn turn;
    std::string protocol, error;
    std::string probe_path = str(job.payload, "probe_path");
    if (!agent_turn_from_payload(job.payload, milliseconds(5000), &turn, &protocol, &error)) {
        job_finished(fail_ack(job, "health_probe payload: " + error, false));
        return;
    }
    if (auto it = job.payload.find("deadline_ms"); it != job.payload.end() && it->is_number_integer())
        turn.deadline = milliseconds(std::clamp<long long>(it->get<long long>(), 100, 60000));
    if (probe_path.empty() || probe_path[0] != '/')
        probe_path = "/health";
    RunnerSettings settings = settings_();
    turn.max_response_bytes = static_cast<size_t>(settings.agent_max_response_bytes);
    if (std::string refusal = url_scheme_refusal(turn.endpoint, settings.allow_insecure_http);
        !refusal.empty()) {
        AgentOutcome refused;
        refused.error = refusal;
        complete(refused);
        return;
    }
    if (protocol == "mcp")
        mcp_.ping(turn, std::move(complete));
    else if (protocol == "http")
        agent_http_.probe(turn, probe_path, std::move(complete));
    else
        job_finished(fail_ack(job, "unknown agent protocol: " + protocol, false));
}

void JobRunner::run_agent_call(ClaimedJob job) {
    AgentTurn turn;
    std::string protocol, error;
    if (!agent_turn_from_payload(job.payload, milliseconds(settings_().agent_deadline_ms), &turn, &protocol,
                                 &error)) {
        job_finished(fail_ack(job, error, false));
        return;
    }
    if (protocol != "http" && protocol != "mcp") {
        job_finished(fail_ack(job, "unknown agent protocol: " + protocol, false));
        return;
    }
    RunnerSettings settings = settings_();
    turn.max_response_bytes = static_cast<size_t>(settings.agent_max_response_bytes);
    // An agent URL the policy refuses is that agent's fault, not the turn's: the failure is retryable, so the
    // turn moves to the tenant's next agent (and this one's health drops) instead of being dead-lettered.
    if (std::string refusal = url_scheme_refusal(turn.endpoint, settings.allow_insecure_http);
        !refusal.empty()) {
        log_warn("agent call refused", {{"request_id", job.request_id},
                                        {"job_id", job.job_id},
                                        {"agent_id", turn.agent_id},
                                        {"error", refusal}});
        job_finished(fail_ack(job, "agent " + std::to_string(turn.agent_id) + ": " + refusal, true));
        return;
    }
    ++metrics_.agent_calls_in_flight;
    auto started = std::chrono::steady_clock::now();
    long long agent_id = turn.agent_id;
    long long account_id = account_number(job.tenant);
    agent_call_started(agent_id, account_id);
    auto on_done = [this, job, started, agent_id, account_id, protocol](AgentOutcome outcome) {
        --metrics_.agent_calls_in_flight;
        agent_call_ended(agent_id, account_id);
        double secs = seconds_since(started);
        metrics_.agent_call_seconds.observe(secs);
        long latency_ms = static_cast<long>(secs * 1000);
        log_info("agent call finished",
                 {{"request_id", job.request_id},
                  {"job_id", job.job_id},
                  {"attempt", job.attempt},
                  {"agent_id", agent_id},
                  {"protocol", protocol},
                  {"ok", outcome.ok},
                  {"latency_ms", latency_ms},
                  {"error", outcome.ok ? nlohmann::json() : nlohmann::json(outcome.error)}});
        if (!outcome.ok) {
            job_finished(fail_ack(job, outcome.error.empty() ? "agent call failed" : outcome.error, true));
            return;
        }
        Ack a = ack_of(job);
        a.complete = true;
        nlohmann::json result = {{"latency_ms", latency_ms}};
        result["reply"] = outcome.reply ? nlohmann::json(*outcome.reply) : nlohmann::json(nullptr);
        a.result = std::move(result);
        a.outcome = "completed";
        job_finished(std::move(a));
    };
    if (protocol == "mcp")
        mcp_.call(turn, std::move(on_done));
    else
        agent_http_.call(turn, std::move(on_done));
}

void JobRunner::run_sms_send(ClaimedJob job) {
    SmsSendJob send;
    std::string error;
    if (!parse_sms_send_job(job.payload, &send, &error)) {
        job_finished(fail_ack(job, error, false));
        return;
    }
    send.tenant = job.tenant;
    auto started = std::chrono::steady_clock::now();
    twilio_.send(send, [this, job, started, send](SendOutcome outcome) {
        double secs = seconds_since(started);
        double waited = std::chrono::duration<double>(outcome.waited).count();
        metrics_.twilio_send_wait_seconds.observe(waited);
        if (outcome.requested)
            metrics_.twilio_send_seconds.observe(secs - waited);
        static const char *kinds[] = {"sent", "retry", "fail", "opted_out"};
        log_info("twilio send finished",
                 {{"request_id", job.request_id},
                  {"job_id", job.job_id},
                  {"attempt", job.attempt},
                  {"outcome", kinds[static_cast<int>(outcome.kind)]},
                  {"latency_ms", static_cast<long>((secs - waited) * 1000)},
                  {"waited_ms", static_cast<long>(waited * 1000)},
                  {"error", outcome.error.empty() ? nlohmann::json() : nlohmann::json(outcome.error)}});
        switch (outcome.kind) {
            case SendOutcome::Kind::sent: {
                Ack a = ack_of(job);
                a.complete = true;
                a.result = outcome.result;
                // The Twilio request's time (without the SendGate wait), for darkspere.latency('sms_send').
                if (a.result.is_object())
                    a.result["latency_ms"] = static_cast<long>((secs - waited) * 1000);
                a.outcome = "completed";
                job_finished(std::move(a));
                return;
            }
            case SendOutcome::Kind::retry:
                job_finished(fail_ack(job, outcome.error, true));
                return;
            case SendOutcome::Kind::fail:
                job_finished(fail_ack(job, outcome.error, false));
                return;
            case SendOutcome::Kind::opted_out: {
                Ack a = fail_ack(job, outcome.error, false);
                a.opt_out = std::make_pair(send.from, send.to);
                job_finished(std::move(a));
                return;
            }
        }
    });
}

JobRunner::Ack JobRunner::fail_ack(const ClaimedJob &job, std::string error, bool retryable) {
    Ack a = ack_of(job);
    a.complete = false;
    a.error = std::move(error);
    a.retryable = retryable;
    a.outcome = retryable ? "failed_retryable" : "failed";
    return a;
}

void JobRunner::job_finished(Ack ack) {
    // Completion may be reported from inside the caller's stack; acking later keeps the order of effects
    // simple.
    asio::post(io_, [this, ack = std::move(ack)]() mutable {
        --in_flight_;
        metrics_.jobs_in_flight = in_flight_;
        ++acks_sending_;
        // A probe's ack goes alone (its own transaction): its result locks the agent's row at once
        // (probes.cpp), while an ack batch locks agents' rows at its end in agent order; mixed into batches,
        // two workers' batches could take two agents' rows in opposite orders and deadlock.
        if (ack.opt_out || ack.kind == JobKind::health_probe)
            send_ack(std::move(ack));
        else
            queue_ack(std::move(ack));
        if (claim_again_)
            claim();
    });
}

}  // namespace darkspere::worker
