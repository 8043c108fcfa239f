// src/worker/signature_failures.hpp — refused webhook signatures counted per source address and reported to
// the database in batches (darkspere.report_signature_failures, at most once a second), so the
// failed_signatures alert rule (issue #14) has data without one database call per refused request: a flood of
// forged webhooks costs one small statement a second.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "pg_client.hpp"

namespace darkspere::worker {

// signature_failure_params — the two array literals ({addr,…} and {count,…}) of one batch, in address order.
PgParams signature_failure_params(const std::map<std::string, int> &counts);

class SignatureFailures {
  public:
    SignatureFailures(boost::asio::io_context &io, PgClient &db) : timer_(io), db_(db) {}
    // add — one refused signature from `source` (an IP address as text); reported within about a second.
    void add(const std::string &source);
    // pending — sources counted and not yet sent (for tests).
    const std::map<std::string, int> &pending() const { return counts_; }
    static constexpr size_t kMaxSources = 10000;  // past this, further new sources wait for the next batch

  private:
    void flush();

    boost::asio::steady_timer timer_;
    PgClient &db_;
    std::map<std::string, int> counts_;
    bool armed_ = false;
};

}  // namespace darkspere::worker
