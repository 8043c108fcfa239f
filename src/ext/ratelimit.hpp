// src/ext/ratelimit.hpp — fixed-window rate limits per scope and subject (ratelimit.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

enum class LimitVerdict { allowed, limited, blocked };
LimitVerdict rate_limit_hit(const char *scope, const char *subject, int cost, TimestampTz *blocked_until);
// Per-phone limits are per tenant: scope "phone" (inbound) and "phone_out" (outbound) count subject
// "<account_id>:<phone>", so one tenant's traffic with a phone never blocks the phone with another tenant.
// "phone_ceiling" counts the bare phone across every tenant, a separate and higher rule; "keyword_reply"
// counts "<account_id>:<phone>:<keyword>" (at most one STOP / START / HELP reply per window).
constexpr const char *kPhoneScope = "phone";
constexpr const char *kPhoneOutScope = "phone_out";
constexpr const char *kPhoneCeilingScope = "phone_ceiling";
constexpr const char *kKeywordReplyScope = "keyword_reply";
char *tenant_subject(int64 account_id, const char *phone);  // "<account_id>:<phone>", palloc'd
// DS_LIMIT_RULE_OF — the rule of a scope for a subject (SQL expressions): the subject's override, else the
// scope's rule; columns max_hits, window_s, block_s; no row when the scope has none.
#define DS_LIMIT_RULE_OF(scope, subject)                                                                 \
    "SELECT COALESCE(o.max_hits, r.max_hits) AS max_hits, COALESCE(o.window_s, r.window_s) AS window_s," \
    "       COALESCE(o.block_s, r.block_s) AS block_s"                                                   \
    "  FROM darkspere.rate_limit_rules r"                                                                \
    "  LEFT JOIN darkspere.rate_limit_overrides o ON o.scope = r.scope AND o.subject = " subject         \
    " WHERE r.scope = " scope
// LimitRule — a row of DS_LIMIT_RULE_OF; known false when the scope has no rule.
struct LimitRule {
    bool known;
    int32 max_hits;
    int32 window_s;
    int32 block_s;
};
// PhoneRules — the rules of one inbound message's hits: the phone's ceiling (kPhoneCeilingScope, the bare
// phone) and the tenant's rule (kPhoneScope, tenant_subject). receive_sms reads them with the account's plan.
struct PhoneRules {
    LimitRule ceiling;
    LimitRule tenant;
};
// phone_limit_hit — one inbound message from the phone to the account: counted by the tenant's rule and by
// the phone's ceiling in one statement (ceiling row locked first); a message either rule refuses is counted
// by neither (the refusing rule keeps its hit, as rate_limit_hit does).
LimitVerdict phone_limit_hit(int64 account_id, const char *phone, const PhoneRules &rules);
// keyword_reply_hit — locks the phone's ceiling row (uncounted) and, when reply_due, counts a reply to the
// keyword ("opt_out", "opt_in", "help"); true when that reply may be sent.
bool keyword_reply_hit(int64 account_id, const char *phone, const char *keyword, bool reply_due);

}  // namespace darkspere
