// test/unit/worker_config_test.cpp — worker settings: precedence flags > env > file > defaults, and
// validation.
#include <gtest/gtest.h>

#include <map>

#include "config.hpp"

using namespace darkspere::worker;

namespace {

ConfigSources sources(std::vector<std::string> args, std::map<std::string, std::string> env = {},
                      std::map<std::string, std::string> files = {}) {
    ConfigSources s;
    s.args = std::move(args);
    s.getenv = [env](const std::string &name) -> std::optional<std::string> {
        auto it = env.find(name);
        return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
    s.read_file = [files](const std::string &path) -> std::optional<std::string> {
        auto it = files.find(path);
        return it == files.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
    return s;
}

Config load(std::vector<std::string> args, std::map<std::string, std::string> env = {},
            std::map<std::string, std::string> files = {}) {
    return *load_config(sources(std::move(args), std::move(env), std::move(files)));
}

}  // namespace

TEST(WorkerConfig, DefaultsWhenNothingIsSet) {
    Config c = load({});
    EXPECT_EQ(c.db, "");
    EXPECT_EQ(c.listen_host, "127.0.0.1");
    EXPECT_EQ(c.listen_port, 8080);
    EXPECT_EQ(c.public_url, "http://127.0.0.1:8080");
    EXPECT_EQ(c.twilio_base, "https://api.twilio.com");
    EXPECT_EQ(c.stripe_base, "https://api.stripe.com");
    EXPECT_EQ(c.agent_deadline_ms, 10000);
    EXPECT_EQ(c.twilio_max_concurrent, 50);
    EXPECT_EQ(c.max_in_flight, 2500);
    EXPECT_EQ(c.max_in_flight_per_agent, 0);  // four fifths of max-in-flight, decided by the runner
    EXPECT_EQ(c.pool_size, 8);
    EXPECT_EQ(c.lease_seconds, 120);
    EXPECT_EQ(c.poll_interval_ms, 1000);
    EXPECT_EQ(c.tick_interval_ms, 1000);
    EXPECT_EQ(c.drain_timeout_ms, 15000);
    EXPECT_EQ(c.log_level, "info");
    EXPECT_NE(c.worker_name.find(':'), std::string::npos);  // hostname:pid
    EXPECT_TRUE(c.twilio_accounts.empty());
}

TEST(WorkerConfig, FlagsBeatEnvironmentBeatFileBeatDefaults) {
    std::map<std::string, std::string> files = {
        {"/etc/w.conf", "# comment\nagent-deadline-ms = 3000\npool-size = 2\nmax-in-flight = 10\n"}};
    std::map<std::string, std::string> env = {{"DARKSPERE_POOL_SIZE", "3"},
                                              {"DARKSPERE_MAX_IN_FLIGHT", "20"}};
    Config c = load({"--config", "/etc/w.conf", "--max-in-flight=30"}, env, files);
    EXPECT_EQ(c.agent_deadline_ms, 3000);  // file only
    EXPECT_EQ(c.pool_size, 3);             // env beats file
    EXPECT_EQ(c.max_in_flight, 30);        // flag beats env and file
}

TEST(WorkerConfig, ConfigFileMayBeNamedInTheEnvironment) {
    Config c = load({}, {{"DARKSPERE_CONFIG", "/w.conf"}}, {{"/w.conf", "listen = 0.0.0.0:9000\n"}});
    EXPECT_EQ(c.listen_host, "0.0.0.0");
    EXPECT_EQ(c.listen_port, 9000);
}

TEST(WorkerConfig, TwilioAccountsRepeatAndComeFromTheEnvironmentList) {
    Config flags = load({"--twilio-account", "AC1:t1", "--twilio-account=AC2:t2"});
    EXPECT_EQ(flags.twilio_accounts.size(), 2u);
    EXPECT_EQ(flags.twilio_accounts.at("AC2"), "t2");

    Config env = load({}, {{"DARKSPERE_TWILIO_ACCOUNTS", "AC1:t1, AC2:t2"}});
    EXPECT_EQ(env.twilio_accounts.at("AC1"), "t1");
    EXPECT_EQ(env.twilio_accounts.at("AC2"), "t2");

    // The highest layer that names any account supplies the whole list.
    Config both = load({"--twilio-account", "AC3:t3"}, {{"DARKSPERE_TWILIO_ACCOUNTS", "AC1:t1"}});
    EXPECT_EQ(both.twilio_accounts.size(), 1u);
    EXPECT_EQ(both.twilio_accounts.count("AC3"), 1u);
}

TEST(WorkerConfig, ListenAcceptsPortZeroAndIpv6) {
    EXPECT_EQ(load({"--listen", "127.0.0.1:0"}).listen_port, 0);
    Config v6 = load({"--listen", "[::1]:8081"});
    EXPECT_EQ(v6.listen_host, "::1");
    EXPECT_EQ(v6.listen_port, 8081);
}

TEST(WorkerConfig, PublicUrlLosesTrailingSlash) {
    EXPECT_EQ(load({"--public-url", "https://sms.example.com/"}).public_url, "https://sms.example.com");
}

TEST(WorkerConfig, HelpReturnsNothing) {
    EXPECT_FALSE(load_config(sources({"--help"})).has_value());
}

TEST(WorkerConfig, EnvNameIsUpperSnake) {
    EXPECT_EQ(env_name("agent-deadline-ms"), "DARKSPERE_AGENT_DEADLINE_MS");
}

TEST(WorkerConfig, BadInputsAreRefusedWithAHint) {
    const std::vector<std::vector<std::string>> bad = {
        {"--nope", "1"},
        {"--pool-size"},
        {"--pool-size", "0"},
        {"--pool-size", "four"},
        {"--listen", "8080"},
        {"--public-url", "ftp://x"},
        {"--twilio-account", "AC1"},
        {"--twilio-account", ":secret"},
        {"--log-level", "loud"},
        {"--twilio-max-concurrent", "0"},
        {"--twilio-max-concurrent", "10001"},
        {"stray"},
        {"--config", "/missing.conf"},
    };
    for (const auto &args : bad) {
        try {
            load_config(sources(args));
            ADD_FAILURE() << "accepted: " << args[0];
        } catch (const ConfigError &e) {
            EXPECT_FALSE(e.hint().empty()) << e.what();
        }
    }
}

TEST(WorkerConfig, ErrorsNeverQuoteATwilioToken) {
    try {
        load_config(sources({"--twilio-account", "AC1:"}));
        FAIL();
    } catch (const ConfigError &e) {
        EXPECT_NE(std::string(e.what()).find("AC1"), std::string::npos);
    }
    try {
        load_config(sources({"--twilio-account", ":supersecret"}));
        FAIL();
    } catch (const ConfigError &e) {
        EXPECT_EQ(std::string(e.what()).find("supersecret"), std::string::npos);
    }
}

TEST(WorkerConfig, UnknownKeyInFileNamesTheLine) {
    try {
        load_config(sources({"--config", "/w.conf"}, {}, {{"/w.conf", "\n\nbogus = 1\n"}}));
        FAIL();
    } catch (const ConfigError &e) {
        EXPECT_NE(std::string(e.what()).find("/w.conf:3"), std::string::npos);
    }
}

TEST(WorkerConfig, TwilioRequestSlotsPerAccountAreSettable) {
    EXPECT_EQ(load({"--twilio-max-concurrent", "100"}).twilio_max_concurrent, 100);
}

TEST(WorkerConfig, OneAgentsShareCannotExceedAllSlots) {
    EXPECT_EQ(load({"--max-in-flight", "100", "--max-in-flight-per-agent", "100"}).max_in_flight_per_agent,
              100);
    EXPECT_EQ(load({"--max-in-flight-per-agent", "40"}).max_in_flight_per_agent, 40);
    try {
        load({"--max-in-flight", "100", "--max-in-flight-per-agent", "101"});
        ADD_FAILURE() << "a per-agent share above max-in-flight was accepted";
    } catch (const ConfigError &e) {
        EXPECT_NE(std::string(e.what()).find("max-in-flight-per-agent (101)"), std::string::npos) << e.what();
    }
    EXPECT_THROW(load({"--max-in-flight-per-agent", "0"}), ConfigError);
}

TEST(WorkerConfig, OneAccountsShareDefaultsToHalfAndCannotExceedAllSlots) {
    EXPECT_EQ(load({}).max_in_flight_per_account, 0);  // half of max-in-flight, decided by the runner
    EXPECT_EQ(load({"--max-in-flight-per-account", "40"}).max_in_flight_per_account, 40);
    try {
        load({"--max-in-flight", "100", "--max-in-flight-per-account", "101"});
        ADD_FAILURE() << "a per-account share above max-in-flight was accepted";
    } catch (const ConfigError &e) {
        EXPECT_NE(std::string(e.what()).find("max-in-flight-per-account (101)"), std::string::npos)
            << e.what();
    }
    EXPECT_THROW(load({"--max-in-flight-per-account", "0"}), ConfigError);
}

TEST(WorkerConfig, LeaseMustOutliveTheAgentDeadline) {
    EXPECT_THROW(load({"--lease-seconds", "10", "--agent-deadline-ms", "10000"}), ConfigError);
    EXPECT_THROW(load({"--lease-seconds", "5", "--agent-deadline-ms", "4500"}), ConfigError);
    EXPECT_EQ(load({"--lease-seconds", "5", "--agent-deadline-ms", "3000", "--twilio-deadline-ms", "3000"})
                  .lease_seconds,
              5);
    try {
        load({"--lease-seconds", "10"});
        FAIL();
    } catch (const ConfigError &e) {
        EXPECT_NE(e.hint().find("lease-seconds"), std::string::npos);
    }
}

// ---- where the worker may call out, what an agent may send back (issue #10 items 2 and 8)

TEST(WorkerConfig, EgressDefaultsAreStrict) {
    Config c = load({});
    EXPECT_EQ(c.agent_max_response_bytes, 256 * 1024);
    EXPECT_FALSE(c.agent_allow_private);
    EXPECT_FALSE(c.allow_insecure_http);
}

TEST(WorkerConfig, EgressSettingsFromFlagsEnvironmentAndFile) {
    Config c = load({"--agent-allow-private", "on", "--agent-max-response-bytes=4096"},
                    {{"DARKSPERE_ALLOW_INSECURE_HTTP", "true"}});
    EXPECT_TRUE(c.agent_allow_private);
    EXPECT_TRUE(c.allow_insecure_http);
    EXPECT_EQ(c.agent_max_response_bytes, 4096);
    Config f = load({"--config", "/w.conf"}, {},
                    {{"/w.conf", "agent-allow-private = off\nallow-insecure-http = no\n"}});
    EXPECT_FALSE(f.agent_allow_private);
    EXPECT_FALSE(f.allow_insecure_http);
}

TEST(WorkerConfig, EgressSettingsRefuseBadValues) {
    EXPECT_THROW(load({"--agent-allow-private", "maybe"}), ConfigError);
    EXPECT_THROW(load({"--agent-max-response-bytes", "10"}), ConfigError);
    EXPECT_THROW(load({"--agent-max-response-bytes", "1000000000"}), ConfigError);
}

TEST(WorkerConfig, PlainHttpTwilioBaseNeedsAllowInsecureHttp) {
    try {
        load({"--twilio-base", "http://127.0.0.1:9999"});
        FAIL() << "an http twilio-base was accepted";
    } catch (const ConfigError &e) {
        EXPECT_NE(std::string(e.what()).find("twilio-base"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("scheme http"), std::string::npos) << e.what();
        EXPECT_NE(e.hint().find("allow-insecure-http"), std::string::npos) << e.hint();
    }
    EXPECT_THROW(load({"--stripe-base", "http://127.0.0.1:9998"}), ConfigError);
    // The order of the settings does not matter: validation runs after every layer.
    Config c = load({"--twilio-base", "http://127.0.0.1:9999", "--allow-insecure-http", "on"});
    EXPECT_EQ(c.twilio_base, "http://127.0.0.1:9999");
    Config f = load({"--allow-insecure-http", "on"}, {{"DARKSPERE_TWILIO_BASE", "http://127.0.0.1:9999"}});
    EXPECT_EQ(f.twilio_base, "http://127.0.0.1:9999");
    EXPECT_EQ(load({"--twilio-base", "https://twilio.example.com"}).twilio_base,
              "https://twilio.example.com");
}

TEST(WorkerConfig, ConnectionLimitsAndAdminListener) {
    Config d = load({});
    EXPECT_EQ(d.max_connections_per_ip, 64);
    EXPECT_EQ(d.header_timeout_ms, 10000);
    EXPECT_EQ(d.idle_timeout_ms, 5000);
    EXPECT_EQ(d.admin_listen_host, "") << "no admin listener unless asked for";

    Config c =
        load({"--max-connections-per-ip", "8", "--header-timeout-ms=1500", "--admin-listen", "[::1]:9090"},
             {{"DARKSPERE_IDLE_TIMEOUT_MS", "2500"}});
    EXPECT_EQ(c.max_connections_per_ip, 8);
    EXPECT_EQ(c.header_timeout_ms, 1500);
    EXPECT_EQ(c.idle_timeout_ms, 2500);
    EXPECT_EQ(c.admin_listen_host, "::1");
    EXPECT_EQ(c.admin_listen_port, 9090);

    Config f = load({"--config", "w.conf"}, {}, {{"w.conf", "admin-listen =\nidle-timeout-ms = 100\n"}});
    EXPECT_EQ(f.admin_listen_host, "") << "an empty admin-listen (the sample file's line) means off";
    EXPECT_EQ(f.idle_timeout_ms, 100);

    EXPECT_THROW(load({"--max-connections-per-ip", "0"}), ConfigError);
    EXPECT_THROW(load({"--header-timeout-ms", "99"}), ConfigError);
    EXPECT_THROW(load({"--admin-listen", "9090"}), ConfigError) << "HOST:PORT";
}

// The config file holds secrets: 0600 (or stricter) is private; 0640 is private only as the Debian package
// ships it — owned by root, group the worker's own, the worker not root (the package test failed with the
// stricter rule: the installed worker refused /etc/darkspere/worker.conf 0640 root:darkspere and never
// started).
TEST(WorkerConfig, ConfigFileIsPrivateWhenOnlyTheWorkerOrRootAndItsGroupCanReadIt) {
    const unsigned worker = 101, worker_group = 103, other_group = 50;
    EXPECT_TRUE(config_file_private({0600, worker, worker_group}, worker, worker_group));
    EXPECT_TRUE(config_file_private({0400, worker, worker_group}, worker, worker_group));
    EXPECT_TRUE(config_file_private({0640, 0, worker_group}, worker, worker_group)) << "root:darkspere 0640";
    EXPECT_FALSE(config_file_private({0640, 0, other_group}, worker, worker_group))
        << "another group may read it";
    EXPECT_FALSE(config_file_private({0640, worker, worker_group}, worker, worker_group))
        << "the worker owns it: 0600 is enough";
    EXPECT_FALSE(config_file_private({0660, 0, worker_group}, worker, worker_group))
        << "the group may write it";
    EXPECT_FALSE(config_file_private({0644, 0, worker_group}, worker, worker_group)) << "others may read it";
    EXPECT_FALSE(config_file_private({0640, 0, 0}, 0, 0))
        << "a worker running as root gets no group exception";
}

TEST(WorkerConfig, AConfigFileOthersMayReadIsRefusedWithAHint) {
    ConfigSources s = sources({"--config", "w.conf"}, {}, {{"w.conf", "log-level = info\n"}});
    s.euid = 101;
    s.egid = 103;
    s.file_mode = [](const std::string &) { return std::optional<FileAccess>(FileAccess{0644, 0, 103}); };
    try {
        load_config(s);
        FAIL() << "a world-readable config file was accepted";
    } catch (const ConfigError &e) {
        EXPECT_NE(std::string(e.what()).find("mode 0644"), std::string::npos) << e.what();
    }
    s.file_mode = [](const std::string &) { return std::optional<FileAccess>(FileAccess{0640, 0, 103}); };
    EXPECT_NO_THROW(load_config(s));
}
