// src/ext/jsonb_fields.cpp — reading fields of a jsonb object in C (the worker's job results), where a SELECT
// per field would cost a statement each.
#include "ext/jsonb_fields.hpp"

namespace darkspere {

// jsonb_key — the value of top-level key `key` of a jsonb object, or nullptr when absent.
JsonbValue *jsonb_key(Jsonb *object, const char *key) {
    JsonbValue k;
    k.type = jbvString;
    k.val.string.val = const_cast<char *>(key);
    k.val.string.len = strlen(key);
    return findJsonbValueFromContainer(&object->root, JB_FOBJECT, &k);
}

// jsonb_type_name — jsonb_typeof's name for a value.
const char *jsonb_type_name(const JsonbValue *v) {
    switch (v->type) {
        case jbvNull:
            return "null";
        case jbvString:
            return "string";
        case jbvNumeric:
            return "number";
        case jbvBool:
            return "boolean";
        case jbvBinary:
            return JsonContainerIsArray(v->val.binary.data) ? "array" : "object";
        default:
            return "object";
    }
}

// jsonb_number — a number value as double (for the bounds checks of latency and segments).
double jsonb_number(const JsonbValue *v) {
    return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
}

// jsonb_text — the ->> text of a value: a string as itself, null as nullptr, anything else as its JSON text.
char *jsonb_text(JsonbValue *v) {
    if (v == nullptr || v->type == jbvNull) {
        return nullptr;
    }
    if (v->type == jbvString) {
        return pnstrdup(v->val.string.val, v->val.string.len);
    }
    if (v->type == jbvBinary) {
        return JsonbToCString(nullptr, v->val.binary.data, v->val.binary.len);
    }
    Jsonb *scalar = JsonbValueToJsonb(v);
    return JsonbToCString(nullptr, &scalar->root, VARSIZE(scalar));
}

}  // namespace darkspere
