// src/ext/crypto_sql.cpp — webhook signatures for SQL: Twilio X-Twilio-Signature and Stripe-Signature.
//
// The algorithms live in src/common (shared with the worker) and are reached through common_bridge. Params
// arrive as a jsonb object {"Name": "value"}; a repeated form parameter is an array {"Digits": ["1", "2"]}.
#include "ext/common_bridge.hpp"
#include "ext/darkspere.hpp"
#include "ext/errors.hpp"
#include "ext/spi_plans.hpp"

namespace darkspere {

// Flattens the jsonb params into (name, value) rows; arrays give one row per element.
static Statement kParams = {
    "SELECT e.key, COALESCE(v.value, e.value #>> '{}')"
    "  FROM pg_catalog.jsonb_each($1) e"
    "  LEFT JOIN LATERAL pg_catalog.jsonb_array_elements_text("
    "       CASE WHEN pg_catalog.jsonb_typeof(e.value) = 'array' THEN e.value END) v(value) ON true",
    1,
    {JSONBOID},
    nullptr};

// read_params — the form parameters of a jsonb object, copied into the caller's memory context.
static bridge::Params read_params(Jsonb *params) {
    MemoryContext caller = CurrentMemoryContext;
    if (!JB_ROOT_IS_OBJECT(params)) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("params must be a jsonb object")));
    }
    SPI_connect();
    Datum args[1] = {JsonbPGetDatum(params)};
    uint64 rows = spi_run(kParams, args, nullptr, true, 0);
    const char **names = static_cast<const char **>(MemoryContextAlloc(caller, sizeof(char *) * (rows + 1)));
    const char **values = static_cast<const char **>(MemoryContextAlloc(caller, sizeof(char *) * (rows + 1)));
    for (uint64 r = 0; r < rows; r++) {
        names[r] = spi_text_copy(r, 1, caller);
        char *value = spi_text_copy(r, 2, caller);
        values[r] = value != nullptr ? value : "";
    }
    SPI_finish();
    bridge::Params list = {names, values, static_cast<int>(rows)};
    return list;
}

static void raise_bridge_error(int rc) {
    if (rc == bridge::kOutOfMemory) {
        ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
    }
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("could not compute the signature")));
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
    int rc = bridge::twilio_signature(token, url, params, signature);
    if (rc != bridge::kOk) {
        raise_bridge_error(rc);
    }
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
    int rc = bridge::twilio_signature_valid(token, url, params, signature);
    if (rc < 0) {
        raise_bridge_error(rc);
    }
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
    int rc = bridge::stripe_signature_valid(secret, VARDATA_ANY(payload), VARSIZE_ANY_EXHDR(payload), header,
                                            tolerance_s, now_unix);
    if (rc < 0) {
        raise_bridge_error(rc);
    }
    PG_RETURN_BOOL(rc == 1);
}
