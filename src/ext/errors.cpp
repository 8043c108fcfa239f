// src/ext/errors.cpp — where a failed status of the C++ bridge becomes a PostgreSQL error.
#include "ext/errors.hpp"

#include "ext/common_bridge.hpp"

namespace darkspere {

void raise_bridge_status(int status, const char *subject) {
    switch (status) {
        case bridge::kOutOfMemory:
            ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
            break;
        case bridge::kInvalidUtf8:
            ereport(ERROR,
                    (errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE), errmsg("%s is not valid UTF-8", subject)));
            break;
        default:
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("could not compute %s", subject)));
            break;
    }
    pg_unreachable();
}

}  // namespace darkspere
