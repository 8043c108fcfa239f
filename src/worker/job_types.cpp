// src/worker/job_types.cpp — the job kinds and states and their SQL strings, and job ids read from text (see
// job_types.hpp).
#include "job_types.hpp"

#include <charconv>

namespace darkspere::worker {

namespace {

// The one table of each mapping: sql_text and *_from_sql both read it, so they cannot disagree.
struct KindName {
    JobKind kind;
    std::string_view text;
};
constexpr KindName KIND_NAMES[] = {{JobKind::agent_call, "agent_call"},
                                   {JobKind::sms_send, "sms_send"},
                                   {JobKind::health_probe, "health_probe"},
                                   {JobKind::stripe_meter, "stripe_meter"},
                                   {JobKind::alert_notify, "alert_notify"}};

struct StateName {
    JobState state;
    std::string_view text;
};
constexpr StateName STATE_NAMES[] = {{JobState::pending, "pending"},
                                     {JobState::running, "running"},
                                     {JobState::done, "done"},
                                     {JobState::dead, "dead"}};

template <typename T>
std::optional<T> parse_integer(const std::optional<std::string> &text) {
    if (!text || text->empty())
        return std::nullopt;
    T value{};
    const char *first = text->data(), *last = first + text->size();
    auto [end, ec] = std::from_chars(first, last, value);
    if (ec != std::errc() || end != last)
        return std::nullopt;
    return value;
}

}  // namespace

std::string_view sql_text(JobKind kind) {
    for (const auto &n : KIND_NAMES)
        if (n.kind == kind)
            return n.text;
    return "unknown";  // unreachable: every enumerator has its row
}

std::string_view sql_text(JobState state) {
    for (const auto &n : STATE_NAMES)
        if (n.state == state)
            return n.text;
    return "unknown";  // unreachable: every enumerator has its row
}

std::optional<JobKind> job_kind_from_sql(std::string_view text) {
    for (const auto &n : KIND_NAMES)
        if (n.text == text)
            return n.kind;
    return std::nullopt;
}

std::optional<JobState> job_state_from_sql(std::string_view text) {
    for (const auto &n : STATE_NAMES)
        if (n.text == text)
            return n.state;
    return std::nullopt;
}

std::string job_kind_label(std::optional<JobKind> kind) {
    return kind ? std::string(sql_text(*kind)) : std::string("unknown");
}

std::string job_state_label(std::optional<JobState> state) {
    return state ? std::string(sql_text(*state)) : std::string("unknown");
}

std::optional<JobId> parse_job_id(const std::optional<std::string> &text) {
    return parse_integer<JobId>(text);
}

std::optional<Attempt> parse_attempt(const std::optional<std::string> &text) {
    return parse_integer<Attempt>(text);
}

}  // namespace darkspere::worker
