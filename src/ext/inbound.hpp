// src/ext/inbound.hpp — what the steps of receive_sms share: inbound.cpp (the decision pipeline),
// inbound_batch.cpp (receive_sms_batch) and consent.cpp (keywords).
#pragma once

#include "ext/consent.hpp"
#include "ext/pg.hpp"
#include "ext/sms_text.hpp"

namespace darkspere {

// The result row of receive_sms.
struct Outcome {
    const char *disposition;
    int64 session_id;  // 0 → NULL
    int64 message_id;
    int64 agent_id;
    char *reply;  // nullptr → NULL
};

struct Inbound {
    char *provider_account;
    char *to_number;
    char *from_number;
    char *body;
    char *message_sid;
    int32 num_media;
    char *request_id;
    // The account the caller says the number belongs to (receive_sms_for, the entry point Citus delegates to
    // that account's node); 0: whichever account the number belongs to.
    int64 account_id = 0;
};

// receive — everything DarkSpere decides about one inbound SMS, inside the caller's SPI connection; texts of
// the result are allocated in `caller`.
Outcome receive(const Inbound &in, MemoryContext caller);
// validate_inbound — the checks of receive_sms's arguments that are not NULL checks.
void validate_inbound(const Inbound &in);
// store_inbound — stores the message with its status and traces it as received with `disposition` (nullptr:
// the caller routes it at once and its job's INSERT traces it, see enqueue_agent_call); returns its id.
int64 store_inbound(const Inbound &in, int64 account_id, int64 session_id, const char *status,
                    const Segments &seg, int64 agent_id, const char *disposition);
// handle_keyword — STOP / START / HELP: consent recorded, the account's text as the reply (consent.cpp).
Outcome handle_keyword(const Inbound &in, int64 account_id, Keyword keyword, const Segments &seg,
                       bool opted_out, char *help_text, char *opt_out_text, char *opt_in_text);

}  // namespace darkspere
