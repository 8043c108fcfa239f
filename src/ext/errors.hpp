// src/ext/errors.hpp — the error boundary between C++ exceptions and PostgreSQL's ereport.
//
// Every SQL-callable function is declared with DARKSPERE_FUNCTION, which runs the implementation inside
// try/catch, copies the message and SQLSTATE of any exception into a stack buffer, leaves the catch block (so
// destructors and the exception object are gone) and only then raises ereport(ERROR). No C++ exception ever
// unwinds through a PostgreSQL frame (docs/architecture.md#error-boundary). Before anything else it checks,
// once per backend, that the installed extension version is the library's (version_check.hpp).
//
// Implementations are written in "PostgreSQL zone" style (trivially destructible locals only) wherever they
// call PostgreSQL, so an ereport longjmp skips nothing that matters; C++-zone helpers (std::string,
// src/common) never call PostgreSQL functions that can raise.
#pragma once

#include "ext/pg.hpp"
#include "ext/version_check.hpp"

#include <stdexcept>
#include <string>

namespace darkspere {

// SqlError — an expected error with its SQLSTATE, thrown from C++-zone code.
class SqlError : public std::runtime_error {
  public:
    SqlError(int sqlstate, const std::string &message) : std::runtime_error(message), sqlstate_(sqlstate) {}
    int sqlstate() const { return sqlstate_; }

  private:
    int sqlstate_;
};

constexpr int kErrorMessageSize = 512;

// report_cxx_error — raises the error recorded by the boundary; called after the catch block has ended.
[[noreturn]] void report_cxx_error(int sqlstate, const char *message, const char *function);

// palloc_copy — copies a C++ string into palloc'd memory of the current context without ever longjmp'ing on
// out-of-memory (throws std::bad_alloc instead), so it is safe in C++-zone code.
char *palloc_copy(const std::string &s);
text *text_copy(const std::string &s);

}  // namespace darkspere

#define DARKSPERE_FUNCTION(name)                                                     \
    static Datum name##_impl(FunctionCallInfo fcinfo);                               \
    extern "C" {                                                                     \
    PG_FUNCTION_INFO_V1(name);                                                       \
    Datum name(PG_FUNCTION_ARGS);                                                    \
    }                                                                                \
    Datum name(PG_FUNCTION_ARGS) {                                                   \
        int failed_sqlstate = 0;                                                     \
        char failed_message[darkspere::kErrorMessageSize];                           \
        darkspere::require_installed_version();                                      \
        try {                                                                        \
            return name##_impl(fcinfo);                                              \
        } catch (const darkspere::SqlError &e) {                                     \
            failed_sqlstate = e.sqlstate();                                          \
            strlcpy(failed_message, e.what(), sizeof failed_message);                \
        } catch (const std::bad_alloc &) {                                           \
            failed_sqlstate = ERRCODE_OUT_OF_MEMORY;                                 \
            strlcpy(failed_message, "out of memory", sizeof failed_message);         \
        } catch (const std::exception &e) {                                          \
            failed_sqlstate = ERRCODE_INTERNAL_ERROR;                                \
            strlcpy(failed_message, e.what(), sizeof failed_message);                \
        } catch (...) {                                                              \
            failed_sqlstate = ERRCODE_INTERNAL_ERROR;                                \
            strlcpy(failed_message, "unknown C++ exception", sizeof failed_message); \
        }                                                                            \
        darkspere::report_cxx_error(failed_sqlstate, failed_message, #name);         \
    }                                                                                \
    static Datum name##_impl([[maybe_unused]] FunctionCallInfo fcinfo)
