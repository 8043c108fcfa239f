// src/worker/metrics.cpp — Prometheus text rendering (see metrics.hpp).
#include "metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace darkspere::worker {

const std::vector<double> LATENCY_BUCKETS_SECONDS = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                     1,     2.5,  5,     10,   15,  30};
const std::vector<double> BATCH_SIZE_BUCKETS = {1, 2, 5, 10, 20, 50, 100, 200};

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
    size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
    ++counts_[i];
    ++count_;
    sum_ += value;
}

namespace {

std::string number(double v) {
    if (std::isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

void header(std::string &out, const char *name, const char *type, const char *help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

void histogram(std::string &out, const char *name, const char *help, const Histogram &h) {
    header(out, name, "histogram", help);
    unsigned long long cumulative = 0;
    for (size_t i = 0; i < h.bounds().size(); ++i) {
        cumulative += h.counts()[i];
        out += std::string(name) + "_bucket{le=\"" + number(h.bounds()[i]) + "\"} " +
               std::to_string(cumulative) + "\n";
    }
    out += std::string(name) + "_bucket{le=\"+Inf\"} " + std::to_string(h.count()) + "\n";
    char sum[64];
    std::snprintf(sum, sizeof sum, "%.6f", h.sum());
    out += std::string(name) + "_sum " + sum + "\n";
    out += std::string(name) + "_count " + std::to_string(h.count()) + "\n";
}

void gauge(std::string &out, const char *name, const char *help, long value) {
    header(out, name, "gauge", help);
    out += std::string(name) + " " + std::to_string(value) + "\n";
}

}  // namespace

std::string prometheus_label_value(const std::string &value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string render_prometheus(const Metrics &m) {
    std::string out;
    header(out, "darkspere_http_requests_total", "counter", "Inbound HTTP requests by route and status.");
    for (const auto &[key, n] : m.http_requests)
        out += "darkspere_http_requests_total{route=\"" + prometheus_label_value(key.first) + "\",status=\"" +
               std::to_string(key.second) + "\"} " + std::to_string(n) + "\n";

    header(out, "darkspere_http_connections_refused_total", "counter",
           "Inbound connections closed as soon as they were accepted, by reason (per_ip: the client address "
           "already held max-connections-per-ip).");
    for (const auto &[reason, n] : m.http_connections_refused)
        out += "darkspere_http_connections_refused_total{reason=\"" + prometheus_label_value(reason) +
               "\"} " + std::to_string(n) + "\n";
    header(out, "darkspere_stripe_events_total", "counter",
           "Stripe webhooks by outcome: processed, duplicate, ignored (darkspere.stripe_event's answer) or "
           "bad_signature, bad_body, bad_event, error, unconfigured.");
    for (const auto &[outcome, n] : m.stripe_events)
        out += "darkspere_stripe_events_total{outcome=\"" + prometheus_label_value(outcome) + "\"} " +
               std::to_string(n) + "\n";
    header(
        out, "darkspere_readiness_probes_total", "counter",
        "Database queries sent for /readyz; concurrent requests share one and a result is reused for 1 s.");
    out += "darkspere_readiness_probes_total " + std::to_string(m.readiness_probes) + "\n";

    header(out, "darkspere_jobs_total", "counter", "Jobs finished by kind and outcome.");
    for (const auto &[key, n] : m.jobs)
        out += "darkspere_jobs_total{kind=\"" + prometheus_label_value(key.first) + "\",outcome=\"" +
               prometheus_label_value(key.second) + "\"} " + std::to_string(n) + "\n";

    header(out, "darkspere_ack_batch_fallbacks_total", "counter",
           "Ack batches that failed with an SQL error and were acked one by one.");
    out += "darkspere_ack_batch_fallbacks_total " + std::to_string(m.ack_batch_fallbacks) + "\n";
    header(out, "darkspere_jobs_handed_off_total", "counter",
           "Jobs leased to this worker by the statement that created them (an inbound webhook's agent call, "
           "an ack's SMS send), run without a claim.");
    out += "darkspere_jobs_handed_off_total " + std::to_string(m.jobs_handed_off) + "\n";
    header(out, "darkspere_receive_batch_fallbacks_total", "counter",
           "Inbound batches that failed with an SQL error and were stored one message at a time.");
    out += "darkspere_receive_batch_fallbacks_total " + std::to_string(m.receive_batch_fallbacks) + "\n";

    header(
        out, "darkspere_spool_spooled_total", "counter",
        "Inbound webhooks written to the spool (the database was unreachable, or the spool was replaying).");
    out += "darkspere_spool_spooled_total " + std::to_string(m.spool_spooled) + "\n";
    header(out, "darkspere_spool_replayed_total", "counter",
           "Spooled webhooks stored through receive_sms (a duplicate MessageSid included).");
    out += "darkspere_spool_replayed_total " + std::to_string(m.spool_replayed) + "\n";
    header(out, "darkspere_spool_refused_total", "counter",
           "Webhooks answered 503 because the spool was full (spool-max-bytes) or could not be written.");
    out += "darkspere_spool_refused_total " + std::to_string(m.spool_refused) + "\n";
    header(out, "darkspere_spool_quarantined_total", "counter",
           "Spool records set aside in spool-dir/quarantine, by reason (corrupt: bad CRC or header; torn: a "
           "crash cut the last record short; rejected: the database refused it as bad input).");
    for (const auto &[reason, n] : m.spool_quarantined)
        out += "darkspere_spool_quarantined_total{reason=\"" + prometheus_label_value(reason) + "\"} " +
               std::to_string(n) + "\n";
    gauge(out, "darkspere_spool_bytes", "Bytes in the spool's segment files (and being written).",
          m.spool_bytes);
    gauge(out, "darkspere_spool_active",
          "1 while the spool holds webhooks not yet stored (new webhooks are spooled behind them), else 0.",
          m.spool_active);

    gauge(out, "darkspere_agent_calls_in_flight", "Agent calls waiting for an answer.",
          m.agent_calls_in_flight);
    gauge(out, "darkspere_jobs_in_flight", "Claimed jobs not yet acknowledged.", m.jobs_in_flight);
    gauge(out, "darkspere_acks_pending", "Finished outcomes waiting for the database to come back.",
          m.acks_pending);
    gauge(
        out, "darkspere_inbound_waiting",
        "Verified inbound webhooks waiting for a statement (they go together in the next receive_sms_batch).",
        m.inbound_waiting);
    gauge(out, "darkspere_twilio_sends_waiting",
          "SMS sends waiting for one of their Twilio account's request slots (twilio-max-concurrent).",
          m.twilio_sends_waiting);
    gauge(out, "darkspere_db_connections", "Open query connections to PostgreSQL.", m.db_connections);

    histogram(out, "darkspere_agent_call_seconds", "Duration of agent calls.", m.agent_call_seconds);
    histogram(out, "darkspere_twilio_send_seconds", "Duration of Twilio Messages API calls.",
              m.twilio_send_seconds);
    histogram(out, "darkspere_twilio_send_wait_seconds",
              "Time SMS sends waited for a Twilio request slot before their request started.",
              m.twilio_send_wait_seconds);
    histogram(out, "darkspere_webhook_seconds", "Time to answer Twilio webhooks.", m.webhook_seconds);
    histogram(out, "darkspere_ack_batch_size", "Job acks sent per statement.", m.ack_batch_size);
    histogram(out, "darkspere_ack_batch_seconds",
              "Time from sending an ack statement (one or many acks) to its result.", m.ack_batch_seconds);
    histogram(
        out, "darkspere_receive_batch_size",
        "Inbound messages stored per receive_sms_batch statement (messages stored alone are not counted).",
        m.receive_batch_size);

    header(out, "darkspere_queue_depth", "gauge",
           "Jobs in the queue by kind and state (darkspere.queue_depth).");
    for (const auto &[key, n] : m.queue_depth)
        out += "darkspere_queue_depth{kind=\"" + prometheus_label_value(key.first) + "\",state=\"" +
               prometheus_label_value(key.second) + "\"} " + number(n) + "\n";
    return out;
}

}  // namespace darkspere::worker
