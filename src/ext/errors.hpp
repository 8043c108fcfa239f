// src/ext/errors.hpp — the error boundary between C++ and PostgreSQL, one mechanism per direction
// (docs/architecture.md#error-boundary).
//
// C++ → PostgreSQL: C++ library code runs only inside common_bridge.cpp, whose noexcept functions catch
// every exception and return a bridge::Status; raise_bridge_status turns a failed status into ereport, in one
// place. PostgreSQL → C++: every other extension file is PostgreSQL-zone code — trivially destructible locals
// only, no std::, no exceptions — so an ereport longjmp skips nothing that matters.
// scripts/check-ext-boundary (ctest) holds src/ext to both rules.
//
// Every SQL-callable function is declared with DARKSPERE_FUNCTION, which first checks, once per backend, that
// the installed extension version is the library's (version_check.hpp), and on Citus asks for two-phase
// commit (citus_commit.hpp).
#pragma once

#include "ext/pg.hpp"
#include "ext/citus_commit.hpp"
#include "ext/version_check.hpp"

namespace darkspere {

// raise_bridge_status — raises the error a bridge status stands for: kOutOfMemory as 53200 out of memory,
// kInvalidUtf8 as 22021 "<subject> is not valid UTF-8", anything else as 22023 "could not compute <subject>".
[[noreturn]] void raise_bridge_status(int status, const char *subject);

// check_bridge_status — returns a status that is not a failure (kOk, or a result ≥ 0); raises the others.
inline int check_bridge_status(int status, const char *subject) {
    if (status < 0) {
        raise_bridge_status(status, subject);
    }
    return status;
}

}  // namespace darkspere

#define DARKSPERE_FUNCTION(name)                       \
    static Datum name##_impl(FunctionCallInfo fcinfo); \
    extern "C" {                                       \
    PG_FUNCTION_INFO_V1(name);                         \
    Datum name(PG_FUNCTION_ARGS);                      \
    }                                                  \
    Datum name(PG_FUNCTION_ARGS) {                     \
        darkspere::require_installed_version();        \
        darkspere::commit_atomically_on_citus();       \
        return name##_impl(fcinfo);                    \
    }                                                  \
    static Datum name##_impl([[maybe_unused]] FunctionCallInfo fcinfo)
