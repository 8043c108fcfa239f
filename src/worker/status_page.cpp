// src/worker/status_page.cpp — renders GET /status: plain HTML with inline CSS, inline SVG sparklines and a
// few lines of inline script (auto-refresh). Nothing is loaded from anywhere; every value is escaped here.
#include "status_page.hpp"

#include "common/xml.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace darkspere::worker {

const char *const STATUS_PAGE_CSP =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// The five characters XML escapes are the ones HTML needs escaped in text and quoted attributes (HTML5 knows
// &apos;): TwiML's escaping serves.
std::string html_escape(std::string_view text) {
    return xml_escape(text);
}

namespace {

constexpr int SPARK_W = 300;
constexpr int SPARK_H = 40;

std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

// text_of — a JSON value as display text: strings as they are, null as "–", anything else as JSON.
std::string text_of(const nlohmann::json &v) {
    if (v.is_null())
        return "–";
    if (v.is_string())
        return v.get<std::string>();
    if (v.is_number_float())
        return fixed(v.get<double>(), 1);
    return v.dump();
}

// field — obj[key] when obj is an object holding it, else null.
const nlohmann::json &field(const nlohmann::json &obj, const char *key) {
    static const nlohmann::json null_value;
    if (!obj.is_object())
        return null_value;
    auto it = obj.find(key);
    return it == obj.end() ? null_value : *it;
}

const nlohmann::json &array_of(const nlohmann::json &obj, const char *key) {
    static const nlohmann::json empty = nlohmann::json::array();
    const nlohmann::json &v = field(obj, key);
    return v.is_array() ? v : empty;
}

std::vector<std::optional<double>> series(const nlohmann::json &values) {
    std::vector<std::optional<double>> out;
    if (!values.is_array())
        return out;
    for (const auto &v : values)
        out.push_back(v.is_number() ? std::optional<double>(v.get<double>()) : std::nullopt);
    return out;
}

std::optional<double> max_of(const std::vector<std::optional<double>> &values) {
    std::optional<double> m;
    for (const auto &v : values)
        if (v && (!m || *v > *m))
            m = v;
    return m;
}

// css_class — a class name from a fixed set, so a value from the database never lands in an attribute raw.
const char *state_class(const std::string &value) {
    if (value == "active" || value == "closed")
        return "ok";
    if (value == "half_open" || value == "maintenance")
        return "warn";
    return "bad";
}

const char *const HEAD = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>DarkSpere status</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}
table{border-collapse:collapse;background:#fff}th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#17692a}.warn{color:#9a6700}.bad{color:#b42318;font-weight:600}.muted{color:#777}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{background:#fff;border:1px solid #ddd;padding:.6em 1em}
.card b{display:block;font-size:1.6em}svg.spark{background:#fff;border:1px solid #ddd}
</style></head><body>
)";

const char *const TAIL =
    R"(<p class="muted"><label><input type="checkbox" id="auto" checked> refresh every 30 s</label>
<span id="age"></span></p>
<script>
(function () {
  var started = Date.now();
  var age = document.getElementById('age');
  setInterval(function () {
    age.textContent = ' · page age ' + Math.round((Date.now() - started) / 1000) + ' s';
    if (document.getElementById('auto').checked && Date.now() - started >= 30000) location.reload();
  }, 1000);
})();
</script>
</body></html>
)";

void local_cards(std::string &out, const StatusLocal &local) {
    out += "<div class=\"cards\">";
    out += "<div class=\"card\">jobs in flight here<b id=\"jobs-in-flight\">" +
           std::to_string(local.jobs_in_flight) + "</b></div>";
    out += "<div class=\"card\">agent calls in flight here<b>" + std::to_string(local.agent_calls_in_flight) +
           "</b></div>";
    out += "<div class=\"card\">webhooks waiting for the database<b>" +
           std::to_string(local.inbound_waiting) + "</b></div>";
}

void queue_section(std::string &out, const nlohmann::json &snapshot) {
    const nlohmann::json &queue = array_of(snapshot, "queue");
    long pending = 0, running = 0;
    for (const auto &q : queue) {
        const nlohmann::json &jobs = field(q, "jobs");
        long n = jobs.is_number_integer() ? jobs.get<long>() : 0;
        (text_of(field(q, "state")) == "running" ? running : pending) += n;
    }
    out +=
        "<div class=\"card\">queue: pending<b id=\"queue-pending\">" + std::to_string(pending) + "</b></div>";
    out +=
        "<div class=\"card\">queue: running<b id=\"queue-running\">" + std::to_string(running) + "</b></div>";
    out += "</div>\n<h2>Queue</h2>\n";
    if (queue.empty()) {
        out += "<p class=\"muted\">No pending or running jobs.</p>\n";
        return;
    }
    out += "<table id=\"queue\"><tr><th>kind</th><th>state</th><th>jobs</th><th>oldest waits (s)</th></tr>\n";
    for (const auto &q : queue) {
        out += "<tr><td>" + html_escape(text_of(field(q, "kind"))) + "</td><td>" +
               html_escape(text_of(field(q, "state"))) + "</td><td class=\"n\">" +
               html_escape(text_of(field(q, "jobs"))) + "</td><td class=\"n\">" +
               html_escape(text_of(field(q, "oldest_age_s"))) + "</td></tr>\n";
    }
    out += "</table>\n";
}

void agents_section(std::string &out, const nlohmann::json &snapshot) {
    const nlohmann::json &agents = array_of(snapshot, "agents");
    out += "<h2>Agents</h2>\n";
    if (agents.empty()) {
        out += "<p class=\"muted\">No agents registered.</p>\n";
        return;
    }
    out += "<p class=\"muted\">" + std::to_string(agents.size()) + " of " +
           html_escape(text_of(field(snapshot, "agents_total"))) + ", least healthy first.</p>\n";
    out +=
        "<table id=\"agents\"><tr><th>agent</th><th>account</th><th>status</th><th>health</th><th>circuit</th>"
        "<th>load</th><th>last heartbeat</th></tr>\n";
    for (const auto &a : agents) {
        std::string status = text_of(field(a, "status"));
        std::string circuit = text_of(field(a, "circuit"));
        const nlohmann::json &score = field(a, "health_score");
        const char *health_class = !score.is_number()          ? "muted"
                                   : score.get<double>() >= 80 ? "ok"
                                   : score.get<double>() >= 50 ? "warn"
                                                               : "bad";
        out += "<tr class=\"agent\"><td>" + html_escape(text_of(field(a, "name"))) +
               " <span class=\"muted\">#" + html_escape(text_of(field(a, "agent_id"))) +
               "</span></td><td class=\"n\">" + html_escape(text_of(field(a, "account_id"))) +
               "</td><td class=\"" + state_class(status) + "\">" + html_escape(status) +
               "</td><td class=\"n " + health_class + "\">" + html_escape(text_of(score)) +
               "</td><td class=\"" + state_class(circuit) + "\">" + html_escape(circuit) +
               "</td><td class=\"n\">" + html_escape(text_of(field(a, "in_flight"))) + " / " +
               html_escape(text_of(field(a, "capacity"))) + "</td><td>" +
               html_escape(text_of(field(a, "last_heartbeat_at"))) + "</td></tr>\n";
    }
    out += "</table>\n";
}

// Alerts are shown column by column, at most 8: darkspere.alerts' columns that say what fired first (in this
// order), then any others the newest row has, so that a column added to the table later still shows.
void alerts_section(std::string &out, const nlohmann::json &snapshot) {
    out += "<h2>Recent alerts</h2>\n";
    const nlohmann::json &alerts = array_of(snapshot, "alerts");
    if (alerts.empty() || !alerts.front().is_object()) {
        out += "<p id=\"alerts\" class=\"muted\">No alerts.</p>\n";
        return;
    }
    static const std::vector<std::string> kFirst = {"fired_at", "severity", "rule",      "subject",
                                                    "state",    "value",    "threshold", "acknowledged_by"};
    std::vector<std::string> columns;
    for (const auto &c : kFirst)
        if (alerts.front().contains(c))
            columns.push_back(c);
    for (const auto &[key, value] : alerts.front().items()) {
        if (columns.size() >= 8)
            break;
        if (std::find(kFirst.begin(), kFirst.end(), key) == kFirst.end())
            columns.push_back(key);
    }
    if (columns.size() > 8)
        columns.resize(8);
    out += "<table id=\"alerts\"><tr>";
    for (const auto &c : columns)
        out += "<th>" + html_escape(c) + "</th>";
    out += "</tr>\n";
    for (const auto &alert : alerts) {
        out += "<tr class=\"alert\">";
        for (const auto &c : columns)
            out += "<td>" + html_escape(text_of(field(alert, c.c_str()))) + "</td>";
        out += "</tr>\n";
    }
    out += "</table>\n";
}

void trends_section(std::string &out, const nlohmann::json &snapshot) {
    auto traffic = series(field(snapshot, "traffic"));
    auto latency = series(field(snapshot, "latency_p95"));
    auto traffic_max = max_of(traffic);
    auto latency_max = max_of(latency);
    out += "<h2>Last 60 minutes</h2>\n<div class=\"cards\">";
    out += "<div class=\"card\">inbound messages per minute (max " +
           (traffic_max ? fixed(*traffic_max, 0) : std::string("–")) + ")<br>" +
           sparkline_svg(traffic, "inbound messages per minute") + "</div>";
    out += "<div class=\"card\">p95 inbound → reply, ms (max " +
           (latency_max ? fixed(*latency_max, 0) : std::string("–")) + ")<br>" +
           sparkline_svg(latency, "p95 latency from inbound message to reply per minute") + "</div></div>\n";
    const nlohmann::json &stages = array_of(snapshot, "latency");
    if (stages.empty())
        return;
    out +=
        "<h2>Latency over the last hour (ms)</h2>\n<table id=\"latency\"><tr><th>stage</th><th>count</th>"
        "<th>p50</th><th>p95</th><th>p99</th></tr>\n";
    for (const auto &s : stages) {
        out += "<tr><td>" + html_escape(text_of(field(s, "stage"))) + "</td>";
        for (const char *k : {"count", "p50_ms", "p95_ms", "p99_ms"})
            out += "<td class=\"n\">" + html_escape(text_of(field(s, k))) + "</td>";
        out += "</tr>\n";
    }
    out += "</table>\n";
}

void title(std::string &out, const StatusLocal &local, std::string_view generated_at) {
    out += "<h1>DarkSpere status</h1>\n<p class=\"muted\">worker " + html_escape(local.worker_name) +
           " · database snapshot " + html_escape(generated_at) + "</p>\n";
}

}  // namespace

std::string sparkline_svg(const std::vector<std::optional<double>> &values, std::string_view title) {
    std::string out = "<svg class=\"spark\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                      std::to_string(SPARK_W) + "\" height=\"" + std::to_string(SPARK_H) +
                      "\" viewBox=\"0 0 " + std::to_string(SPARK_W) + " " + std::to_string(SPARK_H) +
                      "\" role=\"img\"><title>" + html_escape(title) + "</title>";
    auto top = max_of(values);
    double scale = top && *top > 0 ? (SPARK_H - 4) / *top : 0;
    double step = values.size() > 1 ? static_cast<double>(SPARK_W - 4) / (values.size() - 1) : 0;
    std::string points, last_x, last_y;
    size_t in_line = 0;
    auto flush = [&] {
        if (in_line == 1)  // a lone value between gaps: a dot, so it shows
            out += "<circle cx=\"" + last_x + "\" cy=\"" + last_y + "\" r=\"1.5\" fill=\"#1f6feb\"/>";
        else if (in_line > 1)
            out +=
                "<polyline fill=\"none\" stroke=\"#1f6feb\" stroke-width=\"1.5\" points=\"" + points + "\"/>";
        points.clear();
        in_line = 0;
    };
    for (size_t i = 0; i < values.size(); ++i) {
        if (!values[i] || !std::isfinite(*values[i])) {
            flush();
            continue;
        }
        last_x = fixed(2 + i * step, 1);
        last_y = fixed(SPARK_H - 2 - std::max(0.0, *values[i]) * scale, 1);
        points += last_x + "," + last_y + " ";
        ++in_line;
    }
    flush();
    out += "</svg>";
    return out;
}

std::string render_status_page(const nlohmann::json &snapshot, const StatusLocal &local) {
    std::string out = HEAD;
    title(out, local, text_of(field(snapshot, "generated_at")));
    local_cards(out, local);
    queue_section(out, snapshot);
    agents_section(out, snapshot);
    alerts_section(out, snapshot);
    trends_section(out, snapshot);
    out += TAIL;
    return out;
}

std::string render_status_unavailable(std::string_view reason, const StatusLocal &local) {
    std::string out = HEAD;
    title(out, local, "unavailable");
    local_cards(out, local);
    out += "</div>\n<h2 class=\"bad\">The database could not be read</h2>\n<p id=\"error\">" +
           html_escape(reason) + "</p>\n";
    out += TAIL;
    return out;
}

}  // namespace darkspere::worker
