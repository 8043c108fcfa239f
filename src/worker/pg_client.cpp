// src/worker/pg_client.cpp — reading a statement's result (see pg_client.hpp).
#include "pg_client.hpp"

namespace darkspere::worker {

std::optional<std::string> PgResult::value(size_t row, const std::string &column) const {
    if (row >= rows.size())
        return std::nullopt;
    for (size_t i = 0; i < columns.size() && i < rows[row].size(); ++i) {
        if (columns[i] == column)
            return rows[row][i];
    }
    return std::nullopt;
}

}  // namespace darkspere::worker
