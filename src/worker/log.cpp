// src/worker/log.cpp — JSON-lines logging to stderr.
#include "log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>

namespace darkspere::worker {

namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::info)};

// utc_timestamp — RFC 3339 UTC time with milliseconds, e.g. 2026-01-02T03:04:05.678Z.
std::string utc_timestamp() {
    auto now = std::chrono::system_clock::now();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
    return buf;
}

}  // namespace

bool parse_log_level(std::string_view text, LogLevel *out) {
    static const std::pair<std::string_view, LogLevel> names[] = {{"debug", LogLevel::debug},
                                                                  {"info", LogLevel::info},
                                                                  {"warn", LogLevel::warn},
                                                                  {"warning", LogLevel::warn},
                                                                  {"error", LogLevel::error}};
    for (const auto &[name, level] : names) {
        if (text == name) {
            *out = level;
            return true;
        }
    }
    return false;
}

const char *log_level_name(LogLevel level) {
    switch (level) {
        case LogLevel::debug:
            return "debug";
        case LogLevel::info:
            return "info";
        case LogLevel::warn:
            return "warn";
        case LogLevel::error:
            return "error";
    }
    return "info";
}

void set_log_level(LogLevel level) {
    g_level.store(static_cast<int>(level));
}

bool log_enabled(LogLevel level) {
    return static_cast<int>(level) >= g_level.load();
}

std::string log_line(LogLevel level, std::string_view msg, const nlohmann::json &fields) {
    // ordered_json keeps ts, level and msg first, where a reader's eye expects them.
    nlohmann::ordered_json line = nlohmann::ordered_json::object();
    line["ts"] = utc_timestamp();
    line["level"] = log_level_name(level);
    line["msg"] = std::string(msg);
    if (fields.is_object()) {
        for (auto it = fields.begin(); it != fields.end(); ++it) {
            if (!it.value().is_null())  // absent beats "error": null on success lines
                line[it.key()] = it.value();
        }
    }
    // replace: a log line must never throw on invalid UTF-8 coming from a peer.
    return line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

void log(LogLevel level, std::string_view msg, const nlohmann::json &fields) {
    if (!log_enabled(level))
        return;
    std::string text = log_line(level, msg, fields);
    text.push_back('\n');
    // One write per line keeps lines whole; a short write to a pipe is retried.
    const char *p = text.data();
    size_t left = text.size();
    while (left > 0) {
        ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n <= 0)
            break;
        p += n;
        left -= static_cast<size_t>(n);
    }
}

}  // namespace darkspere::worker
