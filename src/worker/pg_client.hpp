// src/worker/pg_client.hpp — what a part of the worker needs from the database: send one statement with its
// parameters and get its rows or its error later, on the event loop (PgClient), and whether any connection is
// up. PgPool (pg_pool.hpp) is the implementation; the job runner depends on this interface only, so its logic
// can be tested with a scripted stand-in (test/unit/worker_job_runner_test.cpp).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace darkspere::worker {

using PgParams = std::vector<std::optional<std::string>>;

struct PgResult {
    bool ok = false;
    // unavailable: no connection, or the connection broke; the statement may or may not have run.
    bool unavailable = false;
    std::string sqlstate;  // five characters on an SQL error
    std::string error;     // the server's primary message (or a transport reason)
    std::vector<std::string> columns;
    std::vector<std::vector<std::optional<std::string>>> rows;

    // value — the cell at (row, column name); nullopt when NULL or absent.
    std::optional<std::string> value(size_t row, const std::string &column) const;
};

using PgCallback = std::function<void(PgResult)>;

// Which line a query waits in. Interactive queries (a webhook waiting for its answer) go before background
// ones (claims, acks, ticks), and background work never holds the last free connection, so a webhook does not
// queue behind a backlog of background statements. Background work that waits is always given one connection,
// so a flood of webhooks cannot stop replies from going out.
enum class PgPriority { interactive, background };

class PgClient {
  public:
    virtual ~PgClient() = default;
    // query — runs one statement; on_done runs exactly once, on the event loop, with its rows or its error
    // (unavailable at once when no connection is up).
    virtual void query(std::string sql, PgParams params, PgCallback on_done, PgPriority priority) = 0;
    // connected — how many connections are up (0: statements would fail as unavailable).
    virtual size_t connected() const = 0;
};

}  // namespace darkspere::worker
