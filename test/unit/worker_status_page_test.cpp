// test/unit/worker_status_page_test.cpp — GET /status's HTML: every value from the snapshot is escaped (agent
// names are tenant input), alerts show what fired first, then any other columns darkspere.alerts has,
// sparklines break at missing minutes, and nothing on the page points anywhere outside it.
#include <gtest/gtest.h>

#include <string>

#include "status_page.hpp"

using darkspere::worker::html_escape;
using darkspere::worker::render_status_page;
using darkspere::worker::render_status_unavailable;
using darkspere::worker::sparkline_svg;
using darkspere::worker::StatusLocal;

namespace {

size_t count(const std::string &haystack, const std::string &needle) {
    size_t n = 0;
    for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1))
        ++n;
    return n;
}

nlohmann::json snapshot() {
    return nlohmann::json::parse(R"({
        "generated_at": "2026-12-06T05:00:00+00:00",
        "queue": [{"kind": "agent_call", "state": "pending", "jobs": 3, "oldest_age_s": 1.5},
                  {"kind": "sms_send", "state": "running", "jobs": 2, "oldest_age_s": 0}],
        "agents": [{"account_id": 7, "agent_id": 9, "name": "<script>alert('x')</script>", "status": "active",
                    "health_score": 40, "circuit": "open\" onmouseover=\"x", "in_flight": 1, "capacity": 4,
                    "last_heartbeat_at": null}],
        "agents_total": 1,
        "traffic": [0, 1, 2, null, 4],
        "latency_p95": [null, 120.5, null, 80, 90],
        "latency": [{"stage": "agent_call", "window": "1 hour", "count": 3, "p50_ms": 100, "p95_ms": 120.5,
                     "p99_ms": 130}],
        "alerts": []
    })");
}

}  // namespace

TEST(StatusPage, EscapesTheFiveCharacters) {
    EXPECT_EQ(html_escape("<a href=\"x\">Tom & 'Jerry'</a>"),
              "&lt;a href=&quot;x&quot;&gt;Tom &amp; &apos;Jerry&apos;&lt;/a&gt;");
}

TEST(StatusPage, AnAgentNamedScriptIsText) {
    std::string page = render_status_page(snapshot(), StatusLocal{"w<1>", 1, 2, 3});
    EXPECT_NE(page.find("&lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt;"), std::string::npos);
    EXPECT_EQ(page.find("alert('x')"), std::string::npos);
    EXPECT_EQ(count(page, "<script"), 1u);  // the page's own auto-refresh only
    // A value never leaves its attribute or element: the circuit's quote is escaped, its class is a fixed
    // one.
    EXPECT_EQ(page.find("onmouseover=\""), std::string::npos);
    EXPECT_NE(page.find("<td class=\"bad\">open&quot; onmouseover=&quot;x</td>"), std::string::npos);
    EXPECT_NE(page.find("worker w&lt;1&gt;"), std::string::npos);
}

TEST(StatusPage, ShowsQueueAgentsAndLatency) {
    std::string page = render_status_page(snapshot(), StatusLocal{"w1", 0, 0, 0});
    EXPECT_NE(page.find("<b id=\"queue-pending\">3</b>"), std::string::npos);
    EXPECT_NE(page.find("<b id=\"queue-running\">2</b>"), std::string::npos);
    EXPECT_NE(page.find("1 / 4"), std::string::npos);
    EXPECT_NE(page.find("<td class=\"n bad\">40</td>"), std::string::npos);
    EXPECT_NE(page.find("<td class=\"n\">120.5</td>"), std::string::npos);
    EXPECT_NE(page.find("No alerts."), std::string::npos);
}

TEST(StatusPage, AlertsShowTheirOwnColumnsEscaped) {
    nlohmann::json s = snapshot();
    s["alerts"] = nlohmann::json::parse(R"([{"alert_id": 2, "rule": "<b>error_rate</b>", "state": "firing"},
                                            {"alert_id": 1, "rule": "p95", "state": "resolved"}])");
    std::string page = render_status_page(s, StatusLocal{});
    EXPECT_EQ(page.find("No alerts."), std::string::npos);
    EXPECT_NE(page.find("<th>rule</th><th>state</th><th>alert_id</th>"), std::string::npos);
    EXPECT_NE(page.find("&lt;b&gt;error_rate&lt;/b&gt;"), std::string::npos);
    EXPECT_EQ(count(page, "<tr class=\"alert\">"), 2u);
    s["alerts"] = nlohmann::json::array();
    EXPECT_NE(render_status_page(s, StatusLocal{}).find("No alerts."), std::string::npos);
}

TEST(StatusPage, SparklinesBreakAtMissingMinutes) {
    std::string svg = sparkline_svg({0.0, 1.0, 2.0, std::nullopt, 4.0}, "t<");
    EXPECT_EQ(count(svg, "<polyline"), 1u);  // 0, 1, 2
    EXPECT_EQ(count(svg, "<circle"), 1u);    // 4 alone
    EXPECT_NE(svg.find("<title>t&lt;</title>"), std::string::npos);
    std::string empty = sparkline_svg({std::nullopt, std::nullopt}, "none");
    EXPECT_EQ(count(empty, "<polyline"), 0u);
    EXPECT_EQ(count(empty, "<circle"), 0u);
}

TEST(StatusPage, NothingPointsOutside) {
    std::string page = render_status_page(snapshot(), StatusLocal{});
    EXPECT_EQ(page.find("http://"),
              page.find("http://www.w3.org/2000/svg"));  // the SVG namespace, not a fetch
    EXPECT_EQ(page.find("https://"), std::string::npos);
    EXPECT_EQ(page.find(" src="), std::string::npos);
}

TEST(StatusPage, AMissingOrBrokenSnapshotStillRenders) {
    std::string page = render_status_page(nlohmann::json::object({{"queue", "not an array"}}), StatusLocal{});
    EXPECT_NE(page.find("No agents registered."), std::string::npos);
    std::string down = render_status_unavailable("08006: <connection> lost", StatusLocal{});
    EXPECT_NE(down.find("08006: &lt;connection&gt; lost"), std::string::npos);
}
