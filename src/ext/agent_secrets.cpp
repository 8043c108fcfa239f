// src/ext/agent_secrets.cpp — per-agent signing secrets: derived from a server master key, never stored.
//
// The worker signs every request to an agent (X-DarkSpere-Signature, docs/mcp-agents.md) with the agent's
// signing secret. Nothing secret lives in a table, so pg_dump, a replica's logical copy or a read-only role
// never carry one: the agents table holds only a generation number and the time of the last rotation, and
// the secret is HMAC-SHA256(master key, "agent:<agent_id>:<generation>") as "dsk_" + 64 hex digits. The
// master key is 32 random bytes in a file inside the data directory (darkspere.secret_key_file), created
// with mode 0600 on first use; whoever can read it could already read every table file next to it.
#include "ext/agent_secrets.hpp"
#include "ext/errors.hpp"
#include "ext/settings.hpp"
#include "ext/spi_plans.hpp"
#include "ext/validate.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

extern "C" {
#include "common/hmac.h"
#include "storage/fd.h"
}

namespace darkspere {

constexpr size_t kMasterKeyBytes = 32;

// The master key of this backend, cached with the path it was read from (a SIGHUP may change the path).
static char cached_path[MAXPGPATH];
static uint8 cached_key[kMasterKeyBytes];
static bool cached = false;

// key_path — darkspere.secret_key_file, relative to the data directory unless absolute.
static void key_path(char out[MAXPGPATH]) {
    const char *setting = secret_key_file != nullptr ? secret_key_file : "";
    if (setting[0] == '\0') {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("darkspere.secret_key_file must not be empty")));
    }
    if (is_absolute_path(setting)) {
        strlcpy(out, setting, MAXPGPATH);
    } else {
        snprintf(out, MAXPGPATH, "%s/%s", DataDir, setting);
    }
}

// create_key_file — writes 32 random bytes to a private temporary file and links it into place, so that a
// concurrent backend either sees no file or a complete one; losing the race to another backend is fine.
static void create_key_file(const char *path) {
    uint8 key[kMasterKeyBytes];
    if (!pg_strong_random(key, sizeof key)) {
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not generate a random master key")));
    }
    char tmp[MAXPGPATH];
    if (snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, MyProcPid) >= static_cast<int>(sizeof tmp)) {
        ereport(ERROR, (errcode(ERRCODE_NAME_TOO_LONG), errmsg("key file path too long: \"%s\"", path)));
    }
    int fd = OpenTransientFilePerm(tmp, O_WRONLY | O_CREAT | O_EXCL | PG_BINARY, S_IRUSR | S_IWUSR);
    if (fd < 0) {
        ereport(ERROR, (errcode_for_file_access(), errmsg("could not create key file \"%s\": %m", tmp)));
    }
    bool written = write(fd, key, sizeof key) == static_cast<ssize_t>(sizeof key) && pg_fsync(fd) == 0;
    explicit_bzero(key, sizeof key);
    int saved_errno = errno;
    CloseTransientFile(fd);
    if (!written) {
        unlink(tmp);
        errno = saved_errno;
        ereport(ERROR, (errcode_for_file_access(), errmsg("could not write key file \"%s\": %m", tmp)));
    }
    if (link(tmp, path) != 0 && errno != EEXIST) {
        saved_errno = errno;
        unlink(tmp);
        errno = saved_errno;
        ereport(ERROR, (errcode_for_file_access(), errmsg("could not create key file \"%s\": %m", path)));
    }
    unlink(tmp);
}

// read_key_file — the 32 bytes of the key file; false when it does not exist. A file of another size, or one
// that others than its owner may read or write, is refused: a key anyone could read signs nothing.
static bool read_key_file(const char *path, uint8 key[kMasterKeyBytes]) {
    int fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
    if (fd < 0) {
        if (errno == ENOENT) {
            return false;
        }
        ereport(ERROR, (errcode_for_file_access(), errmsg("could not open key file \"%s\": %m", path)));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int saved_errno = errno;
        CloseTransientFile(fd);
        errno = saved_errno;
        ereport(ERROR, (errcode_for_file_access(), errmsg("could not stat key file \"%s\": %m", path)));
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & (S_IRWXG | S_IRWXO)) != 0 ||
        st.st_size != static_cast<off_t>(kMasterKeyBytes)) {
        CloseTransientFile(fd);
        ereport(ERROR, (errcode(ERRCODE_CONFIG_FILE_ERROR),
                        errmsg("key file \"%s\" must be a regular file of %zu bytes with mode 0600", path,
                               kMasterKeyBytes),
                        errdetail("It is a %s of %lld bytes with mode %04o.",
                                  S_ISREG(st.st_mode) ? "file" : "non-regular file",
                                  static_cast<long long>(st.st_size), st.st_mode & 07777)));
    }
    ssize_t got = read(fd, key, kMasterKeyBytes);
    int saved_errno = errno;
    CloseTransientFile(fd);
    if (got != static_cast<ssize_t>(kMasterKeyBytes)) {
        errno = saved_errno;
        ereport(ERROR, (errcode_for_file_access(), errmsg("could not read key file \"%s\": %m", path)));
    }
    return true;
}

// master_key — the server's master key, created on first use.
static const uint8 *master_key() {
    char path[MAXPGPATH];
    key_path(path);
    if (cached && strcmp(path, cached_path) == 0) {
        return cached_key;
    }
    cached = false;
    if (!read_key_file(path, cached_key)) {
        create_key_file(path);
        if (!read_key_file(path, cached_key)) {
            ereport(ERROR,
                    (errcode_for_file_access(), errmsg("key file \"%s\" vanished after creation", path)));
        }
    }
    strlcpy(cached_path, path, sizeof cached_path);
    cached = true;
    return cached_key;
}

void agent_signing_secret(int64 agent_id, int32 generation, char out[kAgentSecretChars + 1]) {
    char message[64];
    int len =
        snprintf(message, sizeof message, "agent:%lld:%d", static_cast<long long>(agent_id), generation);
    derived_secret(message, len, out);
}

void derived_secret(const char *message, int len, char out[kAgentSecretChars + 1]) {
    const uint8 *key = master_key();
    uint8 mac[PG_SHA256_DIGEST_LENGTH];
    pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
    if (ctx == nullptr || pg_hmac_init(ctx, key, kMasterKeyBytes) < 0 ||
        pg_hmac_update(ctx, reinterpret_cast<const uint8 *>(message), len) < 0 ||
        pg_hmac_final(ctx, mac, sizeof mac) < 0) {
        pg_hmac_free(ctx);
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not derive an agent signing secret")));
    }
    pg_hmac_free(ctx);
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "dsk_", 4);
    for (size_t i = 0; i < sizeof mac; i++) {
        out[4 + 2 * i] = hex[mac[i] >> 4];
        out[4 + 2 * i + 1] = hex[mac[i] & 0xF];
    }
    out[kAgentSecretChars] = '\0';
    explicit_bzero(mac, sizeof mac);
}

Datum payload_with_secrets(int64 agent_id, const SpiResult &row) {
    if (row.empty()) {
        return (Datum)0;
    }
    bool isnull;
    Datum payload = row.get_datum(0, 1, &isnull);
    Datum secrets = agent_signing_secrets_jsonb(agent_id, row.get_int32(0, 2), row.get_bool(0, 3));
    return DirectFunctionCall2(jsonb_concat, payload, secrets);
}

Datum agent_signing_secrets_jsonb(int64 agent_id, int32 generation, bool in_grace) {
    char current[kAgentSecretChars + 1], previous[kAgentSecretChars + 1];
    agent_signing_secret(agent_id, generation, current);
    if (in_grace) {
        agent_signing_secret(agent_id, generation - 1, previous);
    }
    // Hex digits and "dsk_" only: no escaping needed.
    char json[2 * kAgentSecretChars + 64];
    if (in_grace) {
        snprintf(json, sizeof json, "{\"signing_secrets\": [\"%s\", \"%s\"]}", current, previous);
    } else {
        snprintf(json, sizeof json, "{\"signing_secrets\": [\"%s\"]}", current);
    }
    Datum result = DirectFunctionCall1(jsonb_in, CStringGetDatum(json));
    explicit_bzero(current, sizeof current);
    explicit_bzero(previous, sizeof previous);
    explicit_bzero(json, sizeof json);
    return result;
}

static Statement kRotate = {
    "UPDATE darkspere.agents SET secret_generation = secret_generation + 1,"
    "       secret_rotated_at = pg_catalog.now()"
    " WHERE agent_id = $1 RETURNING secret_generation",
    1,
    {INT8OID},
    nullptr};

}  // namespace darkspere

using namespace darkspere;

// darkspere_rotate_agent_secret — a new signing secret for the agent, returned once; the previous one stays
// valid (the worker sends both signatures) for darkspere.agent_secret_grace.
DARKSPERE_FUNCTION(darkspere_rotate_agent_secret) {
    int64 agent_id = required_int64(fcinfo, 0, "agent_id");
    SPI_connect();
    Datum args[1] = {Int64GetDatum(agent_id)};
    SpiResult rotated = spi_run(kRotate, args, nullptr, false, 1);
    if (rotated.empty()) {
        raise_missing("agent", agent_id);
    }
    int32 generation = rotated.get_int32(0, 1);
    char secret[kAgentSecretChars + 1];
    agent_signing_secret(agent_id, generation, secret);
    SPI_finish();
    text *result = cstring_to_text(secret);
    explicit_bzero(secret, sizeof secret);
    PG_RETURN_TEXT_P(result);
}

// darkspere_secret_key_fingerprint — 16 hex digits derived from the master key (an HMAC of a fixed label: it
// tells two keys apart and nothing about either). On Citus every node derives agents' secrets with its own
// key file, so distribute() compares the nodes' fingerprints and refuses to go on while they differ.
DARKSPERE_FUNCTION(darkspere_secret_key_fingerprint) {
    static const char label[] = "darkspere:secret-key-fingerprint";
    char derived[kAgentSecretChars + 1];
    derived_secret(label, static_cast<int>(sizeof label - 1), derived);
    text *result = cstring_to_text_with_len(derived + 4, 16);  // after "dsk_"
    explicit_bzero(derived, sizeof derived);
    PG_RETURN_TEXT_P(result);
}
