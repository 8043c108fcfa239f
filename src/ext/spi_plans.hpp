// src/ext/spi_plans.hpp — statements prepared once per backend and executed through SPI.
//
// Each concern file declares its SQL as static Statement objects next to the code that runs them, so one
// place knows each statement. A Statement is constant-initialised (no constructor runs at load time); its
// plan is prepared on first use and kept with SPI_keepplan for the life of the backend (the plan cache
// revalidates it after DDL). Values always travel as parameters; SQL text is never built from values.
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

constexpr int kMaxStatementArgs = 16;

struct Statement {
    const char *sql;
    int nargs;
    Oid argtypes[kMaxStatementArgs];
    SPIPlanPtr plan;
};

// spi_run — executes a statement (preparing it on first use) and returns SPI_processed. Raises when SPI
// reports an error code. nulls uses SPI's convention: ' ' not null, 'n' null; nullptr means no nulls.
uint64 spi_run(Statement &statement, Datum *values, const char *nulls, bool read_only, long max_rows = 0);

// Accessors for row `row` of the last SPI result; columns are 1-based.
bool spi_is_null(uint64 row, int column);
int64 spi_int64(uint64 row, int column);  // NULL reads as 0; check spi_is_null first where it matters
int32 spi_int32(uint64 row, int column);
bool spi_bool(uint64 row, int column);
Datum spi_datum(uint64 row, int column, bool *isnull);
// spi_text_copy — the column as a C string allocated in `context` (survives SPI_finish); NULL when SQL NULL.
char *spi_text_copy(uint64 row, int column, MemoryContext context);

// Small Datum helpers for building argument arrays.
inline Datum text_datum(const char *s) {
    return PointerGetDatum(cstring_to_text(s));
}
inline char null_flag(bool isnull) {
    return isnull ? 'n' : ' ';
}

}  // namespace darkspere
