// src/ext/sms_sql.cpp — SMS segment counting (GSM-7 / UCS-2) for SQL and for usage metering.
#include "ext/common_bridge.hpp"
#include "ext/errors.hpp"
#include "ext/sms_text.hpp"
#include "ext/spi_plans.hpp"

namespace darkspere {

static Segments count_or_raise(const char *utf8, size_t len) {
    Segments s;
    check_bridge_status(bridge::count_segments(utf8, len, &s), "body");
    return s;
}

Segments count_sms_segments(const char *utf8) {
    return count_or_raise(utf8, strlen(utf8));
}

}  // namespace darkspere

using namespace darkspere;

// darkspere_sms_segments — encoding, segment count and units (septets or UTF-16 code units) of a body.
DARKSPERE_FUNCTION(darkspere_sms_segments) {
    text *body = PG_GETARG_TEXT_PP(0);
    Segments s = count_or_raise(VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body));
    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE) {
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("sms_segments must return a row")));
    }
    desc = BlessTupleDesc(desc);
    Datum values[3] = {text_datum(s.ucs2 ? "UCS-2" : "GSM-7"), Int32GetDatum(s.segments),
                       Int32GetDatum(s.units)};
    bool nulls[3] = {false, false, false};
    HeapTuple tuple = heap_form_tuple(desc, values, nulls);
    PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}
