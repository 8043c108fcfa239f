// src/ext/pg.hpp — the one place that includes PostgreSQL headers, with C linkage.
//
// PostgreSQL's headers carry no C++ guards; every extension source includes them through this file so that
// the extern "C" wrapping, the include order (postgres.h first) and the warning suppression live in one
// place.
#pragma once

extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}
