// src/ext/spi_plans.cpp — prepared-statement cache and the result of each statement, over SPI.
#include "ext/spi_plans.hpp"

#include "ext/citus_commit.hpp"

namespace darkspere {

// With Citus loaded, every statement is planned with its parameters' values (a custom plan), never
// generically. For a generic plan of a statement on one shard, Citus 13.2 picks the shard at execution and
// keeps a plan of the shard's statement for the next call, which it then never finds: every call deparses,
// parses and plans the shard's statement again and keeps one more plan in the statement's memory, so a
// backend of a long-lived connection grows with every text (citusdata/citus#8824, fixed after 13.2.2;
// docs/scaling.md). With the values, Citus plans a one-table statement straight against the shard. On plain
// PostgreSQL the choice stays PostgreSQL's.
static SPIPlanPtr prepared_plan(Statement &statement) {
    if (statement.plan == nullptr) {
        SPIPlanPtr plan = SPI_prepare_cursor(statement.sql, statement.nargs, statement.argtypes,
                                             citus_is_loaded() ? CURSOR_OPT_CUSTOM_PLAN : 0);
        if (plan == nullptr) {
            elog(ERROR, "darkspere: could not prepare statement: %s", SPI_result_code_string(SPI_result));
        }
        if (SPI_keepplan(plan) != 0) {
            elog(ERROR, "darkspere: could not keep prepared statement");
        }
        statement.plan = plan;
    }
    return statement.plan;
}

// The one place that reads SPI's globals: right after the statement ran, before anything else can.
SpiResult spi_run(Statement &statement, Datum *values, const char *nulls, bool read_only, long max_rows) {
    int rc = SPI_execute_plan(prepared_plan(statement), values, nulls, read_only, max_rows);
    if (rc < 0) {
        elog(ERROR, "darkspere: statement failed: %s", SPI_result_code_string(rc));
    }
    return SpiResult(SPI_tuptable, SPI_processed);
}

void SpiResult::check(uint64 row, int column) const {
    if (table_ == nullptr || row >= rows_ || column < 1 || column > table_->tupdesc->natts) {
        elog(ERROR, "darkspere: no row %llu column %d in a result of %llu rows",
             static_cast<unsigned long long>(row), column, static_cast<unsigned long long>(rows_));
    }
}

Datum SpiResult::get_datum(uint64 row, int column, bool *isnull) const {
    check(row, column);
    return SPI_getbinval(table_->vals[row], table_->tupdesc, column, isnull);
}

bool SpiResult::is_null(uint64 row, int column) const {
    bool isnull;
    (void)get_datum(row, column, &isnull);
    return isnull;
}

int64 SpiResult::get_int64(uint64 row, int column) const {
    bool isnull;
    Datum d = get_datum(row, column, &isnull);
    return isnull ? 0 : DatumGetInt64(d);
}

int32 SpiResult::get_int32(uint64 row, int column) const {
    bool isnull;
    Datum d = get_datum(row, column, &isnull);
    return isnull ? 0 : DatumGetInt32(d);
}

bool SpiResult::get_bool(uint64 row, int column) const {
    bool isnull;
    Datum d = get_datum(row, column, &isnull);
    return isnull ? false : DatumGetBool(d);
}

char *SpiResult::text_copy(uint64 row, int column, MemoryContext context) const {
    bool isnull;
    Datum d = get_datum(row, column, &isnull);
    if (isnull) {
        return nullptr;
    }
    MemoryContext old = MemoryContextSwitchTo(context);
    char *s = TextDatumGetCString(d);
    MemoryContextSwitchTo(old);
    return s;
}

HeapTuple SpiResult::tuple(uint64 row) const {
    check(row, 1);
    return table_->vals[row];
}

TupleDesc SpiResult::tupdesc() const {
    if (table_ == nullptr) {
        elog(ERROR, "darkspere: the statement returned no rows");
    }
    return table_->tupdesc;
}

}  // namespace darkspere
