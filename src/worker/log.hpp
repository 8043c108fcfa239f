// src/worker/log.hpp — the worker's one logging call: JSON lines on stderr.
//
// Every line is one JSON object written with a single write(2), so lines from a busy process never
// interleave. Fields carry context (request_id, job_id, …); secrets (auth tokens, credentials) are never
// passed in.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace darkspere::worker {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };

// parse_log_level — true and sets *out when text names a level (debug, info, warn, error).
bool parse_log_level(std::string_view text, LogLevel *out);
const char *log_level_name(LogLevel level);

void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);

// log_line — the JSON text of one log line (without the newline); exposed for tests.
std::string log_line(LogLevel level, std::string_view msg, const nlohmann::json &fields);

// log — writes one line when level is enabled. fields must be a JSON object (or null).
void log(LogLevel level, std::string_view msg, const nlohmann::json &fields = nullptr);

inline void log_debug(std::string_view msg, const nlohmann::json &fields = nullptr) {
    if (log_enabled(LogLevel::debug))
        log(LogLevel::debug, msg, fields);
}
inline void log_info(std::string_view msg, const nlohmann::json &fields = nullptr) {
    log(LogLevel::info, msg, fields);
}
inline void log_warn(std::string_view msg, const nlohmann::json &fields = nullptr) {
    log(LogLevel::warn, msg, fields);
}
inline void log_error(std::string_view msg, const nlohmann::json &fields = nullptr) {
    log(LogLevel::error, msg, fields);
}

}  // namespace darkspere::worker
