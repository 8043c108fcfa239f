// src/worker/config.cpp — parses flags, environment and the config file into one validated Config.
#include "config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <tuple>
#include <utility>

#include "egress_policy.hpp"
#include "log.hpp"

extern char **environ;

namespace darkspere::worker {

namespace {

using Setter = void (*)(Config &, const std::string &key, const std::string &value);

struct KeyDef {
    const char *name;
    const char *arg;  // placeholder shown in usage
    const char *help;
    Setter set;
    bool repeatable = false;
};

std::string trim(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b])))
        ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])))
        --e;
    return std::string(s.substr(b, e - b));
}

long parse_long(const std::string &key, const std::string &value, long min, long max) {
    std::string v = trim(value);
    long result = 0;
    size_t used = 0;
    try {
        result = std::stol(v, &used);
    } catch (const std::exception &) {
        used = 0;
    }
    if (v.empty() || used != v.size())
        throw ConfigError("invalid value for " + key + ": \"" + v + "\" is not an integer",
                          "set " + key + " to a whole number");
    if (result < min || result > max)
        throw ConfigError("invalid value for " + key + ": " + v + " is out of range",
                          "set " + key + " between " + std::to_string(min) + " and " + std::to_string(max));
    return result;
}

std::pair<std::string, uint16_t> parse_host_port(const std::string &key, const std::string &value) {
    std::string v = trim(value);
    std::string host, port;
    if (!v.empty() && v[0] == '[') {
        size_t close = v.find(']');
        if (close == std::string::npos || close + 1 >= v.size() || v[close + 1] != ':')
            throw ConfigError("invalid value for " + key + ": \"" + v + "\"",
                              "use HOST:PORT, e.g. [::1]:8080");
        host = v.substr(1, close - 1);
        port = v.substr(close + 2);
    } else {
        size_t colon = v.rfind(':');
        if (colon == std::string::npos)
            throw ConfigError("invalid value for " + key + ": \"" + v + "\"",
                              "use HOST:PORT, e.g. 127.0.0.1:8080");
        host = v.substr(0, colon);
        port = v.substr(colon + 1);
    }
    if (host.empty())
        throw ConfigError("invalid value for " + key + ": \"" + v + "\" has no host",
                          "use HOST:PORT, e.g. 0.0.0.0:8080");
    return {host, static_cast<uint16_t>(parse_long(key, port, 0, 65535))};
}

void set_listen(Config &c, const std::string &key, const std::string &value) {
    std::tie(c.listen_host, c.listen_port) = parse_host_port(key, value);
}

void set_admin_listen(Config &c, const std::string &key, const std::string &value) {
    if (trim(value).empty()) {  // the default: no admin listener
        c.admin_listen_host.clear();
        c.admin_listen_port = 0;
        return;
    }
    std::tie(c.admin_listen_host, c.admin_listen_port) = parse_host_port(key, value);
}

bool parse_bool(const std::string &key, const std::string &value) {
    std::string v = trim(value);
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (v == "on" || v == "true" || v == "yes" || v == "1")
        return true;
    if (v == "off" || v == "false" || v == "no" || v == "0")
        return false;
    throw ConfigError("invalid value for " + key + ": \"" + trim(value) + "\" is not on or off",
                      "set " + key + " to on or off");
}

std::string strip_trailing_slashes(std::string s) {
    while (!s.empty() && s.back() == '/')
        s.pop_back();
    return s;
}

std::string checked_url(const std::string &key, const std::string &value) {
    std::string v = strip_trailing_slashes(trim(value));
    if (v.rfind("http://", 0) != 0 && v.rfind("https://", 0) != 0)
        throw ConfigError("invalid value for " + key + ": \"" + v + "\" is not an http(s) URL",
                          "set " + key + " to a URL such as https://example.com");
    return v;
}

void set_twilio_account(Config &c, const std::string &key, const std::string &value) {
    // The value holds a secret: error messages name the account, never the token.
    std::string v = trim(value);
    size_t colon = v.find(':');
    std::string sid = colon == std::string::npos ? v : trim(v.substr(0, colon));
    std::string token = colon == std::string::npos ? "" : trim(v.substr(colon + 1));
    if (sid.empty() || token.empty())
        throw ConfigError("invalid value for " + key + ": expected SID:TOKEN" +
                              (sid.empty() ? std::string() : " for account " + sid),
                          "write each Twilio account as AccountSid:AuthToken");
    c.twilio_accounts[sid] = token;
}

const KeyDef KEYS[] = {
    {"config", "FILE", "config file of `key = value` lines",
     [](Config &c, const std::string &, const std::string &v) { c.config_file = trim(v); }},
    {"db", "CONNINFO", "libpq connection string (default: PG* environment variables)",
     [](Config &c, const std::string &, const std::string &v) { c.db = trim(v); }},
    {"listen", "HOST:PORT", "address of the HTTP server (default 127.0.0.1:8080; port 0 = any free port)",
     set_listen},
    {"public-url", "URL", "base URL Twilio calls; used for signatures and StatusCallback",
     [](Config &c, const std::string &k, const std::string &v) { c.public_url = checked_url(k, v); }},
    {"twilio-account", "SID:TOKEN", "a Twilio AccountSid and its auth token (repeatable)", set_twilio_account,
     true},
    {"twilio-base", "URL", "Twilio API base URL (default https://api.twilio.com)",
     [](Config &c, const std::string &k, const std::string &v) { c.twilio_base = checked_url(k, v); }},
    {"stripe-base", "URL", "Stripe API base URL (default https://api.stripe.com)",
     [](Config &c, const std::string &k, const std::string &v) { c.stripe_base = checked_url(k, v); }},
    {"stripe-webhook-secret", "SECRET",
     "Stripe webhook signing secret (whsec_...); config file or environment only, refused as a flag",
     [](Config &c, const std::string &, const std::string &v) { c.stripe_webhook_secret = trim(v); }},
    {"stripe-api-key", "SECRET",
     "Stripe secret API key (sk_... or rk_...) for /api/billing/...; config file or environment only, refused as a "
     "flag",
     [](Config &c, const std::string &, const std::string &v) { c.stripe_api_key = trim(v); }},
    {"agent-deadline-ms", "MS", "deadline of one agent call (default 10000)",
     [](Config &c, const std::string &k, const std::string &v) {
         c.agent_deadline_ms = parse_long(k, v, AGENT_DEADLINE_MS_MIN, AGENT_DEADLINE_MS_MAX);
     }},
    {"twilio-deadline-ms", "MS", "deadline of one Twilio API call (default 10000)",
     [](Config &c, const std::string &k, const std::string &v) {
         c.twilio_deadline_ms = parse_long(k, v, 100, 600000);
     }},
    {"twilio-max-concurrent", "N",
     "Twilio API requests open at once per AccountSid (default 50); more sends wait, tenants in turn",
     [](Config &c, const std::string &k, const std::string &v) {
         c.twilio_max_concurrent = parse_long(k, v, 1, 10000);
     }},
    {"max-in-flight", "N", "jobs running at once (default 2500)",
     [](Config &c, const std::string &k, const std::string &v) {
         c.max_in_flight = parse_long(k, v, MAX_IN_FLIGHT_MIN, MAX_IN_FLIGHT_MAX);
     }},
    {"max-in-flight-per-agent", "N",
     "agent calls running at once to any one agent (default 4/5 of max-in-flight), so a slow agent cannot "
     "take every slot",
     [](Config &c, const std::string &k, const std::string &v) {
         c.max_in_flight_per_agent = parse_long(k, v, MAX_IN_FLIGHT_MIN, MAX_IN_FLIGHT_MAX);
     }},
    {"max-in-flight-per-account", "N",
     "agent calls running at once for any one account (default 1/2 of max-in-flight), so one tenant's agents "
     "cannot take every slot",
     [](Config &c, const std::string &k, const std::string &v) {
         c.max_in_flight_per_account = parse_long(k, v, MAX_IN_FLIGHT_MIN, MAX_IN_FLIGHT_MAX);
     }},
    {"max-connections", "N", "inbound HTTP connections open at once (default 1024)",
     [](Config &c, const std::string &k, const std::string &v) {
         c.max_connections = parse_long(k, v, 1, 100000);
     }},
    {"max-connections-per-ip", "N",
     "inbound HTTP connections open at once from one client address (default 64); more are closed at once",
     [](Config &c, const std::string &k, const std::string &v) {
         c.max_connections_per_ip = parse_long(k, v, 1, 100000);
     }},
    {"header-timeout-ms", "MS",
     "time from accepting a connection (or answering its previous request) until the request header must be "
     "read (default 10000)",
     [](Config &c, const std::string &k, const std::string &v) {
         c.header_timeout_ms = parse_long(k, v, 100, 600000);
     }},
    {"idle-timeout-ms", "MS", "how long a kept-alive connection may wait for its next request (default 5000)",
     [](Config &c, const std::string &k, const std::string &v) {
         c.idle_timeout_ms = parse_long(k, v, 100, 600000);
     }},
    {"admin-listen", "HOST:PORT",
     "serve /healthz, /readyz and /metrics here only, not on listen (default none: on listen)",
     set_admin_listen},
    {"worker-name", "NAME", "lease owner name in the job queue (default hostname:pid)",
     [](Config &c, const std::string &, const std::string &v) { c.worker_name = trim(v); }},
    {"pool-size", "N", "query connections to PostgreSQL (default 8)",
     [](Config &c, const std::string &k, const std::string &v) {
         c.pool_size = parse_long(k, v, POOL_SIZE_MIN, POOL_SIZE_MAX);
     }},
    {"lease-seconds", "S", "lease on a claimed job (default 120)",
     [](Config &c, const std::string &k, const std::string &v) {
         c.lease_seconds = parse_long(k, v, 1, 86400);
     }},
    {"poll-interval-ms", "MS", "fallback claim poll (default 1000)",
     [](Config &c, const std::string &k, const std::string &v) {
         c.poll_interval_ms = parse_long(k, v, 10, 3600000);
     }},
    {"tick-interval-ms", "MS", "how often darkspere.tick() runs (default 1000)",
     [](Config &c, const std::string &k, const std::string &v) {
         c.tick_interval_ms = parse_long(k, v, 10, 3600000);
     }},
    {"stats-interval-ms", "MS", "how often the one-line stats log is written (default 60000)",
     [](Config &c, const std::string &k, const std::string &v) {
         c.stats_interval_ms = parse_long(k, v, 100, 86400000);
     }},
    {"drain-timeout-ms", "MS", "on SIGTERM, how long in-flight jobs may finish (default 15000)",
     [](Config &c, const std::string &k, const std::string &v) {
         c.drain_timeout_ms = parse_long(k, v, 0, 3600000);
     }},
    {"log-level", "LEVEL", "debug, info, warn or error (default info)",
     [](Config &c, const std::string &k, const std::string &v) {
         LogLevel level;
         std::string t = trim(v);
         if (!parse_log_level(t, &level))
             throw ConfigError("invalid value for " + k + ": \"" + t + "\"",
                               "set log-level to debug, info, warn or error");
         c.log_level = log_level_name(level);
     }},
    {"agent-max-response-bytes", "BYTES",
     "the most one agent response may hold, headers included (default 262144); more aborts the call",
     [](Config &c, const std::string &k, const std::string &v) {
         c.agent_max_response_bytes =
             parse_long(k, v, AGENT_MAX_RESPONSE_BYTES_MIN, AGENT_MAX_RESPONSE_BYTES_MAX);
     }},
    {"spool-dir", "DIR",
     "where webhooks are spooled while the database is unreachable, then replayed (default none: they are "
     "refused with 503)",
     [](Config &c, const std::string &, const std::string &v) { c.spool_dir = trim(v); }},
    {"spool-max-bytes", "BYTES",
     "the most the spool may hold (default 1073741824); past it, such webhooks are refused with 503",
     [](Config &c, const std::string &k, const std::string &v) {
         c.spool_max_bytes = parse_long(k, v, SPOOL_MAX_BYTES_MIN, 1L << 50);
     }},
    {"spool-replay-per-second", "N",
     "spooled webhooks replayed per second at most (default 0: as fast as the database stores them)",
     [](Config &c, const std::string &k, const std::string &v) {
         c.spool_replay_per_second = parse_long(k, v, 0, 1000000);
     }},
    {"spool-after-ms", "MS",
     "with spool-dir: a webhook whose receive statement has not answered after this long is spooled and "
     "answered (default 5000)",
     [](Config &c, const std::string &k, const std::string &v) {
         c.spool_after_ms = parse_long(k, v, 100, 600000);
     }},
    {"agent-allow-private", "on|off",
     "let agent calls connect to loopback, private, link-local and the database's addresses (default off)",
     [](Config &c, const std::string &k, const std::string &v) { c.agent_allow_private = parse_bool(k, v); }},
    {"allow-insecure-http", "on|off",
     "let agent URLs, twilio-base and stripe-base use plain http instead of https (default off)",
     [](Config &c, const std::string &k, const std::string &v) { c.allow_insecure_http = parse_bool(k, v); }},
    {"api-max-body-bytes", "BYTES",
     "the largest JSON body the HTTP API (/api/) reads (default 16384); more is 413",
     [](Config &c, const std::string &k, const std::string &v) {
         c.api_max_body_bytes = parse_long(k, v, API_MAX_BODY_BYTES_MIN, API_MAX_BODY_BYTES_MAX);
     }},
};

const KeyDef *find_key(std::string name) {
    std::replace(name.begin(), name.end(), '_', '-');
    for (const auto &k : KEYS) {
        if (name == k.name)
            return &k;
    }
    return nullptr;
}

// One layer of settings: key → values in the order given.
using Layer = std::map<std::string, std::vector<std::string>>;

Layer parse_args(const std::vector<std::string> &args, bool *help) {
    Layer layer;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string &a = args[i];
        if (a == "--help" || a == "-h") {
            *help = true;
            continue;
        }
        if (a.rfind("--", 0) != 0)
            throw ConfigError("unexpected argument \"" + a + "\"", "run darkspere-worker --help");
        std::string name = a.substr(2), value;
        size_t eq = name.find('=');
        bool has_value = eq != std::string::npos;
        if (has_value) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        }
        const KeyDef *k = find_key(name);
        if (!k)
            throw ConfigError("unknown option --" + name, "run darkspere-worker --help");
        if (!has_value) {
            if (i + 1 >= args.size())
                throw ConfigError("option --" + name + " needs a value", "run darkspere-worker --help");
            value = args[++i];
        }
        layer[k->name].push_back(value);
    }
    return layer;
}

Layer parse_file(const std::string &path, const std::string &text) {
    Layer layer;
    std::istringstream in(text);
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
        ++lineno;
        std::string t = trim(line);
        if (t.empty() || t[0] == '#')
            continue;
        size_t eq = t.find('=');
        std::string where = path + ":" + std::to_string(lineno);
        if (eq == std::string::npos)
            throw ConfigError(where + ": expected `key = value`",
                              "fix or comment out line " + std::to_string(lineno));
        std::string key = trim(t.substr(0, eq));
        const KeyDef *k = find_key(key);
        if (!k || std::string(k->name) == "config")
            throw ConfigError(where + ": unknown key \"" + key + "\"",
                              "see docs/worker.md for the list of keys");
        layer[k->name].push_back(trim(t.substr(eq + 1)));
    }
    return layer;
}

Layer parse_env(const ConfigSources &src) {
    Layer layer;
    for (const auto &k : KEYS) {
        if (auto v = src.getenv(env_name(k.name)))
            layer[k.name].push_back(*v);
    }
    // DARKSPERE_TWILIO_ACCOUNTS="SID:TOKEN,SID:TOKEN" is the list form of twilio-account.
    if (auto v = src.getenv("DARKSPERE_TWILIO_ACCOUNTS")) {
        std::stringstream ss(*v);
        std::string item;
        while (std::getline(ss, item, ',')) {
            if (!trim(item).empty())
                layer["twilio-account"].push_back(item);
        }
    }
    return layer;
}

std::string default_worker_name() {
    char host[256] = {0};
    if (gethostname(host, sizeof host - 1) != 0)
        std::snprintf(host, sizeof host, "localhost");
    return std::string(host) + ":" + std::to_string(getpid());
}

void validate(const Config &c) {
    // Checked here, after every layer, so the order of twilio-base and allow-insecure-http does not matter.
    for (const auto &[key, url] :
         {std::pair<const char *, const std::string *>{"twilio-base", &c.twilio_base},
          {"stripe-base", &c.stripe_base}}) {
        std::string refusal = url_scheme_refusal(*url, c.allow_insecure_http);
        if (!refusal.empty())
            throw ConfigError(std::string(key) + " \"" + *url + "\": " + refusal,
                              std::string("use an https URL for ") + key +
                                  ", or set allow-insecure-http = on (tests and local stand-ins only)");
    }
    if (c.max_in_flight_per_agent > c.max_in_flight)
        throw ConfigError("max-in-flight-per-agent (" + std::to_string(c.max_in_flight_per_agent) +
                              ") must not exceed max-in-flight (" + std::to_string(c.max_in_flight) + ")",
                          "one agent may use at most every slot; lower max-in-flight-per-agent");
    if (c.max_in_flight_per_account > c.max_in_flight)
        throw ConfigError("max-in-flight-per-account (" + std::to_string(c.max_in_flight_per_account) +
                              ") must not exceed max-in-flight (" + std::to_string(c.max_in_flight) + ")",
                          "one account may use at most every slot; lower max-in-flight-per-account");
    long longest = std::max(c.agent_deadline_ms, c.twilio_deadline_ms);
    if (c.lease_seconds * 1000 <= longest + LEASE_MARGIN_MS)
        throw ConfigError("lease-seconds (" + std::to_string(c.lease_seconds) +
                              " s) must exceed the longest outbound deadline (" + std::to_string(longest) +
                              " ms) plus " + std::to_string(LEASE_MARGIN_MS) + " ms",
                          "raise lease-seconds or lower agent-deadline-ms / twilio-deadline-ms; a lease that "
                          "expires during a call lets another worker run the same job twice");
}

}  // namespace

std::string env_name(const std::string &key) {
    std::string out = "DARKSPERE_";
    for (char ch : key)
        out.push_back(ch == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));
    return out;
}

std::optional<Config> load_config(const ConfigSources &sources) {
    bool help = false;
    Layer flags = parse_args(sources.args, &help);
    if (help)
        return std::nullopt;
    // /proc/<pid>/cmdline shows the command line to every local user: this secret never comes from there.
    if (flags.count("stripe-webhook-secret"))
        throw ConfigError("stripe-webhook-secret must not be given on the command line",
                          "set it in the config file (mode 0600) or in DARKSPERE_STRIPE_WEBHOOK_SECRET");
    if (flags.count("stripe-api-key"))
        throw ConfigError("stripe-api-key must not be given on the command line",
                          "set it in the config file (mode 0600) or in DARKSPERE_STRIPE_API_KEY");
    Layer env = parse_env(sources);

    std::string file;
    if (auto it = flags.find("config"); it != flags.end())
        file = trim(it->second.back());
    else if (auto e = env.find("config"); e != env.end())
        file = trim(e->second.back());
    Layer from_file;
    if (!file.empty() && sources.file_mode) {
        // The file holds Twilio tokens and perhaps a database password: refuse one that other users can read.
        if (auto access = sources.file_mode(file);
            access && !config_file_private(*access, sources.euid, sources.egid)) {
            char octal[8];
            std::snprintf(octal, sizeof octal, "%04o", access->mode & 07777u);  // permission bits only
            throw ConfigError(
                "config file \"" + file + "\" has mode " + octal + ": group or others may read or write it",
                "chmod 600 " + file +
                    " (it holds secrets; the worker's user must own it), or chown root:<the "
                    "worker's group> and chmod 640");
        }
    }
    if (!file.empty()) {
        auto text = sources.read_file(file);
        if (!text)
            throw ConfigError("could not read config file \"" + file + "\"",
                              "check the path given to --config");
        from_file = parse_file(file, *text);
    }

    // For each key the highest layer that sets it wins; a repeatable key takes that layer's whole list.
    Config c;
    for (const auto &k : KEYS) {
        const std::vector<std::string> *values = nullptr;
        for (const Layer *layer : {&flags, &env, &from_file}) {
            auto it = layer->find(k.name);
            if (it != layer->end() && !it->second.empty()) {
                values = &it->second;
                break;
            }
        }
        if (!values)
            continue;
        if (k.repeatable) {
            for (const auto &v : *values)
                k.set(c, k.name, v);
        } else {
            k.set(c, k.name, values->back());
        }
    }
    if (auto it = flags.find("twilio-account"); it != flags.end() && !it->second.empty())
        c.twilio_token_on_command_line = true;
    if (c.worker_name.empty())
        c.worker_name = default_worker_name();
    validate(c);
    return c;
}

bool config_file_private(const FileAccess &file, unsigned euid, unsigned egid) {
    if ((file.mode & 077) == 0)
        return true;
    // Group read only (no group write or execute, nothing for others), the owner root and the group the
    // worker's own: only root and the worker's group can read it. Not for a worker running as root, which
    // owns its files.
    return euid != 0 && file.uid == 0 && file.gid == egid && (file.mode & 077) == 040;
}

ConfigSources process_config_sources(int argc, char **argv) {
    ConfigSources s;
    for (int i = 1; i < argc; ++i)
        s.args.emplace_back(argv[i]);
    s.getenv = [](const std::string &name) -> std::optional<std::string> {
        const char *v = std::getenv(name.c_str());
        if (!v)
            return std::nullopt;
        return std::string(v);
    };
    s.read_file = [](const std::string &path) -> std::optional<std::string> {
        std::ifstream in(path, std::ios::binary);
        if (!in)
            return std::nullopt;
        std::ostringstream ss;
        ss << in.rdbuf();
        return ss.str();
    };
    s.file_mode = [](const std::string &path) -> std::optional<FileAccess> {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0)
            return std::nullopt;
        return FileAccess{static_cast<unsigned>(st.st_mode & 0777), static_cast<unsigned>(st.st_uid),
                          static_cast<unsigned>(st.st_gid)};
    };
    s.euid = static_cast<unsigned>(::geteuid());
    s.egid = static_cast<unsigned>(::getegid());
    return s;
}

std::string usage() {
    std::string out =
        "usage: darkspere-worker [options]\n\n"
        "Bridges SMS (Twilio) to AI agents for the darkspere PostgreSQL extension.\n"
        "Precedence: flags > environment (DARKSPERE_<OPTION>) > config file > defaults.\n\n";
    for (const auto &k : KEYS) {
        std::string left = std::string("  --") + k.name + " " + k.arg;
        if (left.size() < 34)
            left.resize(34, ' ');
        else
            left += "  ";
        out += left + k.help + "\n";
    }
    out += "\nSignals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the config file and environment.\n";
    return out;
}

}  // namespace darkspere::worker
