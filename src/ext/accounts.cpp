// src/ext/accounts.cpp — tenants and what they own: accounts, service numbers, agents and their API keys.
//
// Plan limits (agents, numbers) are checked with the account row locked, so two concurrent registrations can
// never both take the last free slot.
#include "ext/accounts.hpp"
#include "ext/agent_events.hpp"
#include "ext/agent_secrets.hpp"
#include "ext/api_keys.hpp"
#include "ext/errors.hpp"
#include "ext/settings.hpp"
#include "ext/spi_plans.hpp"
#include "ext/validate.hpp"

namespace darkspere {

static Statement kPlanExists = {"SELECT 1 FROM darkspere.plans WHERE plan = $1", 1, {TEXTOID}, nullptr};
static Statement kInsertAccount = {
    "INSERT INTO darkspere.accounts (name, plan, help_text) VALUES ($1, $2, $3) RETURNING account_id",
    3,
    {TEXTOID, TEXTOID, TEXTOID},
    nullptr};
static Statement kAccountExists = {
    "SELECT 1 FROM darkspere.accounts WHERE account_id = $1", 1, {INT8OID}, nullptr};
// The plan-limit check: lock the account, then read its limits and current counts. The lock is taken by its
// own statement so that the counts are read by a later statement, whose snapshot (READ COMMITTED) sees what
// the previous lock holder committed. The limits are the features custom_agents and multi_phone as they apply
// now (account_features_now: the effective plan's plan_features row or an unexpired account override; limit
// NULL: none). Without the feature an account has one agent and one number: what "custom agents" and "multi
// phone" add to. plans.max_agents / max_numbers no longer decide (the 0.2.0 upgrade copied operators' plans).
static Statement kLockAccount = {
    "SELECT 1 FROM darkspere.accounts WHERE account_id = $1 FOR UPDATE", 1, {INT8OID}, nullptr};
// The limits and the counts are two statements, and each table is filtered by the parameter, not by a column
// of another table: on Citus every reference is then pinned to the tenant's shard, and account_features_now
// (which reads distributed tables) never runs inside a statement sent to a shard (docs/scaling.md).
static Statement kAccountLimits = {
    "SELECT max(f.plan),"
    "       max(CASE WHEN f.enabled THEN f.monthly_limit ELSE 1 END) FILTER (WHERE f.feature = 'custom_agents'),"
    "       max(CASE WHEN f.enabled THEN f.monthly_limit ELSE 1 END) FILTER (WHERE f.feature = 'multi_phone')"
    "  FROM darkspere.account_features_now($1) f"
    " WHERE f.feature IN ('custom_agents', 'multi_phone')",
    1,
    {INT8OID},
    nullptr};
static Statement kAccountCounts = {
    "SELECT (SELECT count(*) FROM darkspere.agents g WHERE g.account_id = $1 AND g.status <> 'disabled'),"
    "       (SELECT count(*) FROM darkspere.numbers n WHERE n.account_id = $1)",
    1,
    {INT8OID},
    nullptr};
// The mcp_protocol gate of the account now (its effective plan and overrides; docs/billing.md).
static Statement kMcpAllowed = {
    "SELECT enabled, plan FROM darkspere.account_features_now($1) WHERE feature = 'mcp_protocol'",
    1,
    {INT8OID},
    nullptr};
static Statement kNumberOwner = {
    "SELECT account_id FROM darkspere.numbers WHERE number = $1", 1, {TEXTOID}, nullptr};
static Statement kInsertNumber = {
    "INSERT INTO darkspere.numbers (account_id, number, provider_account) VALUES ($1, $2, $3)",
    3,
    {INT8OID, TEXTOID, TEXTOID},
    nullptr};
static Statement kInsertAgent = {
    "INSERT INTO darkspere.agents (account_id, name, endpoint, protocol, capacity, api_key_hash)"
    " VALUES ($1, $2, $3, $4, $5, $6) RETURNING agent_id",
    6,
    {INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID, BYTEAOID},
    nullptr};
static Statement kInsertAgentLoad = {
    "INSERT INTO darkspere.agent_load (agent_id, shard, account_id)"
    " SELECT $1, s, $3 FROM pg_catalog.generate_series(0, $2 - 1) s",
    3,
    {INT8OID, INT4OID, INT8OID},
    nullptr};
static Statement kAgentNameTaken = {
    "SELECT 1 FROM darkspere.agents WHERE account_id = $1 AND name = $2", 2, {INT8OID, TEXTOID}, nullptr};
// A person's status change starts the probes' runs afresh (probes.cpp counts them from here).
static Statement kSetAgentStatus = {
    "UPDATE darkspere.agents SET status = $2, probe_failures = 0, probe_passes = 0"
    " WHERE agent_id = $1 AND account_id = $3",
    3,
    {INT8OID, TEXTOID, INT8OID},
    nullptr};
// The account of an agent, read without a lock (an agent never changes account): the calls that name an agent
// alone find its tenant with it, so that their other statements name the account too (on Citus: reach one
// shard; this read itself asks every shard, which is why the worker's calls carry the account instead).
static Statement kAgentAccount = {
    "SELECT account_id FROM darkspere.agents WHERE agent_id = $1", 1, {INT8OID}, nullptr};
// Locked: a probe result (probes.cpp) locks the same row before it changes the status, so the two never
// interleave and a person's 'maintenance' or 'disabled' is never overwritten by a probe.
static Statement kAgentAccountStatus = {
    "SELECT status = 'disabled', status FROM darkspere.agents WHERE agent_id = $1 AND account_id = $2 FOR UPDATE",
    2,
    {INT8OID, INT8OID},
    nullptr};

int64 agent_account(int64 agent_id) {
    Datum args[1] = {Int64GetDatum(agent_id)};
    SpiResult owner = spi_run(kAgentAccount, args, nullptr, false, 1);
    if (owner.empty()) {
        raise_missing("agent", agent_id);
    }
    return owner.get_int64(0, 1);
}

void require_account(int64 account_id) {
    Datum args[1] = {Int64GetDatum(account_id)};
    if (spi_run(kAccountExists, args, nullptr, false, 1).empty()) {
        raise_missing("account", account_id);
    }
}

// Plan limits of an account, read under its row lock by lock_account_limits.
struct AccountLimits {
    char *plan;
    bool agents_unlimited;
    int64 max_agents;
    bool numbers_unlimited;
    int64 max_numbers;
    int64 agents;
    int64 numbers;
};

static AccountLimits lock_account_limits(int64 account_id) {
    Datum args[1] = {Int64GetDatum(account_id)};
    if (spi_run(kLockAccount, args, nullptr, false, 1).empty()) {
        raise_missing("account", account_id);
    }
    SpiResult row = spi_run(kAccountLimits, args, nullptr, false, 1);
    AccountLimits limits;
    limits.plan = row.text_copy(0, 1, CurrentMemoryContext);
    limits.agents_unlimited = row.is_null(0, 2);
    limits.max_agents = limits.agents_unlimited ? 0 : row.get_int64(0, 2);
    limits.numbers_unlimited = row.is_null(0, 3);
    limits.max_numbers = limits.numbers_unlimited ? 0 : row.get_int64(0, 3);
    SpiResult counts = spi_run(kAccountCounts, args, nullptr, false, 1);
    limits.agents = counts.get_int64(0, 1);
    limits.numbers = counts.get_int64(0, 2);
    return limits;
}

// require_agent_slot — locks the account and raises 53400 when its plan has no room for one more agent that
// is not disabled.
static void require_agent_slot(int64 account_id) {
    AccountLimits limits = lock_account_limits(account_id);
    if (!limits.agents_unlimited && limits.agents >= limits.max_agents) {
        ereport(
            ERROR,
            (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
             errmsg("plan \"%s\" allows %lld agent(s); account %lld has %lld", limits.plan,
                    static_cast<long long>(limits.max_agents), static_cast<long long>(account_id),
                    static_cast<long long>(limits.agents)),
             errhint("Disable an agent with set_agent_status(agent_id, 'disabled'), change plan, or add an "
                     "account_features override of custom_agents.")));
    }
}

// require_mcp_feature — raises 53400 (as the agent limit: the API answers 403 plan_limit) when the account's
// plan (or its override) does not include mcp_protocol.
static void require_mcp_feature(int64 account_id) {
    Datum args[1] = {Int64GetDatum(account_id)};
    SpiResult row = spi_run(kMcpAllowed, args, nullptr, false, 1);
    if (!row.empty() && !row.is_null(0, 1) && row.get_bool(0, 1)) {
        return;
    }
    const char *plan = row.empty() ? "?" : row.text_copy(0, 2, CurrentMemoryContext);
    ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                    errmsg("plan \"%s\" does not include MCP agents (feature mcp_protocol); account %lld",
                           plan, static_cast<long long>(account_id)),
                    errhint("Register an http agent, move the account to a plan with mcp_protocol, or add an "
                            "account_features override.")));
}

static bool valid_endpoint(const char *endpoint) {
    return (strncmp(endpoint, "http://", 7) == 0 && endpoint[7] != '\0') ||
           (strncmp(endpoint, "https://", 8) == 0 && endpoint[8] != '\0');
}

// new_api_key — 32 random bytes as "dsk_" + 64 hex digits; hash_out receives the SHA-256 of the whole key.
static void new_api_key(char key[4 + 64 + 1], bytea **hash_out) {
    uint8 random_bytes[32];
    if (!pg_strong_random(random_bytes, sizeof random_bytes)) {
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not generate a random API key")));
    }
    static const char hex[] = "0123456789abcdef";
    memcpy(key, "dsk_", 4);
    for (size_t i = 0; i < sizeof random_bytes; i++) {
        key[4 + 2 * i] = hex[random_bytes[i] >> 4];
        key[4 + 2 * i + 1] = hex[random_bytes[i] & 0xF];
    }
    key[4 + 64] = '\0';

    *hash_out = api_key_hash(key, strlen(key));
}

}  // namespace darkspere

using namespace darkspere;

// darkspere_create_account — creates a tenant on a plan and returns its id.
DARKSPERE_FUNCTION(darkspere_create_account) {
    char *name = required_text(fcinfo, 0, "name");
    char *plan = required_text(fcinfo, 1, "plan");
    char *help_text = optional_text(fcinfo, 2);
    require_non_empty(name, "name");

    SPI_connect();
    Datum plan_arg[1] = {text_datum(plan)};
    if (spi_run(kPlanExists, plan_arg, nullptr, false, 1).empty()) {
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("unknown plan: \"%s\"", plan),
                        errhint("Plans are rows of darkspere.plans: free, pro and enterprise by default.")));
    }
    Datum args[3] = {text_datum(name), text_datum(plan), help_text ? text_datum(help_text) : (Datum)0};
    char nulls[3] = {' ', ' ', null_flag(help_text == nullptr)};
    int64 account_id = spi_run(kInsertAccount, args, nulls, false, 1).get_int64(0, 1);
    SPI_finish();
    PG_RETURN_INT64(account_id);
}

// darkspere_add_number — gives the account an E.164 service number; a number belongs to one account only.
// provider_account, the Twilio AccountSid that owns the number, is required: receive_sms accepts a webhook
// for the number only when it was signed for that AccountSid, so another tenant's Twilio account cannot speak
// for it.
DARKSPERE_FUNCTION(darkspere_add_number) {
    int64 account_id = required_int64(fcinfo, 0, "account_id");
    char *number = required_text(fcinfo, 1, "number");
    char *provider_account = required_text(fcinfo, 2, "provider_account");
    require_e164(number, "number");
    require_account_sid(provider_account, "provider_account");

    SPI_connect();
    AccountLimits limits = lock_account_limits(account_id);
    Datum number_arg[1] = {text_datum(number)};
    SpiResult owner = spi_run(kNumberOwner, number_arg, nullptr, false, 1);
    if (!owner.empty()) {
        ereport(ERROR, (errcode(ERRCODE_UNIQUE_VIOLATION),
                        errmsg("number %s already belongs to account %lld", number,
                               static_cast<long long>(owner.get_int64(0, 1)))));
    }
    if (!limits.numbers_unlimited && limits.numbers >= limits.max_numbers) {
        ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                        errmsg("plan \"%s\" allows %lld service number(s); account %lld has %lld",
                               limits.plan, static_cast<long long>(limits.max_numbers),
                               static_cast<long long>(account_id), static_cast<long long>(limits.numbers)),
                        errhint("Move the account to a larger plan, or add an account_features override of "
                                "multi_phone.")));
    }
    Datum args[3] = {Int64GetDatum(account_id), text_datum(number), text_datum(provider_account)};
    spi_run(kInsertNumber, args, nullptr, false, 0);
    SPI_finish();
    PG_RETURN_VOID();
}

// darkspere_register_agent — adds an agent and returns its id, API key and request-signing secret; only the
// key's hash is stored, and the secret not at all (agent_secrets.cpp derives it).
DARKSPERE_FUNCTION(darkspere_register_agent) {
    static const char *const protocols[] = {"http", "mcp", nullptr};
    int64 account_id = required_int64(fcinfo, 0, "account_id");
    char *name = required_text(fcinfo, 1, "name");
    char *endpoint = required_text(fcinfo, 2, "endpoint");
    char *protocol = required_text(fcinfo, 3, "protocol");
    int32 capacity = required_int32(fcinfo, 4, "capacity");
    require_non_empty(name, "name");
    if (!valid_endpoint(endpoint)) {
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid endpoint: \"%s\"", endpoint),
                 errhint("Agent endpoints are http:// or https:// URLs.")));
    }
    require_one_of(protocol, protocols, "protocol");
    if (capacity <= 0) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("capacity must be positive: %d", capacity)));
    }
    if (capacity > kAgentCapacityMax) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("capacity must be at most %d: %d", kAgentCapacityMax, capacity)));
    }

    ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    InitMaterializedSRF(fcinfo, 0);

    SPI_connect();
    require_agent_slot(account_id);
    if (strcmp(protocol, "mcp") == 0) {
        require_mcp_feature(account_id);
    }
    Datum name_args[2] = {Int64GetDatum(account_id), text_datum(name)};
    if (!spi_run(kAgentNameTaken, name_args, nullptr, false, 1).empty()) {
        ereport(ERROR,
                (errcode(ERRCODE_UNIQUE_VIOLATION), errmsg("account %lld already has an agent named \"%s\"",
                                                           static_cast<long long>(account_id), name)));
    }
    char key[4 + 64 + 1];
    bytea *key_hash;
    new_api_key(key, &key_hash);
    Datum args[6] = {Int64GetDatum(account_id), text_datum(name),        text_datum(endpoint),
                     text_datum(protocol),      Int32GetDatum(capacity), PointerGetDatum(key_hash)};
    int64 agent_id = spi_run(kInsertAgent, args, nullptr, false, 1).get_int64(0, 1);
    Datum load_args[3] = {Int64GetDatum(agent_id), Int32GetDatum(kCounterShards), Int64GetDatum(account_id)};
    spi_run(kInsertAgentLoad, load_args, nullptr, false, 0);

    // The signing secret of generation 1 (the column's default): shown here once, derived again at each
    // claim.
    char secret[kAgentSecretChars + 1];
    agent_signing_secret(agent_id, 1, secret);

    Datum values[3] = {Int64GetDatum(agent_id), text_datum(key), text_datum(secret)};
    bool nulls[3] = {false, false, false};
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    explicit_bzero(secret, sizeof secret);
    SPI_finish();
    return (Datum)0;
}

// darkspere_set_agent_status — active, maintenance (no new turns) or disabled (gone; frees a plan slot).
DARKSPERE_FUNCTION(darkspere_set_agent_status) {
    static const char *const statuses[] = {"active", "maintenance", "disabled", nullptr};
    int64 agent_id = required_int64(fcinfo, 0, "agent_id");
    char *status = required_text(fcinfo, 1, "status");
    require_one_of(status, statuses, "status");
    SPI_connect();
    int64 account_id = agent_account(agent_id);
    Datum lock_args[2] = {Int64GetDatum(agent_id), Int64GetDatum(account_id)};
    SpiResult agent = spi_run(kAgentAccountStatus, lock_args, nullptr, false, 1);
    if (agent.empty()) {
        raise_missing("agent", agent_id);  // deleted since (with its account)
    }
    bool was_disabled = agent.get_bool(0, 1);
    char *was = agent.text_copy(0, 2, CurrentMemoryContext);
    // Bringing a disabled agent back takes a plan slot again: checked under the same account lock that
    // register_agent takes, so two concurrent calls cannot both squeeze past the limit.
    if (was_disabled && strcmp(status, "disabled") != 0) {
        require_agent_slot(account_id);
    }
    Datum args[3] = {Int64GetDatum(agent_id), text_datum(status), Int64GetDatum(account_id)};
    spi_run(kSetAgentStatus, args, nullptr, false, 0);
    if (strcmp(was, status) != 0) {
        char *actor = psprintf("person:%s", GetUserNameFromId(GetSessionUserId(), false));
        agent_event(account_id, agent_id, actor, was, status, "set_agent_status");
    }
    SPI_finish();
    PG_RETURN_VOID();
}
