// src/ext/validate.hpp — argument checks that raise errors naming the argument and the value (validate.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

char *required_text(FunctionCallInfo fcinfo, int argno, const char *argname);
char *optional_text(FunctionCallInfo fcinfo, int argno);
int64 required_int64(FunctionCallInfo fcinfo, int argno, const char *argname);
int32 required_int32(FunctionCallInfo fcinfo, int argno, const char *argname);
void require_e164(const char *value, const char *argname);
void require_non_empty(const char *value, const char *argname);
void require_account_sid(const char *value, const char *argname);  // "AC" + up to 32 letters or digits
void require_body_length(const char *body, const char *argname);
void require_one_of(const char *value, const char *const *allowed, const char *argname);
void require_lease(const Interval *lease);  // more than 0, at most 24 hours, no months or days
// raise_missing — 42704 undefined_object, "<what> <id> does not exist": the row a caller named is not there.
[[noreturn]] void raise_missing(const char *what, int64 id);

}  // namespace darkspere
