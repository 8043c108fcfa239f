// test/unit/worker_metrics_test.cpp — Prometheus text exposition of the worker's metrics.
#include <gtest/gtest.h>

#include "metrics.hpp"

using namespace darkspere::worker;

namespace {
bool has_line(const std::string &text, const std::string &line) {
    return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}
}  // namespace

TEST(WorkerMetrics, CountersCarryTheirLabels) {
    Metrics m;
    m.count_request("/twilio/sms", 200);
    m.count_request("/twilio/sms", 200);
    m.count_request("/twilio/sms", 403);
    m.count_job("agent_call", "completed");
    std::string text = render_prometheus(m);
    EXPECT_TRUE(has_line(text, "# TYPE darkspere_http_requests_total counter"));
    EXPECT_TRUE(has_line(text, R"(darkspere_http_requests_total{route="/twilio/sms",status="200"} 2)"));
    EXPECT_TRUE(has_line(text, R"(darkspere_http_requests_total{route="/twilio/sms",status="403"} 1)"));
    EXPECT_TRUE(has_line(text, R"(darkspere_jobs_total{kind="agent_call",outcome="completed"} 1)"));
}

TEST(WorkerMetrics, HistogramBucketsAreCumulative) {
    Metrics m;
    m.agent_call_seconds.observe(0.003);
    m.agent_call_seconds.observe(0.2);
    m.agent_call_seconds.observe(100);
    std::string text = render_prometheus(m);
    EXPECT_TRUE(has_line(text, "# TYPE darkspere_agent_call_seconds histogram"));
    EXPECT_TRUE(has_line(text, R"(darkspere_agent_call_seconds_bucket{le="0.005"} 1)"));
    EXPECT_TRUE(has_line(text, R"(darkspere_agent_call_seconds_bucket{le="0.25"} 2)"));
    EXPECT_TRUE(has_line(text, R"(darkspere_agent_call_seconds_bucket{le="30"} 2)"));
    EXPECT_TRUE(has_line(text, R"(darkspere_agent_call_seconds_bucket{le="+Inf"} 3)"));
    EXPECT_TRUE(has_line(text, "darkspere_agent_call_seconds_count 3"));
    EXPECT_TRUE(has_line(text, "darkspere_agent_call_seconds_sum 100.203000"));
}

TEST(WorkerMetrics, BoundaryValueFallsInItsBucket) {
    Histogram h({1, 2});
    h.observe(1);
    EXPECT_EQ(h.counts()[0], 1u);
}

TEST(WorkerMetrics, GaugesAndQueueDepth) {
    Metrics m;
    m.agent_calls_in_flight = 12;
    m.queue_depth[{"sms_send", "pending"}] = 3;
    std::string text = render_prometheus(m);
    EXPECT_TRUE(has_line(text, "darkspere_agent_calls_in_flight 12"));
    EXPECT_TRUE(has_line(text, R"(darkspere_queue_depth{kind="sms_send",state="pending"} 3)"));
    EXPECT_TRUE(has_line(text, "# TYPE darkspere_twilio_send_seconds histogram"));
    EXPECT_TRUE(has_line(text, "# TYPE darkspere_webhook_seconds histogram"));
}

TEST(WorkerMetrics, LabelValuesAreEscaped) {
    EXPECT_EQ(prometheus_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(WorkerMetrics, RefusedConnectionsAndReadinessProbesAreCounted) {
    Metrics m;
    std::string text = render_prometheus(m);
    EXPECT_TRUE(has_line(text, R"(darkspere_http_connections_refused_total{reason="per_ip"} 0)"))
        << "the per_ip series exists before the first refusal, so a rate() over it starts at zero";
    EXPECT_TRUE(has_line(text, "darkspere_readiness_probes_total 0"));
    ++m.http_connections_refused["per_ip"];
    m.readiness_probes += 2;
    text = render_prometheus(m);
    EXPECT_TRUE(has_line(text, R"(darkspere_http_connections_refused_total{reason="per_ip"} 1)"));
    EXPECT_TRUE(has_line(text, "darkspere_readiness_probes_total 2"));
}
