// bench/peer/main.cpp — darkspere-bench-peer: the end-to-end benchmark's native peers and load generator.
//
// One single-threaded process serving, on one loopback port:
//   POST /agent                                            the instant echo agent (echo_agent.hpp)
//   POST /2010-04-01/Accounts/{AccountSid}/Messages.json   the Twilio Messages API stand-in (twilio_api.hpp)
// and driving closed-loop load rounds against the worker on command (control.hpp). It replaces the Node peers
// and load generator for bench/e2e/run.mjs PEERS=native: those cost about half a millisecond of CPU per
// message on the cores the benchmark measures, which is harness, not DarkSpere.
//
//   darkspere-bench-peer [--port 0] [--account AC…:token]… [--agent-name fast]
//
// The first stdout line is {"msg":"listening","port":N,"url":"http://127.0.0.1:N"}; then one JSON line per
// command read from stdin. Errors go to stderr. End of input ends the process.
#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "control.hpp"
#include "echo_agent.hpp"
#include "server.hpp"
#include "twilio_api.hpp"

namespace {

// More than the worker opens to its agents and to Twilio at once (max-in-flight defaults to 2,500).
constexpr size_t MAX_CONNECTIONS = 8192;

using namespace darkspere::bench;

struct Options {
    unsigned short port = 0;
    std::map<std::string, std::string> accounts;
    std::string agent_name = "fast";
};

[[noreturn]] void usage(const char *why) {
    std::fprintf(stderr,
                 "darkspere-bench-peer: %s\nusage: darkspere-bench-peer [--port N] [--account SID:TOKEN]... "
                 "[--agent-name NAME]\n",
                 why);
    std::exit(2);
}

Options parse_options(int argc, char **argv) {
    Options o;
    for (int k = 1; k < argc; ++k) {
        std::string arg = argv[k];
        if (k + 1 >= argc)
            usage(("missing value after " + arg).c_str());
        std::string value = argv[++k];
        if (arg == "--port") {
            o.port = static_cast<unsigned short>(std::stoul(value));
        } else if (arg == "--account") {
            size_t colon = value.find(':');
            if (colon == std::string::npos || colon == 0)
                usage("--account wants SID:TOKEN");
            o.accounts[value.substr(0, colon)] = value.substr(colon + 1);
        } else if (arg == "--agent-name") {
            o.agent_name = value;
        } else {
            usage(("unknown option " + arg).c_str());
        }
    }
    return o;
}

// raise_open_files lifts the soft descriptor limit to the hard one: the worker's connections to both peers
// and the load's connections to the worker add up to several hundred sockets, near the usual soft limit of
// 1024.
void raise_open_files() {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
}

}  // namespace

int main(int argc, char **argv) {
    Options options = parse_options(argc, argv);
    raise_open_files();
    try {
        boost::asio::io_context io{1};  // one thread: no locking anywhere
        Control *control = nullptr;
        TwilioApi api(options.accounts, [&control](const SentMessage &m) {
            if (control)
                control->on_message(m);
        });
        unsigned long long agent_calls = 0;
        // The worker keeps up to hundreds of keep-alive connections open to its agents and to Twilio.
        auto route = [&](const Request &req) -> Response {
            std::string_view target = req.target();
            std::string_view path = target.substr(0, target.find('?'));
            if (path == "/agent" && req.method() == http::verb::post) {
                ++agent_calls;
                return echo_agent(req, options.agent_name);
            }
            std::string_view account = TwilioApi::messages_path_account(path);
            if (!account.empty())
                return api.handle(req, account);
            return twilio_error_response(20404);
        };
        // Every connection comes from the worker under test, on 127.0.0.1: no per-address cap, and the 60 s
        // the worker's own server allowed before it had header and idle timeouts.
        darkspere::worker::HttpLimits limits;
        limits.max_connections = MAX_CONNECTIONS;
        limits.max_connections_per_ip = MAX_CONNECTIONS;
        limits.header_timeout = std::chrono::seconds(60);
        limits.idle_timeout = std::chrono::seconds(60);
        HttpServer server(
            io, [&route](Request &&req, Responder respond) { respond(route(req)); }, limits);
        unsigned short port = server.listen("127.0.0.1", options.port);
        Control commands(io, server, api, agent_calls);
        control = &commands;
        nlohmann::json hello = {
            {"msg", "listening"}, {"port", port}, {"url", "http://127.0.0.1:" + std::to_string(port)}};
        std::printf("%s\n", hello.dump().c_str());
        std::fflush(stdout);
        commands.start();
        io.run();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "darkspere-bench-peer: %s\n", e.what());
        return 1;
    }
    return 0;
}
