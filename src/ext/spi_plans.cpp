// src/ext/spi_plans.cpp — prepared-statement cache and result accessors over SPI.
#include "ext/spi_plans.hpp"

namespace darkspere {

static SPIPlanPtr prepared_plan(Statement &statement) {
    if (statement.plan == nullptr) {
        SPIPlanPtr plan = SPI_prepare(statement.sql, statement.nargs, statement.argtypes);
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

uint64 spi_run(Statement &statement, Datum *values, const char *nulls, bool read_only, long max_rows) {
    int rc = SPI_execute_plan(prepared_plan(statement), values, nulls, read_only, max_rows);
    if (rc < 0) {
        elog(ERROR, "darkspere: statement failed: %s", SPI_result_code_string(rc));
    }
    return SPI_processed;
}

Datum spi_datum(uint64 row, int column, bool *isnull) {
    return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column, isnull);
}

bool spi_is_null(uint64 row, int column) {
    bool isnull;
    (void)spi_datum(row, column, &isnull);
    return isnull;
}

int64 spi_int64(uint64 row, int column) {
    bool isnull;
    Datum d = spi_datum(row, column, &isnull);
    return isnull ? 0 : DatumGetInt64(d);
}

int32 spi_int32(uint64 row, int column) {
    bool isnull;
    Datum d = spi_datum(row, column, &isnull);
    return isnull ? 0 : DatumGetInt32(d);
}

bool spi_bool(uint64 row, int column) {
    bool isnull;
    Datum d = spi_datum(row, column, &isnull);
    return isnull ? false : DatumGetBool(d);
}

char *spi_text_copy(uint64 row, int column, MemoryContext context) {
    bool isnull;
    Datum d = spi_datum(row, column, &isnull);
    if (isnull) {
        return nullptr;
    }
    MemoryContext old = MemoryContextSwitchTo(context);
    char *s = TextDatumGetCString(d);
    MemoryContextSwitchTo(old);
    return s;
}

}  // namespace darkspere
