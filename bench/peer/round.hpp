// bench/peer/round.hpp — one closed-loop load round: conversations that text the worker and await each reply.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "client_pool.hpp"
#include "twilio_api.hpp"
#include "webhook.hpp"

namespace darkspere::bench {

// What a `round` command asks for (JSON keys in parentheses; see parse_round_spec for defaults).
struct RoundSpec {
    std::string tag;          // (tag) echoed in the result
    std::string body_prefix;  // (body_prefix) message i says body_prefix + i; default "bench <tag> "
    size_t messages = 0;      // (messages)
    size_t concurrency = 0;   // (concurrency) conversations at once
    size_t connections = 0;   // (connections) keep-alive connections at most; default min(concurrency, 256)
    size_t phones = 0;        // (phones) message i comes from phone i % phones
    std::string from_base;    // (from_base) phone k is "+1" + from_base + k on 7 digits
    std::string to;           // (to) the service number texted
    std::string target;       // (target) where to post: the worker's /twilio/sms
    std::string signed_url;   // (signed_url) the URL signed; default target (the worker's public URL)
    // (targets) instead of target: several workers' /twilio/sms URLs; conversation c posts to targets[c % n],
    // signed for that URL (each worker's public URL), over its own connection pool (connections / n each).
    std::vector<std::string> targets;
    std::string account_sid, auth_token;              // (account_sid, auth_token)
    std::chrono::milliseconds post_timeout{30000};    // (post_timeout_ms) one webhook, end to end
    std::chrono::milliseconds reply_timeout{180000};  // (reply_timeout_ms) one reply at the stand-in
    std::chrono::milliseconds deadline{600000};       // (deadline_ms) the whole round
};

// parse_round_spec reads a round command's JSON; nullopt with *error set if something is missing or wrong.
std::optional<RoundSpec> parse_round_spec(const nlohmann::json &j, std::string *error);

// Round runs `concurrency` conversations. A conversation takes the next message, posts its signed webhook
// over the shared connection pool and, once the worker answered 2xx, waits until the stand-in accepted that
// message's reply (the echo agent repeats the unique body) before taking another: a closed loop, like people
// who text and wait for the answer, so the measured rate is one the platform sustains. Every wait is bounded
// (post_timeout, reply_timeout, deadline); a reply that does not come is counted and the conversation goes
// on. When the last conversation ends (or the deadline passes) `done` gets the result:
//   {tag, messages, startedAt, endedAt, sentAt[i], receivedAt[i] (null: no reply), respMs[], statuses{},
//    received, replyTimeouts, duplicateReplies, otherMessages (sends during the round that are no reply of
//    it), connectionsOpened, error (null or why the round ended early)}
// with times in epoch milliseconds, in the units and meaning of the Node load generator's figures.
class Round : public std::enable_shared_from_this<Round> {
  public:
    using Done = std::function<void(nlohmann::json)>;

    Round(boost::asio::io_context &io, RoundSpec spec, std::vector<WebhookTarget> targets, Done done);
    void start();

    // on_message offers a send the stand-in accepted; true if it is the reply to one of this round's
    // messages.
    bool on_message(const SentMessage &m);

  private:
    struct Conversation {
        explicit Conversation(boost::asio::io_context &io) : timer(io) {}
        boost::asio::steady_timer timer;  // the reply wait
    };

    void next(size_t c);
    void posted(size_t c, size_t i, PostResult result);
    void reply_timed_out(size_t c, size_t i);
    void finish(std::string error);

    boost::asio::io_context &io_;
    RoundSpec spec_;
    std::vector<WebhookTarget> targets_;  // targets_[k] is spec_.targets[k]
    Done done_;
    std::vector<std::shared_ptr<ClientPool>> pools_;  // one per target
    boost::asio::steady_timer deadline_;
    std::vector<std::unique_ptr<Conversation>> conversations_;
    std::vector<long long> sent_at_, received_at_;  // 0: not (yet)
    std::vector<int> waiter_;                       // the conversation awaiting message i's reply, or -1
    std::vector<long long> resp_ms_;                // in completion order, as the Node generator pushes them
    std::map<std::string, long long> statuses_;
    size_t next_ = 0, running_ = 0, received_ = 0, reply_timeouts_ = 0, duplicates_ = 0, others_ = 0;
    long long started_at_ = 0;
    bool finished_ = false;
};

}  // namespace darkspere::bench
