// src/ext/errors.cpp — raising errors recorded by the C++/PostgreSQL boundary, and no-longjmp copies.
#include "ext/errors.hpp"

#include <new>

namespace darkspere {

void report_cxx_error(int sqlstate, const char *message, const char *function) {
    if (sqlstate == ERRCODE_INTERNAL_ERROR) {
        ereport(ERROR, (errcode(sqlstate), errmsg("%s", message),
                        errdetail("Raised by C++ function %s.", function)));
    }
    ereport(ERROR, (errcode(sqlstate), errmsg("%s", message)));
    pg_unreachable();
}

char *palloc_copy(const std::string &s) {
    char *copy = static_cast<char *>(palloc_extended(s.size() + 1, MCXT_ALLOC_NO_OOM));
    if (copy == nullptr) {
        throw std::bad_alloc();
    }
    memcpy(copy, s.data(), s.size());
    copy[s.size()] = '\0';
    return copy;
}

text *text_copy(const std::string &s) {
    text *t = static_cast<text *>(palloc_extended(VARHDRSZ + s.size(), MCXT_ALLOC_NO_OOM));
    if (t == nullptr) {
        throw std::bad_alloc();
    }
    SET_VARSIZE(t, VARHDRSZ + s.size());
    memcpy(VARDATA(t), s.data(), s.size());
    return t;
}

}  // namespace darkspere
