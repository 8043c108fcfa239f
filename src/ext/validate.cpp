// src/ext/validate.cpp — small validation helpers: class-22 errors whose message names the argument and
// value.
#include "ext/sms_text.hpp"
#include "ext/validate.hpp"

#include "ext/common_bridge.hpp"

namespace darkspere {

char *required_text(FunctionCallInfo fcinfo, int argno, const char *argname) {
    if (PG_ARGISNULL(argno)) {
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not be null", argname)));
    }
    return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

char *optional_text(FunctionCallInfo fcinfo, int argno) {
    return PG_ARGISNULL(argno) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

int64 required_int64(FunctionCallInfo fcinfo, int argno, const char *argname) {
    if (PG_ARGISNULL(argno)) {
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not be null", argname)));
    }
    return PG_GETARG_INT64(argno);
}

int32 required_int32(FunctionCallInfo fcinfo, int argno, const char *argname) {
    if (PG_ARGISNULL(argno)) {
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not be null", argname)));
    }
    return PG_GETARG_INT32(argno);
}

void require_e164(const char *value, const char *argname) {
    if (!bridge::is_e164(value)) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("invalid E.164 number for %s: \"%s\"", argname, value),
                        errhint("Use a plus sign followed by 2 to 15 digits, e.g. +14155550100.")));
    }
}

void require_non_empty(const char *value, const char *argname) {
    if (value[0] == '\0') {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s must not be empty", argname)));
    }
}

// require_account_sid — a Twilio AccountSid: "AC" and then letters or digits, 34 characters at most (Twilio's
// are "AC" and 32 hexadecimal digits; shorter ones are accepted so that test fixtures may say "AC1").
void require_account_sid(const char *value, const char *argname) {
    require_non_empty(value, argname);
    size_t len = strlen(value);
    bool ok = len > 2 && len <= 34 && value[0] == 'A' && value[1] == 'C';
    for (size_t i = 2; ok && i < len; i++) {
        ok = (value[i] >= '0' && value[i] <= '9') || (value[i] >= 'a' && value[i] <= 'z') ||
             (value[i] >= 'A' && value[i] <= 'Z');
    }
    if (!ok) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("invalid Twilio AccountSid for %s: \"%s\"", argname, value),
                        errhint("An AccountSid is AC followed by 32 hexadecimal digits, as in the Twilio "
                                "console.")));
    }
}

void require_body_length(const char *body, const char *argname) {
    int chars = pg_mbstrlen(body);
    if (chars > kSmsBodyMaxChars) {
        ereport(ERROR,
                (errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
                 errmsg("%s is %d characters long; the limit is %d", argname, chars, kSmsBodyMaxChars)));
    }
}

void raise_missing(const char *what, int64 id) {
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                    errmsg("%s %lld does not exist", what, static_cast<long long>(id))));
    pg_unreachable();
}

void require_lease(const Interval *lease) {
    if (lease->month != 0 || lease->day != 0 || lease->time <= 0 || lease->time > USECS_PER_DAY) {
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("lease must be between 0 and 24 hours")));
    }
}

void require_one_of(const char *value, const char *const *allowed, const char *argname) {
    for (const char *const *a = allowed; *a != nullptr; a++) {
        if (strcmp(value, *a) == 0) {
            return;
        }
    }
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid %s: \"%s\"", argname, value)));
}

}  // namespace darkspere
