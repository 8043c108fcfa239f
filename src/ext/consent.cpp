// src/ext/consent.cpp — compliance: keywords (STOP / START / HELP), opt-outs and the consent events that
// record them.
//
// A keyword is the whole body, one word, compared case-insensitively after trimming surrounding whitespace
// ("stop" counts, "STOP PLEASE" does not). Keyword messages never reach an agent. Every change of consent — a
// keyword, a carrier opt-out reported by the provider — is one consent_events row written by record_consent.
#include "ext/billing.hpp"
#include "ext/consent.hpp"
#include "ext/errors.hpp"
#include "ext/inbound.hpp"
#include "ext/ratelimit.hpp"
#include "ext/sms_text.hpp"
#include "ext/spi_plans.hpp"
#include "ext/validate.hpp"

namespace darkspere {

static const char *const kOptOutWords[] = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END",
                                           "QUIT", "REVOKE",  "OPTOUT",      nullptr};
static const char *const kOptInWords[] = {"START", "YES", "UNSTOP", nullptr};
static const char *const kHelpWords[] = {"HELP", "INFO", nullptr};

static bool word_in(const char *word, const char *const *list) {
    for (const char *const *w = list; *w != nullptr; w++) {
        if (pg_strcasecmp(word, *w) == 0) {
            return true;
        }
    }
    return false;
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

Keyword classify_keyword(const char *body) {
    // The longest keyword is 11 characters; anything longer after trimming is a normal message.
    char word[16];
    const char *start = body;
    while (is_space(*start)) {
        start++;
    }
    const char *end = start + strlen(start);
    while (end > start && is_space(end[-1])) {
        end--;
    }
    size_t len = end - start;
    if (len == 0 || len >= sizeof word) {
        return Keyword::none;
    }
    memcpy(word, start, len);
    word[len] = '\0';
    if (word_in(word, kOptOutWords)) {
        return Keyword::opt_out;
    }
    if (word_in(word, kOptInWords)) {
        return Keyword::opt_in;
    }
    if (word_in(word, kHelpWords)) {
        return Keyword::help;
    }
    return Keyword::none;
}

static Statement kIsOptedOut = {
    "SELECT 1 FROM darkspere.opt_outs WHERE account_id = $1 AND service_number = $2 AND phone = $3",
    3,
    {INT8OID, TEXTOID, TEXTOID},
    nullptr};

bool is_opted_out(int64 account_id, const char *service_number, const char *phone) {
    Datum args[3] = {Int64GetDatum(account_id), text_datum(service_number), text_datum(phone)};
    return !spi_run(kIsOptedOut, args, nullptr, false, 1).empty();
}

// One consent event, and for opt_out / opt_in the opt-out row it makes or removes ($4 action, $5 source).
static Statement kConsent = {
    "WITH o AS (INSERT INTO darkspere.opt_outs (account_id, service_number, phone, source)"
    "           SELECT $1, $2, $3, $5 WHERE $4 = 'opt_out'"
    "           ON CONFLICT (account_id, service_number, phone) DO NOTHING),"
    "     d AS (DELETE FROM darkspere.opt_outs"
    "            WHERE $4 = 'opt_in' AND account_id = $1 AND service_number = $2 AND phone = $3)"
    " INSERT INTO darkspere.consent_events (account_id, service_number, phone, action, source, keyword,"
    "                                       message_sid)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)",
    7,
    {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID},
    nullptr};

void record_consent(int64 account_id, const char *service_number, const char *phone, const char *action,
                    const char *source, const char *keyword, const char *message_sid) {
    Datum args[7] = {Int64GetDatum(account_id),
                     text_datum(service_number),
                     text_datum(phone),
                     text_datum(action),
                     text_datum(source),
                     keyword ? text_datum(keyword) : (Datum)0,
                     message_sid ? text_datum(message_sid) : (Datum)0};
    char nulls[7] = {
        ' ', ' ', ' ', ' ', ' ', null_flag(keyword == nullptr), null_flag(message_sid == nullptr)};
    spi_run(kConsent, args, nulls, false, 0);
}

static Statement kAccountForNumber = {
    "SELECT account_id FROM darkspere.numbers WHERE number = $1", 1, {TEXTOID}, nullptr};

// handle_keyword — records consent for STOP / START / HELP and answers with the account's text. A phone that
// is already opted out gets no text at all (not even HELP) until it opts in again. Consent is always
// recorded, whatever the limits; the reply is not: at most one per keyword, phone and account per window of
// the keyword_reply rule (default 10 minutes), so a flood of keywords costs no flood of texts. A reply that
// is sent is an outbound SMS like any other and counted as sms_out.
Outcome handle_keyword(const Inbound &in, int64 account_id, Keyword keyword, const Segments &seg,
                       bool opted_out, char *help_text, char *opt_out_text, char *opt_in_text) {
    Outcome out = {nullptr, 0, 0, 0, nullptr};
    const char *name;
    char *text;
    switch (keyword) {
        case Keyword::opt_out:
            name = "opt_out";
            text = opted_out ? nullptr : opt_out_text;
            out.disposition = "opted_out";
            break;
        case Keyword::opt_in:
            name = "opt_in";
            text = opt_in_text;
            out.disposition = "opted_in";
            break;
        default:
            name = "help";
            text = opted_out ? nullptr : help_text;
            out.disposition = "help";
            break;
    }
    // Before the consent rows: the phone's ceiling row is the first row of the phone a message locks.
    bool reply = keyword_reply_hit(account_id, in.from_number, name, text != nullptr);
    record_consent(account_id, in.to_number, in.from_number, name, "keyword", in.body, in.message_sid);
    out.message_id = store_inbound(in, account_id, 0, "keyword", seg, 0, out.disposition);
    usage_add(account_id, "sms_in", seg.segments);
    if (reply) {
        out.reply = text;
        usage_add(account_id, "sms_out", count_sms_segments(text).segments);
    }
    return out;
}

}  // namespace darkspere

using namespace darkspere;

// darkspere_record_provider_opt_out — Twilio refused a send with error 21610: the phone opted out at the
// carrier. Recorded like a STOP so nothing more is sent until the phone opts in again.
DARKSPERE_FUNCTION(darkspere_record_provider_opt_out) {
    char *service_number = required_text(fcinfo, 0, "service_number");
    char *phone = required_text(fcinfo, 1, "phone");
    require_e164(service_number, "service_number");
    require_non_empty(phone, "phone");
    SPI_connect();
    Datum number_arg[1] = {text_datum(service_number)};
    SpiResult owner = spi_run(kAccountForNumber, number_arg, nullptr, false, 1);
    if (owner.empty()) {
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("no account has service number %s", service_number)));
    }
    record_consent(owner.get_int64(0, 1), service_number, phone, "opt_out", "provider", nullptr, nullptr);
    SPI_finish();
    PG_RETURN_VOID();
}
