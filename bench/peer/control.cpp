// bench/peer/control.cpp — stdin commands, JSON lines out (see control.hpp).
#include "control.hpp"

#include <unistd.h>

#include <cstdio>
#include <istream>

#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>

namespace darkspere::bench {

namespace asio = boost::asio;

Control::Control(asio::io_context &io, const HttpServer &server, const TwilioApi &api,
                 const unsigned long long &agent_calls)
    : io_(io), in_(io, ::dup(STDIN_FILENO)), server_(server), api_(api), agent_calls_(agent_calls) {}

void Control::start() {
    read();
}

void Control::read() {
    asio::async_read_until(in_, buffer_, '\n', [this](boost::system::error_code ec, size_t) {
        if (ec) {
            // End of input: the harness is gone (or done); nobody is left to read a result.
            io_.stop();
            return;
        }
        std::istream is(&buffer_);
        std::string line;
        std::getline(is, line);
        command(line);
        read();
    });
}

void Control::command(const std::string &line) {
    size_t space = line.find(' ');
    std::string verb = line.substr(0, space);
    std::string rest = space == std::string::npos ? "" : line.substr(space + 1);
    if (verb == "quit") {
        print({{"bye", true}});
        io_.stop();
        return;
    }
    if (verb == "stats") {
        print({{"accepted", api_.accepted()},
               {"refused", api_.refused()},
               {"agentCalls", agent_calls_},
               {"unmatched", unmatched_},
               {"openConnections", server_.open_connections()}});
        return;
    }
    if (verb != "round") {
        print({{"error", "unknown command: " + verb}});
        return;
    }
    if (round_) {
        print({{"error", "a round is already running"}});
        return;
    }
    std::string error;
    nlohmann::json j = nlohmann::json::parse(rest, nullptr, false);
    auto spec = j.is_discarded() ? std::nullopt : parse_round_spec(j, &error);
    if (!spec) {
        print({{"error", j.is_discarded() ? "round wants JSON" : error}});
        return;
    }
    std::vector<WebhookTarget> targets;
    for (const auto &url : spec->targets) {
        auto target = parse_target(url, &error);
        if (!target) {
            print({{"error", error}});
            return;
        }
        targets.push_back(std::move(*target));
    }
    round_ =
        std::make_shared<Round>(io_, std::move(*spec), std::move(targets), [this](nlohmann::json result) {
            // The round calls this from inside its own member functions: keep it alive until they have
            // returned.
            asio::post(io_, [ended = std::move(round_)] {});
            print(result);
        });
    round_->start();
}

void Control::on_message(const SentMessage &m) {
    if (!round_ || !round_->on_message(m))
        ++unmatched_;
}

void Control::print(const nlohmann::json &j) {
    // A blocking write is fine: the harness reads every line, and nothing else on this thread is urgent then.
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
}

}  // namespace darkspere::bench
