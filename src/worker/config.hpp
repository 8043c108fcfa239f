// src/worker/config.hpp — worker settings: flags > environment > config file > defaults.
//
// Every setting has one long flag name (`--agent-deadline-ms`); the config file uses the same names as keys
// (`agent-deadline-ms = 10000`), the environment the upper-snake form with a prefix
// (`DARKSPERE_AGENT_DEADLINE_MS`). docs/worker.md lists every key and default.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace darkspere::worker {

// Agent calls: the deadline bounds one HTTP call; the lease must outlive it (see LEASE_MARGIN_MS).
constexpr long AGENT_DEADLINE_MS_DEFAULT = 10000;
constexpr long AGENT_DEADLINE_MS_MIN = 100;
constexpr long AGENT_DEADLINE_MS_MAX = 600000;

// Lease on a claimed job; must exceed every outbound deadline plus this margin, or a slow reply is sent
// twice.
constexpr long LEASE_SECONDS_DEFAULT = 120;
constexpr long LEASE_MARGIN_MS = 1000;

// Concurrency: 2,000 calls to one slow agent must fit in one process and still leave slots for everyone else.
constexpr long MAX_IN_FLIGHT_DEFAULT = 2500;
constexpr long MAX_IN_FLIGHT_MIN = 1;
constexpr long MAX_IN_FLIGHT_MAX = 100000;

// Twilio Messages API requests open at once per AccountSid. Twilio answers 429 (20429) above its account
// concurrency limit (about 100, docs/protocols.md#twilio-messages-api); 50 leaves room for a second worker
// and other API use.
constexpr long TWILIO_MAX_CONCURRENT_DEFAULT = 50;

// Inbound connections held open at once (keep-alive included); more wait in the kernel backlog.
constexpr long MAX_CONNECTIONS_DEFAULT = 1024;
// Open connections one client address may hold at once. Twilio spreads its webhooks over many addresses and
// never needs this many; a reverse proxy in front of the worker is one address, so behind one the setting
// should be raised to max-connections.
constexpr long MAX_CONNECTIONS_PER_IP_DEFAULT = 64;
// A webhook's header arrives in one packet or a few, so 10 s is generous even on a bad mobile link, and a
// slow-loris client can hold a connection no longer than that without finishing a header.
constexpr long HEADER_TIMEOUT_MS_DEFAULT = 10000;
// Between requests a kept-alive connection waits 5 s: enough for a burst of webhooks to reuse it, short
// enough that idle connections do not pile up against max-connections (Node's http server uses 5 s too).
constexpr long IDLE_TIMEOUT_MS_DEFAULT = 5000;

// Query connections to PostgreSQL besides the LISTEN connection.
constexpr long POOL_SIZE_DEFAULT = 8;
constexpr long POOL_SIZE_MIN = 1;
constexpr long POOL_SIZE_MAX = 64;

// The most one agent response may hold (headers and body); a larger one aborts the call (retryable).
constexpr long AGENT_MAX_RESPONSE_BYTES_DEFAULT = 256 * 1024;
constexpr long AGENT_MAX_RESPONSE_BYTES_MIN = 1024;
constexpr long AGENT_MAX_RESPONSE_BYTES_MAX = 64L * 1024 * 1024;

// The spool's bound (spool-max-bytes): past it, webhooks the database cannot take are refused with 503.
constexpr long SPOOL_MAX_BYTES_DEFAULT = 1L << 30;
constexpr long SPOOL_MAX_BYTES_MIN = 16 * 1024;
// The largest JSON body the HTTP API (/api/…) reads; a larger one is refused with 413 before it is parsed.
constexpr long API_MAX_BODY_BYTES_DEFAULT = 16 * 1024;
constexpr long API_MAX_BODY_BYTES_MIN = 256;
constexpr long API_MAX_BODY_BYTES_MAX = 64 * 1024;  // REQUEST_BODY_MAX: the server reads no more anyway

struct Config {
    std::string config_file;  // --config; empty = none
    std::string db;           // libpq conninfo; empty = PG* environment variables
    std::string listen_host = "127.0.0.1";
    uint16_t listen_port = 8080;  // 0 = pick a free port (reported in the "listening" log line)
    std::string public_url = "http://127.0.0.1:8080";    // no trailing slash
    std::map<std::string, std::string> twilio_accounts;  // AccountSid → auth token (never logged)
    std::string twilio_base = "https://api.twilio.com";
    std::string stripe_base = "https://api.stripe.com";
    // The Stripe webhook endpoint's signing secret (whsec_…); empty: POST /stripe/webhook answers 503. From
    // the config file or DARKSPERE_STRIPE_WEBHOOK_SECRET only (refused on the command line); never logged.
    std::string stripe_webhook_secret;
    // The Stripe secret API key (sk_… or rk_…) /api/billing/… calls Stripe with; empty: those routes answer
    // 503. Like the webhook secret: config file or DARKSPERE_STRIPE_API_KEY only, never logged or stored.
    std::string stripe_api_key;
    long agent_deadline_ms = AGENT_DEADLINE_MS_DEFAULT;
    long twilio_deadline_ms = 10000;
    long twilio_max_concurrent = TWILIO_MAX_CONCURRENT_DEFAULT;
    long max_in_flight = MAX_IN_FLIGHT_DEFAULT;
    long max_in_flight_per_agent = 0;    // 0 = four fifths of max_in_flight (at least 1)
    long max_in_flight_per_account = 0;  // 0 = half of max_in_flight (at least 1)
    long max_connections = MAX_CONNECTIONS_DEFAULT;
    long max_connections_per_ip = MAX_CONNECTIONS_PER_IP_DEFAULT;
    long header_timeout_ms = HEADER_TIMEOUT_MS_DEFAULT;  // accept (or the previous response) → whole header
    long idle_timeout_ms = IDLE_TIMEOUT_MS_DEFAULT;      // kept-alive connection waiting for its next request
    // Where /healthz, /readyz and /metrics are served instead of the public listener; empty host = off.
    std::string admin_listen_host;
    uint16_t admin_listen_port = 0;
    std::string worker_name;  // default hostname:pid
    long pool_size = POOL_SIZE_DEFAULT;
    long lease_seconds = LEASE_SECONDS_DEFAULT;
    long poll_interval_ms = 1000;
    long tick_interval_ms = 1000;
    long stats_interval_ms = 60000;
    long drain_timeout_ms = 15000;
    std::string log_level = "info";
    long agent_max_response_bytes = AGENT_MAX_RESPONSE_BYTES_DEFAULT;
    bool agent_allow_private = false;  // agents may be reached at loopback / private / link-local addresses
    bool allow_insecure_http = false;  // agent URLs and twilio-base / stripe-base may use plain http
    // Where webhooks are spooled while the database is unreachable (docs/worker.md#spool); empty = no spool,
    // such webhooks are refused with 503.
    std::string spool_dir;
    long spool_max_bytes = SPOOL_MAX_BYTES_DEFAULT;
    long spool_replay_per_second = 0;  // 0 = as fast as the database stores them
    long spool_after_ms = 5000;        // a receive statement still unanswered then: the webhook is spooled
    // Set when a Twilio token came from the command line, where /proc/<pid>/cmdline shows it to every local
    // user; main warns (naming no token).
    bool twilio_token_on_command_line = false;
    long api_max_body_bytes = API_MAX_BODY_BYTES_DEFAULT;
};

// ConfigError — a setting is invalid; hint names what to change.
class ConfigError : public std::runtime_error {
  public:
    ConfigError(const std::string &message, std::string hint)
        : std::runtime_error(message), hint_(std::move(hint)) {}
    const std::string &hint() const { return hint_; }

  private:
    std::string hint_;
};

// A file's permission bits (st_mode & 0777), owner and group.
struct FileAccess {
    unsigned mode = 0, uid = 0, gid = 0;
};

// Where settings come from; functions so tests can supply them.
struct ConfigSources {
    std::vector<std::string> args;  // command line without argv[0]
    std::function<std::optional<std::string>(const std::string &name)> getenv;
    std::function<std::optional<std::string>(const std::string &path)> read_file;
    // A file's permission bits and owner, nullopt if it cannot be stat'ed; unset = not checked.
    std::function<std::optional<FileAccess>(const std::string &path)> file_mode;
    unsigned euid = 0, egid = 0;  // who the worker runs as (checked against the config file's owner)
};

// config_file_private — whether a config file is closed to other users: mode 0600 or stricter, or — for a
// worker that is not root — owned by root, readable by the worker's own group and nothing more (0640
// root:darkspere, as the Debian package ships it; the rule PostgreSQL applies to its ssl_key_file).
bool config_file_private(const FileAccess &file, unsigned euid, unsigned egid);

// ConfigSources from the real process: argv, environ and the filesystem.
ConfigSources process_config_sources(int argc, char **argv);

// load_config — resolves every setting by precedence and validates; throws ConfigError.
// Returns an empty optional when --help was asked for (usage then goes to stdout).
std::optional<Config> load_config(const ConfigSources &sources);

// usage — the --help text.
std::string usage();

// env_name — DARKSPERE_<UPPER_SNAKE> for a long flag name.
std::string env_name(const std::string &key);

}  // namespace darkspere::worker
