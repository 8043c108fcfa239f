// src/ext/keywords.cpp — compliance keywords (STOP / START / HELP) and the opt-out check.
//
// A keyword is the whole body, one word, compared case-insensitively after trimming surrounding whitespace
// ("stop" counts, "STOP PLEASE" does not). Keyword messages never reach an agent.
#include "ext/darkspere.hpp"
#include "ext/spi_plans.hpp"

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

}  // namespace darkspere
