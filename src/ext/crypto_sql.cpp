// src/ext/crypto_sql.cpp — webhook signatures for SQL: Twilio X-Twilio-Signature and Stripe-Signature.
//
// The algorithms live in src/common (shared with the worker) and are reached through common_bridge. Params
// arrive as a jsonb object {"Name": "value"}; a repeated form parameter is an array {"Digits": ["1", "2"]}.
#include "ext/common_bridge.hpp"
#include "ext/errors.hpp"
#include "ext/jsonb_fields.hpp"
#include "ext/validate.hpp"

namespace darkspere {

// param_count — how many (name, value) pairs read_params makes of an object: one per key, but one per element
// for an array (and one for an empty array).
static int param_count(Jsonb *params) {
    int count = 0;
    JsonbIterator *it = JsonbIteratorInit(&params->root);
    JsonbValue v;
    JsonbIteratorToken token;
    while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE) {
        if (token != WJB_VALUE) {
            continue;
        }
        if (v.type == jbvBinary && JsonContainerIsArray(v.val.binary.data)) {
            count += Max(1, static_cast<int>(JsonContainerSize(v.val.binary.data)));
        } else {
            count++;
        }
    }
    return count;
}

// read_params — the form parameters of a jsonb object, as (name, value) pairs in the object's key order,
// walked in C without SPI (so the IMMUTABLE functions below are truly immutable). Each value is its ->> text:
// a string as itself, a number, boolean or object as its JSON text, null as "". An array gives one pair per
// element, each as its ->> text — except that an empty array, or a null element, gives the whole array's
// JSON text (what the former SQL, COALESCE(element, value #>> '{}'), gave; test/regress 090 pins it).
static bridge::Params read_params(Jsonb *params) {
    if (!JB_ROOT_IS_OBJECT(params)) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("params must be a jsonb object")));
    }
    int capacity = param_count(params);
    const char **names = static_cast<const char **>(palloc(sizeof(char *) * (capacity + 1)));
    const char **values = static_cast<const char **>(palloc(sizeof(char *) * (capacity + 1)));
    int rows = 0;
    const char *name = nullptr;
    JsonbIterator *it = JsonbIteratorInit(&params->root);
    JsonbValue v;
    JsonbIteratorToken token;
    while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE) {
        if (token == WJB_KEY) {
            name = pnstrdup(v.val.string.val, v.val.string.len);
            continue;
        }
        if (token != WJB_VALUE) {
            continue;
        }
        if (v.type == jbvBinary && JsonContainerIsArray(v.val.binary.data) &&
            JsonContainerSize(v.val.binary.data) > 0) {
            JsonbIterator *elements = JsonbIteratorInit(v.val.binary.data);
            JsonbValue element;
            JsonbIteratorToken element_token;
            while ((element_token = JsonbIteratorNext(&elements, &element, true)) != WJB_DONE) {
                if (element_token != WJB_ELEM) {
                    continue;
                }
                char *value = jsonb_text(&element);
                names[rows] = name;
                values[rows] = value != nullptr ? value : jsonb_text(&v);
                rows++;
            }
        } else {
            char *value = jsonb_text(&v);
            names[rows] = name;
            values[rows] = value != nullptr ? value : "";
            rows++;
        }
    }
    Assert(rows <= capacity);
    bridge::Params list = {names, values, rows};
    return list;
}

}  // namespace darkspere

using namespace darkspere;

// darkspere_twilio_signature — the X-Twilio-Signature Twilio would send for url and params.
DARKSPERE_FUNCTION(darkspere_twilio_signature) {
    char *token = required_text(fcinfo, 0, "auth_token");
    char *url = required_text(fcinfo, 1, "url");
    if (PG_ARGISNULL(2)) {
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("params must not be null")));
    }
    require_non_empty(token, "auth_token");
    bridge::Params params = read_params(PG_GETARG_JSONB_P(2));
    char signature[29];
    check_bridge_status(bridge::twilio_signature(token, url, params, signature), "the signature");
    PG_RETURN_TEXT_P(cstring_to_text(signature));
}

// darkspere_twilio_signature_valid — true when signature matches url and params under the auth token, for
// the URL as given or any of its port variants. A missing signature or token is simply invalid.
DARKSPERE_FUNCTION(darkspere_twilio_signature_valid) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3)) {
        PG_RETURN_BOOL(false);
    }
    char *token = text_to_cstring(PG_GETARG_TEXT_PP(0));
    char *url = text_to_cstring(PG_GETARG_TEXT_PP(1));
    char *signature = text_to_cstring(PG_GETARG_TEXT_PP(3));
    bridge::Params params = read_params(PG_GETARG_JSONB_P(2));
    int rc =
        check_bridge_status(bridge::twilio_signature_valid(token, url, params, signature), "the signature");
    PG_RETURN_BOOL(rc == 1);
}

// darkspere_stripe_signature_valid — Stripe-Signature check of the raw payload at time `at`, rejecting
// timestamps more than tolerance_s away in either direction.
DARKSPERE_FUNCTION(darkspere_stripe_signature_valid) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2)) {
        PG_RETURN_BOOL(false);
    }
    int32 tolerance_s = required_int32(fcinfo, 3, "tolerance_s");
    if (tolerance_s < 0) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("tolerance_s must not be negative: %d", tolerance_s)));
    }
    if (PG_ARGISNULL(4)) {
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("at must not be null")));
    }
    char *secret = text_to_cstring(PG_GETARG_TEXT_PP(0));
    text *payload = PG_GETARG_TEXT_PP(1);
    char *header = text_to_cstring(PG_GETARG_TEXT_PP(2));
    TimestampTz at = PG_GETARG_TIMESTAMPTZ(4);
    // Seconds since the Unix epoch; PostgreSQL timestamps count microseconds from 2000-01-01.
    long long now_unix = (at / USECS_PER_SEC) + (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
    int rc = check_bridge_status(
        bridge::stripe_signature_valid(secret, VARDATA_ANY(payload), VARSIZE_ANY_EXHDR(payload), header,
                                       tolerance_s, now_unix),
        "the signature");
    PG_RETURN_BOOL(rc == 1);
}
