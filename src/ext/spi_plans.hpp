// src/ext/spi_plans.hpp — statements prepared once per backend, executed through SPI, and their results.
//
// Each concern file declares its SQL as static Statement objects next to the code that runs them, so one
// place knows each statement. A Statement is constant-initialised (no constructor runs at load time); its
// plan is prepared on first use and kept with SPI_keepplan for the life of the backend (the plan cache
// revalidates it after DDL). Values always travel as parameters; SQL text is never built from values.
//
// spi_run returns the statement's rows as a SpiResult, and the result is the only way to read them: nothing
// else in src/ext reads SPI's globals SPI_tuptable / SPI_processed (scripts/check-ext-boundary checks it), so
// a statement run in between — by a helper, a counter flush, a hand-off — cannot change what an earlier
// result reads (docs/architecture.md#spi-results).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

constexpr int kMaxStatementArgs = 20;

struct Statement {
    const char *sql;
    int nargs;
    Oid argtypes[kMaxStatementArgs];
    SPIPlanPtr plan;
};

class SpiResult;

// spi_run — executes a statement (preparing it on first use) and returns its rows. Raises when SPI reports an
// error code. nulls uses SPI's convention: ' ' not null, 'n' null; nullptr means no nulls.
SpiResult spi_run(Statement &statement, Datum *values, const char *nulls, bool read_only, long max_rows = 0);

// SpiResult — what one statement returned: its row count (rows affected, for a statement without RETURNING)
// and its tuple table. The table belongs to the SPI connection that ran the statement and stays valid until
// that connection's SPI_finish, whatever other statements run meanwhile; read a result only before then
// (copy what must outlive it with text_copy or SPI_datumTransfer). Rows are 0-based, columns 1-based, as
// SPI numbers them; a row or column that is not there raises an internal error. Trivially copyable and
// destructible, so it lives in PostgreSQL-zone frames (docs/architecture.md#error-boundary).
class SpiResult {
  public:
    SpiResult() : table_(nullptr), rows_(0) {}  // no rows: what a variable holds before its first statement
    uint64 rows() const { return rows_; }
    bool empty() const { return rows_ == 0; }

    bool is_null(uint64 row, int column) const;
    Datum get_datum(uint64 row, int column, bool *isnull) const;  // points into the table: copy to keep it
    int64 get_int64(uint64 row, int column) const;  // NULL reads as 0; check is_null first where it matters
    int32 get_int32(uint64 row, int column) const;  // NULL reads as 0
    bool get_bool(uint64 row, int column) const;    // NULL reads as false
    // text_copy — the column as a C string allocated in `context` (survives SPI_finish); nullptr when NULL.
    char *text_copy(uint64 row, int column, MemoryContext context) const;
    // The whole row, for SPI_returntuple and friends.
    HeapTuple tuple(uint64 row) const;
    TupleDesc tupdesc() const;

  private:
    friend SpiResult spi_run(Statement &, Datum *, const char *, bool, long);
    SpiResult(SPITupleTable *table, uint64 rows) : table_(table), rows_(rows) {}
    void check(uint64 row, int column) const;

    SPITupleTable *table_;  // nullptr for a statement that returns no rows
    uint64 rows_;
};

// Small Datum helpers for building argument arrays.
inline Datum text_datum(const char *s) {
    return PointerGetDatum(cstring_to_text(s));
}
inline char null_flag(bool isnull) {
    return isnull ? 'n' : ' ';
}

}  // namespace darkspere
