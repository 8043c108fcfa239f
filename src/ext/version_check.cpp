// src/ext/version_check.cpp — compares the installed extension version with the library's own (see the
// header).
#include "ext/version_check.hpp"

#include "ext/pg.hpp"

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "catalog/pg_extension.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
}

// The Makefile passes default_version from darkspere.control; the control file is the only place it is
// written.
#ifndef DARKSPERE_VERSION
#error "DARKSPERE_VERSION must be defined (the Makefile reads it from darkspere.control)"
#endif

namespace darkspere {

bool installed_version_checked = false;
static bool check_version = true;

void define_version_check_setting() {
    DefineCustomBoolVariable(
        "darkspere.check_version",
        "Refuse to run when the installed extension version differs from the library's.",
        "Only for loading test data into an older schema; a mismatch means SQL and C disagree about tables.",
        &check_version, true, PGC_SUSET, 0, nullptr, nullptr, nullptr);
}

// installed_version — extversion of the darkspere row of pg_extension, palloc'd; nullptr when absent.
static char *installed_version() {
    Relation rel = table_open(ExtensionRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
                CStringGetDatum("darkspere"));
    SysScanDesc scan = systable_beginscan(rel, ExtensionNameIndexId, true, nullptr, 1, &key);
    char *version = nullptr;
    HeapTuple tuple = systable_getnext(scan);
    if (HeapTupleIsValid(tuple)) {
        bool isnull;
        Datum d = heap_getattr(tuple, Anum_pg_extension_extversion, RelationGetDescr(rel), &isnull);
        if (!isnull) {
            version = TextDatumGetCString(d);
        }
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return version;
}

void check_installed_version() {
    if (!check_version) {
        return;
    }
    const char *built = DARKSPERE_VERSION;
    char *installed = installed_version();
    if (installed == nullptr) {
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("the darkspere library is used in a database without the darkspere extension"),
                        errhint("Run CREATE EXTENSION darkspere.")));
    }
    if (strcmp(installed, built) != 0) {
        // One hint for both directions: a database newer than the library is rarer (a package downgrade).
        ereport(
            ERROR,
            (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
             errmsg(
                 "darkspere extension version %s is installed in this database, but the darkspere library is "
                 "version %s",
                 installed, built),
             errdetail("The SQL definitions and the shared library of different versions disagree about "
                       "tables and functions, so darkspere refuses to run until they match."),
             errhint("Run ALTER EXTENSION darkspere UPDATE to bring the database to %s, or install the "
                     "library of version %s if the database is the newer one.",
                     built, installed)));
    }
    installed_version_checked = true;
}

}  // namespace darkspere
