// bench/peer/control.hpp — the stdin/stdout control channel: one command per line in, one JSON line out.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/streambuf.hpp>

#include "round.hpp"
#include "server.hpp"
#include "twilio_api.hpp"

namespace darkspere::bench {

// Control reads commands from stdin and answers each with exactly one JSON line on stdout:
//   round {…RoundSpec JSON…}   run a load round; the line is the round's result (see round.hpp), or
//                              {"error": …} if the command is wrong or a round is already running
//   stats                      {"accepted", "refused", "agentCalls", "unmatched", "openConnections"}
//   quit                       {"bye": true}, then the process exits; so does end of input
class Control {
  public:
    Control(boost::asio::io_context &io, const HttpServer &server, const TwilioApi &api,
            const unsigned long long &agent_calls);
    void start();

    // on_message routes a send the stand-in accepted to the running round, if it is one of its replies.
    void on_message(const SentMessage &m);

  private:
    void read();
    void command(const std::string &line);
    void print(const nlohmann::json &j);

    boost::asio::io_context &io_;
    boost::asio::posix::stream_descriptor in_;
    boost::asio::streambuf buffer_;
    const HttpServer &server_;
    const TwilioApi &api_;
    const unsigned long long &agent_calls_;
    std::shared_ptr<Round> round_;
    unsigned long long unmatched_ = 0;
};

}  // namespace darkspere::bench
