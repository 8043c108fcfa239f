// src/ext/version_check.hpp — the library refuses to run against an extension of another version.
//
// darkspere.so is replaced by a package or `make install` before `ALTER EXTENSION darkspere UPDATE` runs, and
// a database can be restored next to a library of another release. A C function reading tables of another
// version's schema would misread them silently; instead every SQL-callable function (DARKSPERE_FUNCTION)
// checks once per backend that pg_extension.extversion equals the version the library was built for.
#pragma once

namespace darkspere {

// Set once the check has passed in this backend; the fast path of every call is this one load.
extern bool installed_version_checked;

// check_installed_version — reads extversion from pg_extension (a catalog index lookup, no SPI) and raises
// 55000 object_not_in_prerequisite_state with a hint when it differs from DARKSPERE_VERSION. Remembers a
// passed check for the backend's life; a failed one is checked again on the next call (the DBA may run
// ALTER EXTENSION … UPDATE in the same session). Skipped, without remembering, while the superuser-only
// setting darkspere.check_version is off.
void check_installed_version();

inline void require_installed_version() {
    if (__builtin_expect(!installed_version_checked, 0)) {
        check_installed_version();
    }
}

// define_version_check_setting — darkspere.check_version, called from _PG_init.
void define_version_check_setting();

}  // namespace darkspere
