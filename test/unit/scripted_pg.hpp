// test/unit/scripted_pg.hpp — a stand-in for the database in worker unit tests: every statement waits until
// the test answers it (ScriptedPg::take, then on_done), so a test decides what the database says and when.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <string>

#include "pg_client.hpp"

namespace darkspere::worker::testing {

struct Statement {
    std::string sql;
    PgParams params;
    PgCallback on_done;
};

class ScriptedPg : public PgClient {
  public:
    void query(std::string sql, PgParams params, PgCallback on_done, PgPriority) override {
        sent.push_back({std::move(sql), std::move(params), std::move(on_done)});
    }
    size_t connected() const override { return up; }

    // count — statements sent and not answered yet whose text contains `what`.
    size_t count(const std::string &what) const {
        return std::count_if(sent.begin(), sent.end(),
                             [&](const Statement &s) { return s.sql.find(what) != std::string::npos; });
    }
    // take — the oldest unanswered statement whose text contains `what` (the test fails without one).
    Statement take(const std::string &what) {
        auto it = std::find_if(sent.begin(), sent.end(),
                               [&](const Statement &s) { return s.sql.find(what) != std::string::npos; });
        if (it == sent.end()) {
            ADD_FAILURE() << "no statement with " << what << " was sent";
            return {what, {}, [](PgResult) {}};
        }
        Statement s = std::move(*it);
        sent.erase(it);
        return s;
    }

    size_t up = 1;
    std::deque<Statement> sent;
};

// row — a one-row result with these columns and values.
inline PgResult row(std::vector<std::string> columns, std::vector<std::optional<std::string>> values) {
    PgResult r;
    r.ok = true;
    r.columns = std::move(columns);
    r.rows.push_back(std::move(values));
    return r;
}

}  // namespace darkspere::worker::testing
