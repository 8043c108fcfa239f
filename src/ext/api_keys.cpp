// src/ext/api_keys.cpp — API keys: account keys (create, revoke), agent key rotation with a grace period, and
// authenticate_key, which tells whose key a bearer token is.
//
// A key is shown once and never stored: tables hold its SHA-256 (and, for account keys, an 8-character
// display prefix that is not secret). A key is found by its hash through an index; the hash that index
// returned is then compared with the one computed in constant time. Looking a key up by its hash leaks
// nothing usable through timing: the index compares hashes, and nobody can choose a key whose hash lands next
// to a stored one. Agent keys made by register_agent ("dsk_" + 64 hex digits, accounts.cpp) and keys made
// here
// ("dsk_" + 43 base64url characters) are both accepted: the whole key is hashed either way.
#include "ext/api_keys.hpp"
#include "ext/errors.hpp"
#include "ext/spi_plans.hpp"
#include "ext/validate.hpp"

namespace darkspere {

// An account may hold this many keys that are not revoked: enough to rotate one per service and environment,
// few enough that nobody can make us store keys without end.
constexpr int64 kAccountKeysMax = 20;
// A key name is a label for people.
constexpr int kKeyNameMaxChars = 100;
// The longest bearer token authenticate_key hashes; anything longer is no key of ours.
constexpr size_t kApiKeyMaxBytes = 128;
// A rotated-out agent key works at most this long after the rotation.
constexpr int64 kRotationGraceMaxUsecs = INT64CONST(30) * USECS_PER_DAY;
// last_used_at is written at most this often per key, so authentication is a read almost always.
constexpr const char *kLastUsedEvery = "1 minute";

static Statement kLiveKeys = {
    "SELECT count(*) FROM darkspere.account_keys WHERE account_id = $1 AND revoked_at IS NULL",
    1,
    {INT8OID},
    nullptr};
static Statement kLockAccountForKeys = {
    "SELECT 1 FROM darkspere.accounts WHERE account_id = $1 FOR UPDATE", 1, {INT8OID}, nullptr};
static Statement kInsertKey = {
    "INSERT INTO darkspere.account_keys (account_id, name, key_prefix, key_hash) VALUES ($1, $2, $3, $4)"
    " RETURNING key_id",
    4,
    {INT8OID, TEXTOID, TEXTOID, BYTEAOID},
    nullptr};
static Statement kRevokeKey = {
    "UPDATE darkspere.account_keys SET revoked_at = COALESCE(revoked_at, pg_catalog.now()) WHERE key_id = $1",
    1,
    {INT8OID},
    nullptr};
// Every live key whose hash is $1: an account key, an agent's current key, or an agent's previous key within
// its grace period. Columns: kind, account_id, agent_id, key_id, the stored hash, whether last_used_at is
// due.
static Statement kFindKey = {
    "SELECT 'account', k.account_id, NULL::bigint, k.key_id, k.key_hash,"
    "       k.last_used_at IS NULL OR k.last_used_at < pg_catalog.now() - $2::interval"
    "  FROM darkspere.account_keys k WHERE k.key_hash = $1 AND k.revoked_at IS NULL"
    " UNION ALL"
    " SELECT 'agent', a.account_id, a.agent_id, NULL::bigint, a.api_key_hash,"
    "       a.api_key_last_used_at IS NULL OR a.api_key_last_used_at < pg_catalog.now() - $2::interval"
    "  FROM darkspere.agents a WHERE a.api_key_hash = $1"
    " UNION ALL"
    " SELECT 'agent', a.account_id, a.agent_id, NULL::bigint, a.api_key_prev_hash,"
    "       a.api_key_last_used_at IS NULL OR a.api_key_last_used_at < pg_catalog.now() - $2::interval"
    "  FROM darkspere.agents a WHERE a.api_key_prev_hash = $1 AND a.api_key_prev_until > pg_catalog.now()"
    " LIMIT 1",
    2,
    {BYTEAOID, TEXTOID},
    nullptr};
// The condition is checked again under the row lock: of concurrent requests with one key, one writes.
static Statement kTouchAccountKey = {
    "UPDATE darkspere.account_keys SET last_used_at = pg_catalog.now()"
    " WHERE key_id = $1 AND (last_used_at IS NULL OR last_used_at < pg_catalog.now() - $2::interval)",
    2,
    {INT8OID, TEXTOID},
    nullptr};
static Statement kTouchAgentKey = {
    "UPDATE darkspere.agents SET api_key_last_used_at = pg_catalog.now()"
    " WHERE agent_id = $1 AND (api_key_last_used_at IS NULL"
    "                          OR api_key_last_used_at < pg_catalog.now() - $2::interval)",
    2,
    {INT8OID, TEXTOID},
    nullptr};
static Statement kRotateAgentKey = {
    "UPDATE darkspere.agents SET api_key_prev_hash = api_key_hash, api_key_hash = $2,"
    "       api_key_prev_until = pg_catalog.now() + $3"
    " WHERE agent_id = $1",
    3,
    {INT8OID, BYTEAOID, INTERVALOID},
    nullptr};

bytea *api_key_hash(const char *data, size_t len) {
    uint8 digest[PG_SHA256_DIGEST_LENGTH];
    pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
    if (ctx == nullptr || pg_cryptohash_init(ctx) < 0 ||
        pg_cryptohash_update(ctx, reinterpret_cast<const uint8 *>(data), len) < 0 ||
        pg_cryptohash_final(ctx, digest, sizeof digest) < 0) {
        pg_cryptohash_free(ctx);
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not hash the API key")));
    }
    pg_cryptohash_free(ctx);
    bytea *hash = static_cast<bytea *>(palloc(VARHDRSZ + sizeof digest));
    SET_VARSIZE(hash, VARHDRSZ + sizeof digest);
    memcpy(VARDATA(hash), digest, sizeof digest);
    return hash;
}

constexpr int kKeyChars = 4 + 43;  // "dsk_" + 32 random bytes in unpadded base64url

// new_key — "dsk_" + 43 base64url characters of 32 bytes from the operating system's CSPRNG.
static void new_key(char key[kKeyChars + 1]) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8 random_bytes[33];  // 32 used; one more so the 3-byte groups end evenly
    if (!pg_strong_random(random_bytes, 32)) {
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not generate a random API key")));
    }
    random_bytes[32] = 0;
    memcpy(key, "dsk_", 4);
    int out = 4;
    for (int i = 0; i < 33; i += 3) {
        uint32 group = (uint32)random_bytes[i] << 16 | (uint32)random_bytes[i + 1] << 8 | random_bytes[i + 2];
        for (int shift = 18; shift >= 0 && out < kKeyChars; shift -= 6) {
            key[out++] = alphabet[(group >> shift) & 0x3F];
        }
    }
    key[kKeyChars] = '\0';
    explicit_bzero(random_bytes, sizeof random_bytes);
}

// equal_hashes — whether two bytea hold the same bytes, in time that depends only on their lengths.
static bool equal_hashes(const bytea *a, const bytea *b) {
    size_t len = VARSIZE_ANY_EXHDR(a);
    if (len != VARSIZE_ANY_EXHDR(b)) {
        return false;
    }
    const volatile uint8 *x = reinterpret_cast<const uint8 *>(VARDATA_ANY(a));
    const volatile uint8 *y = reinterpret_cast<const uint8 *>(VARDATA_ANY(b));
    uint8 diff = 0;
    for (size_t i = 0; i < len; i++) {
        diff |= x[i] ^ y[i];
    }
    return diff == 0;
}

}  // namespace darkspere

using namespace darkspere;

// darkspere_create_account_key — a new account key, returned once with its id; the account is locked so two
// concurrent calls cannot both take the last of kAccountKeysMax.
DARKSPERE_FUNCTION(darkspere_create_account_key) {
    int64 account_id = required_int64(fcinfo, 0, "account_id");
    char *name = required_text(fcinfo, 1, "name");
    require_non_empty(name, "name");
    if (pg_mbstrlen(name) > kKeyNameMaxChars) {
        ereport(ERROR, (errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
                        errmsg("name must be at most %d characters: \"%.40s…\"", kKeyNameMaxChars, name)));
    }
    ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    InitMaterializedSRF(fcinfo, 0);

    SPI_connect();
    Datum account_arg[1] = {Int64GetDatum(account_id)};
    if (spi_run(kLockAccountForKeys, account_arg, nullptr, false, 1).empty()) {
        raise_missing("account", account_id);
    }
    int64 live = spi_run(kLiveKeys, account_arg, nullptr, false, 1).get_int64(0, 1);
    if (live >= kAccountKeysMax) {
        ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                        errmsg("account %lld already has %lld API keys, the most it may hold",
                               static_cast<long long>(account_id), static_cast<long long>(live)),
                        errhint("Revoke a key with revoke_account_key(key_id).")));
    }
    char key[kKeyChars + 1];
    new_key(key);
    char prefix[9];
    memcpy(prefix, key, 8);
    prefix[8] = '\0';
    Datum args[4] = {Int64GetDatum(account_id), text_datum(name), text_datum(prefix),
                     PointerGetDatum(api_key_hash(key, kKeyChars))};
    int64 key_id = spi_run(kInsertKey, args, nullptr, false, 1).get_int64(0, 1);

    Datum values[2] = {Int64GetDatum(key_id), text_datum(key)};
    bool nulls[2] = {false, false};
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    explicit_bzero(key, sizeof key);
    SPI_finish();
    return (Datum)0;
}

// darkspere_revoke_account_key — the key stops authenticating at once; revoking it again changes nothing.
DARKSPERE_FUNCTION(darkspere_revoke_account_key) {
    int64 key_id = required_int64(fcinfo, 0, "key_id");
    SPI_connect();
    Datum args[1] = {Int64GetDatum(key_id)};
    if (spi_run(kRevokeKey, args, nullptr, false, 0).empty()) {
        raise_missing("account key", key_id);
    }
    SPI_finish();
    PG_RETURN_VOID();
}

// darkspere_authenticate_key — whose key this is: one row (kind 'account' or 'agent'), or none for anything
// that is not a live key (NULL, malformed, unknown, revoked, past its grace period). Never an error: the
// caller answers 401 alike for all of them.
DARKSPERE_FUNCTION(darkspere_authenticate_key) {
    ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    InitMaterializedSRF(fcinfo, 0);
    if (PG_ARGISNULL(0)) {
        return (Datum)0;
    }
    text *key = PG_GETARG_TEXT_PP(0);
    size_t len = VARSIZE_ANY_EXHDR(key);
    if (len < 5 || len > kApiKeyMaxBytes || strncmp(VARDATA_ANY(key), "dsk_", 4) != 0) {
        return (Datum)0;
    }
    bytea *hash = api_key_hash(VARDATA_ANY(key), len);

    SPI_connect();
    Datum args[2] = {PointerGetDatum(hash), text_datum(kLastUsedEvery)};
    SpiResult found = spi_run(kFindKey, args, nullptr, false, 1);
    if (found.rows() == 1) {
        bool isnull;
        bytea *stored = DatumGetByteaPP(found.get_datum(0, 5, &isnull));
        if (!isnull && equal_hashes(stored, hash)) {
            char *kind = found.text_copy(0, 1, CurrentMemoryContext);
            int64 account_id = found.get_int64(0, 2);
            bool is_agent = !found.is_null(0, 3);
            int64 agent_id = found.get_int64(0, 3);
            int64 key_id = found.get_int64(0, 4);
            bool touch = found.get_bool(0, 6);
            Datum values[4] = {text_datum(kind), Int64GetDatum(account_id), Int64GetDatum(agent_id),
                               Int64GetDatum(key_id)};
            bool nulls[4] = {false, false, !is_agent, is_agent};
            tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
            if (touch) {
                Datum touch_args[2] = {Int64GetDatum(is_agent ? agent_id : key_id),
                                       text_datum(kLastUsedEvery)};
                spi_run(is_agent ? kTouchAgentKey : kTouchAccountKey, touch_args, nullptr, false, 0);
            }
        }
    }
    SPI_finish();
    return (Datum)0;
}

// darkspere_rotate_agent_key — a new key for the agent, returned once. The key it replaces keeps working for
// `grace` (0 to 30 days); a key rotated out earlier stops at once (an agent has at most two live keys).
DARKSPERE_FUNCTION(darkspere_rotate_agent_key) {
    int64 agent_id = required_int64(fcinfo, 0, "agent_id");
    if (PG_ARGISNULL(1)) {
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("grace must not be null")));
    }
    Interval *grace = PG_GETARG_INTERVAL_P(1);
    int64 grace_usecs =
        grace->time + (int64)grace->day * USECS_PER_DAY + (int64)grace->month * 30 * USECS_PER_DAY;
    if (grace->time < 0 || grace->day < 0 || grace->month < 0 || grace_usecs > kRotationGraceMaxUsecs) {
        char *shown = DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(grace)));
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("grace must be between 0 and 30 days: \"%s\"", shown)));
    }
    char key[kKeyChars + 1];
    new_key(key);
    SPI_connect();
    Datum args[3] = {Int64GetDatum(agent_id), PointerGetDatum(api_key_hash(key, kKeyChars)),
                     IntervalPGetDatum(grace)};
    if (spi_run(kRotateAgentKey, args, nullptr, false, 0).empty()) {
        raise_missing("agent", agent_id);
    }
    SPI_finish();
    text *result = cstring_to_text(key);
    explicit_bzero(key, sizeof key);
    PG_RETURN_TEXT_P(result);
}
