// src/worker/signature_failures.cpp — batched reports of refused webhook signatures (see
// signature_failures.hpp).
#include "signature_failures.hpp"

#include "log.hpp"

namespace darkspere::worker {

namespace {
constexpr char SQL_REPORT[] = "SELECT darkspere.report_signature_failures($1::inet[], $2::int[])";
}  // namespace

PgParams signature_failure_params(const std::map<std::string, int> &counts) {
    // Addresses come from the socket (digits, dots, colons, hex): no quoting is needed inside the literal,
    // but each is quoted anyway so an IPv6 zone or anything unexpected cannot split the array.
    std::string sources = "{", numbers = "{";
    for (const auto &[source, count] : counts) {
        if (sources.size() > 1) {
            sources += ',';
            numbers += ',';
        }
        sources += '"';
        for (char c : source)
            if (c != '"' && c != '\\')
                sources += c;
        sources += '"';
        numbers += std::to_string(count);
    }
    return {sources + "}", numbers + "}"};
}

void SignatureFailures::add(const std::string &source) {
    if (counts_.size() < kMaxSources || counts_.count(source))
        ++counts_[source];
    if (armed_)
        return;
    armed_ = true;
    timer_.expires_after(std::chrono::seconds(1));
    timer_.async_wait([this](const boost::system::error_code &ec) {
        armed_ = false;
        if (!ec)
            flush();
    });
}

void SignatureFailures::flush() {
    if (counts_.empty())
        return;
    PgParams params = signature_failure_params(counts_);
    size_t sources = counts_.size();
    counts_.clear();
    db_.query(
        SQL_REPORT, std::move(params),
        [sources](PgResult r) {
            if (!r.ok)  // lost for the alert rule, not for the log: each refusal was logged (rate-limited)
                        // already
                log_warn("signature failures not reported", {{"sources", sources}, {"error", r.error}});
        },
        PgPriority::background);
}

}  // namespace darkspere::worker
