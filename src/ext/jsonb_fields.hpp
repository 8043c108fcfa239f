// src/ext/jsonb_fields.hpp — reading fields of a jsonb object in C (jsonb_fields.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

JsonbValue *jsonb_key(Jsonb *object, const char *key);  // top-level key of an object; nullptr when absent
const char *jsonb_type_name(const JsonbValue *v);       // as jsonb_typeof names it
double jsonb_number(const JsonbValue *v);               // a jbvNumeric value as double
char *jsonb_text(JsonbValue *v);                        // as ->> gives it: nullptr for null or absent

}  // namespace darkspere
