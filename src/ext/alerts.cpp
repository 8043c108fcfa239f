// src/ext/alerts.cpp — alert channels' signing secrets and the alert_notify payload a worker claims (issue
// #14; the rules, their evaluation and the alert history are SQL in the upgrade script: evaluate_alerts()).
//
// A channel's secret is derived like an agent's (agent_secrets.cpp) from "alert-channel:<name>": never
// stored, shown to an administrator by darkspere.alert_channel_secret(), and added to an alert_notify job's
// payload with the channel's webhook URL only when a worker claims it.
#include "ext/alerts.hpp"
#include "ext/agent_secrets.hpp"
#include "ext/errors.hpp"
#include "ext/spi_plans.hpp"
#include "ext/validate.hpp"

extern "C" {
#include "utils/json.h"
}

namespace darkspere {

static void channel_secret(const char *channel, char out[kAgentSecretChars + 1]) {
    char *message = psprintf("alert-channel:%s", channel);
    derived_secret(message, static_cast<int>(strlen(message)), out);
    pfree(message);
}

static Statement kChannel = {
    "SELECT c.webhook_url FROM darkspere.alert_channels c WHERE c.channel = $1 AND c.enabled",
    1,
    {TEXTOID},
    nullptr};

Datum alert_notify_payload(Datum payload) {
    Jsonb *jb = DatumGetJsonbP(payload);
    JsonbValue key;
    key.type = jbvString;
    key.val.string.val = const_cast<char *>("channel");
    key.val.string.len = 7;
    JsonbValue *found = findJsonbValueFromContainer(&jb->root, JB_FOBJECT, &key);
    if (found == nullptr || found->type != jbvString) {
        return (Datum)0;
    }
    char *channel = pnstrdup(found->val.string.val, found->val.string.len);
    Datum args[1] = {text_datum(channel)};
    SpiResult row = spi_run(kChannel, args, nullptr, true, 1);
    if (row.empty()) {
        return (Datum)0;
    }
    char *url = row.text_copy(0, 1, CurrentMemoryContext);
    char secret[kAgentSecretChars + 1];
    channel_secret(channel, secret);
    // The secret is hex digits and "dsk_"; the URL is escaped.
    StringInfoData json;
    initStringInfo(&json);
    appendStringInfo(&json, "{\"signing_secrets\": [\"%s\"], \"webhook_url\": ", secret);
    escape_json(&json, url);
    appendStringInfoChar(&json, '}');
    explicit_bzero(secret, sizeof secret);
    Datum extra = DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data));
    explicit_bzero(json.data, json.len);
    return DirectFunctionCall2(jsonb_concat, payload, extra);
}

}  // namespace darkspere

using namespace darkspere;

// darkspere_alert_channel_secret — the secret a channel's webhook verifies X-DarkSpere-Signature with.
DARKSPERE_FUNCTION(darkspere_alert_channel_secret) {
    char *channel = required_text(fcinfo, 0, "channel");
    SPI_connect();
    Datum args[1] = {text_datum(channel)};
    bool exists = !spi_run(kChannel, args, nullptr, true, 1).empty();
    SPI_finish();
    if (!exists) {
        ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
                        errmsg("no enabled alert channel %s", quote_literal_cstr(channel))));
    }
    char secret[kAgentSecretChars + 1];
    channel_secret(channel, secret);
    text *result = cstring_to_text(secret);
    explicit_bzero(secret, sizeof secret);
    PG_RETURN_TEXT_P(result);
}
