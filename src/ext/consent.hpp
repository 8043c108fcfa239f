// src/ext/consent.hpp — compliance keywords (STOP / START / HELP), opt-outs and consent events (consent.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

enum class Keyword { none, opt_out, opt_in, help };
Keyword classify_keyword(const char *body);
bool is_opted_out(int64 account_id, const char *service_number, const char *phone);

// record_consent — one consent event (action "opt_out", "opt_in" or "help"; source "keyword" or "provider";
// keyword and message_sid nullptr when there are none), and for opt_out / opt_in the opt-out row itself.
void record_consent(int64 account_id, const char *service_number, const char *phone, const char *action,
                    const char *source, const char *keyword, const char *message_sid);

}  // namespace darkspere
