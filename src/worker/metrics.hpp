// src/worker/metrics.hpp — the worker's counters, gauges and histograms, rendered as Prometheus text (GET
// /metrics).
//
// Single-threaded like the rest of the worker: everything is updated on the event loop, so no atomics.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace darkspere::worker {

// Latency buckets in seconds: webhooks should answer in milliseconds, agents may take up to their deadline.
extern const std::vector<double> LATENCY_BUCKETS_SECONDS;
// Sizes of batches (acks per ack statement, messages per receive_sms_batch statement).
extern const std::vector<double> BATCH_SIZE_BUCKETS;

class Histogram {
  public:
    explicit Histogram(std::vector<double> bounds = LATENCY_BUCKETS_SECONDS);
    void observe(double value);
    const std::vector<double> &bounds() const { return bounds_; }
    const std::vector<unsigned long long> &counts() const { return counts_; }  // per bucket, not cumulative
    unsigned long long count() const { return count_; }
    double sum() const { return sum_; }

  private:
    std::vector<double> bounds_;
    std::vector<unsigned long long> counts_;
    unsigned long long count_ = 0;
    double sum_ = 0;
};

struct Metrics {
    std::map<std::pair<std::string, int>, unsigned long long> http_requests;  // (route, status)
    std::map<std::pair<std::string, std::string>, unsigned long long> jobs;   // (kind, outcome)
    std::map<std::pair<std::string, std::string>, double> queue_depth;        // (kind, state)
    // Connections closed as soon as they were accepted, by reason ("per_ip": max-connections-per-ip).
    std::map<std::string, unsigned long long> http_connections_refused{{"per_ip", 0}};
    // POST /stripe/webhook by outcome: darkspere.stripe_event's answer (processed, duplicate, ignored) or why
    // the event was refused (bad_signature, bad_body, bad_event, error, unconfigured).
    std::map<std::string, unsigned long long> stripe_events{
        {"processed", 0}, {"duplicate", 0}, {"ignored", 0}, {"bad_signature", 0},
        {"bad_body", 0},  {"bad_event", 0}, {"error", 0},   {"unconfigured", 0}};
    unsigned long long readiness_probes = 0;  // queries /readyz sent to the database (one per burst)
    long agent_calls_in_flight = 0;
    long jobs_in_flight = 0;
    long acks_pending = 0;
    long inbound_waiting = 0;       // verified inbound webhooks waiting for a receive statement
    long twilio_sends_waiting = 0;  // SMS sends waiting for a free Twilio request slot
    long db_connections = 0;
    unsigned long long ack_batch_fallbacks = 0;      // batches that failed and were acked one by one
    unsigned long long jobs_handed_off = 0;          // jobs leased to this worker by the call that made them
    unsigned long long receive_batch_fallbacks = 0;  // receive batches that failed and went one by one
    // The spool (spool_replay.hpp): webhooks written to it, stored from it, refused because it was full, and
    // records set aside by reason (corrupt, torn, rejected).
    unsigned long long spool_spooled = 0;
    unsigned long long spool_replayed = 0;
    unsigned long long spool_refused = 0;
    std::map<std::string, unsigned long long> spool_quarantined{{"corrupt", 0}, {"torn", 0}, {"rejected", 0}};
    long spool_bytes = 0;   // segment files and writes in progress
    long spool_active = 0;  // 1 while anything spooled is not yet stored
    Histogram agent_call_seconds;
    Histogram twilio_send_seconds;       // the Messages API request alone
    Histogram twilio_send_wait_seconds;  // waiting for a request slot before it (send_gate.hpp)
    Histogram webhook_seconds;
    Histogram ack_batch_size{BATCH_SIZE_BUCKETS};
    Histogram ack_batch_seconds;  // ack statement sent → result, a wait for a connection included
    Histogram receive_batch_size{BATCH_SIZE_BUCKETS};

    void count_request(const std::string &route, int status) { ++http_requests[{route, status}]; }
    void count_job(const std::string &kind, const std::string &outcome) { ++jobs[{kind, outcome}]; }
};

// render_prometheus — the text exposition format (version 0.0.4) of every metric.
std::string render_prometheus(const Metrics &m);

// prometheus_label_value — a label value escaped for the text format (\\, \", \n).
std::string prometheus_label_value(const std::string &value);

}  // namespace darkspere::worker
