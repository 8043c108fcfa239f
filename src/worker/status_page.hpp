// src/worker/status_page.hpp — the HTML of GET /status (admin listener) from darkspere.status_snapshot().
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace darkspere::worker {

// What the worker itself knows, shown beside the database's snapshot.
struct StatusLocal {
    std::string worker_name;
    long jobs_in_flight = 0;
    long agent_calls_in_flight = 0;
    long inbound_waiting = 0;
};

// The Content-Security-Policy of the page: inline style and script only, images only as data: URLs, nothing
// fetched from anywhere (not even this worker), no forms, not framed.
extern const char *const STATUS_PAGE_CSP;

// html_escape — text safe inside an element or a quoted attribute (& < > " ' escaped).
std::string html_escape(std::string_view text);

// sparkline_svg — an inline SVG polyline of the values (oldest first); a missing value breaks the line. title
// is the accessible name (escaped here).
std::string sparkline_svg(const std::vector<std::optional<double>> &values, std::string_view title);

// render_status_page — the whole page. snapshot is status_snapshot()'s object; every value from it is escaped
// (agent and account names are tenant input). A snapshot missing a section shows that section empty.
std::string render_status_page(const nlohmann::json &snapshot, const StatusLocal &local);

// render_status_unavailable — the page when the snapshot could not be read (the reason is escaped).
std::string render_status_unavailable(std::string_view reason, const StatusLocal &local);

}  // namespace darkspere::worker
