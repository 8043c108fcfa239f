// bench/peer/round.cpp — closed-loop load rounds (see round.hpp).
#include "round.hpp"

#include <algorithm>

#include "clock_ids.hpp"

namespace darkspere::bench {

namespace asio = boost::asio;

namespace {

// Node's http.Agent in the Node load generator holds at most this many sockets
// (test/e2e/lib/twilio-webhook.mjs).
constexpr size_t DEFAULT_MAX_CONNECTIONS = 256;

std::string phone(const std::string &base, size_t k) {
    std::string digits = std::to_string(k);
    return "+1" + base + std::string(digits.size() < 7 ? 7 - digits.size() : 0, '0') + digits;
}

}  // namespace

std::optional<RoundSpec> parse_round_spec(const nlohmann::json &j, std::string *error) {
    if (!j.is_object()) {
        *error = "round wants a JSON object";
        return std::nullopt;
    }
    RoundSpec s;
    try {
        auto text = [&](const char *key, std::string *out, bool required) {
            auto it = j.find(key);
            if (it == j.end()) {
                if (required)
                    throw std::runtime_error(std::string("round lacks ") + key);
                return;
            }
            *out = it->get<std::string>();
        };
        auto count = [&](const char *key, size_t fallback) -> size_t {
            auto it = j.find(key);
            if (it == j.end())
                return fallback;
            long long v = it->get<long long>();
            if (v < 0)
                throw std::runtime_error(std::string(key) + " must not be negative");
            return static_cast<size_t>(v);
        };
        text("tag", &s.tag, false);
        s.body_prefix = "bench " + s.tag + " ";
        text("body_prefix", &s.body_prefix, false);
        text("from_base", &s.from_base, true);
        text("to", &s.to, true);
        if (auto it = j.find("targets"); it != j.end()) {
            s.targets = it->get<std::vector<std::string>>();
            if (s.targets.empty())
                throw std::runtime_error("targets must not be empty");
            s.target = s.targets[0];
        } else {
            text("target", &s.target, true);
            s.targets = {s.target};
        }
        text("account_sid", &s.account_sid, true);
        text("auth_token", &s.auth_token, true);
        s.signed_url = s.target;
        text("signed_url", &s.signed_url, false);
        s.messages = count("messages", 0);
        s.concurrency = count("concurrency", 0);
        s.phones = count("phones", 0);
        s.connections = count("connections", std::min(s.concurrency, DEFAULT_MAX_CONNECTIONS));
        s.post_timeout = std::chrono::milliseconds(count("post_timeout_ms", s.post_timeout.count()));
        s.reply_timeout = std::chrono::milliseconds(count("reply_timeout_ms", s.reply_timeout.count()));
        s.deadline = std::chrono::milliseconds(count("deadline_ms", s.deadline.count()));
    } catch (const std::exception &e) {
        *error = e.what();
        return std::nullopt;
    }
    if (s.targets.size() > 1 && j.contains("signed_url")) {
        *error = "signed_url goes with one target; with several, each is signed for its own URL";
        return std::nullopt;
    }
    if (!s.messages || !s.concurrency || !s.phones || !s.connections) {
        *error = "messages, concurrency, phones and connections must be positive";
        return std::nullopt;
    }
    return s;
}

Round::Round(asio::io_context &io, RoundSpec spec, std::vector<WebhookTarget> targets, Done done)
    : io_(io), spec_(std::move(spec)), targets_(std::move(targets)), done_(std::move(done)), deadline_(io) {
    size_t per_pool = std::max<size_t>(1, spec_.connections / targets_.size());
    for (const auto &t : targets_)
        pools_.push_back(std::make_shared<ClientPool>(io_, t.endpoint, per_pool, spec_.post_timeout));
    sent_at_.assign(spec_.messages, 0);
    received_at_.assign(spec_.messages, 0);
    waiter_.assign(spec_.messages, -1);
    resp_ms_.reserve(spec_.messages);
}

void Round::start() {
    started_at_ = epoch_ms();
    deadline_.expires_after(spec_.deadline);
    deadline_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec)
            self->finish("round deadline of " + std::to_string(self->spec_.deadline.count()) + " ms passed");
    });
    size_t lanes = std::min(spec_.concurrency, spec_.messages);
    running_ = lanes;
    for (size_t c = 0; c < lanes; ++c) {
        conversations_.push_back(std::make_unique<Conversation>(io_));
        next(c);
    }
}

void Round::next(size_t c) {
    if (finished_)
        return;
    if (next_ >= spec_.messages) {
        if (--running_ == 0)
            finish("");
        return;
    }
    size_t i = next_++;
    auto params = inbound_params(spec_.account_sid, phone(spec_.from_base, i % spec_.phones), spec_.to,
                                 spec_.body_prefix + std::to_string(i), "SM" + random_hex(32));
    sent_at_[i] = epoch_ms();  // before signing, as the Node generator times it
    size_t k = c % targets_.size();
    const std::string &signed_url = targets_.size() == 1 ? spec_.signed_url : spec_.targets[k];
    Request req = signed_webhook(targets_[k], signed_url, spec_.auth_token, params);
    pools_[k]->post(std::move(req), [self = shared_from_this(), c, i](PostResult result) {
        self->posted(c, i, std::move(result));
    });
}

void Round::posted(size_t c, size_t i, PostResult result) {
    if (finished_)
        return;
    resp_ms_.push_back(epoch_ms() - sent_at_[i]);
    ++statuses_[result.status ? std::to_string(result.status) : "error " + result.error];
    // Only an accepted webhook gets a reply; one that already arrived needs no wait.
    if (result.status < 200 || result.status >= 300 || received_at_[i]) {
        next(c);
        return;
    }
    waiter_[i] = static_cast<int>(c);
    auto &timer = conversations_[c]->timer;
    timer.expires_after(spec_.reply_timeout);
    timer.async_wait(
        [self = shared_from_this(), c, i](boost::system::error_code) { self->reply_timed_out(c, i); });
}

void Round::reply_timed_out(size_t c, size_t i) {
    // A cancelled wait, or one whose expiry raced the reply, finds the conversation no longer waiting on i.
    if (finished_ || waiter_[i] != static_cast<int>(c))
        return;
    waiter_[i] = -1;
    ++reply_timeouts_;
    next(c);
}

bool Round::on_message(const SentMessage &m) {
    if (finished_)
        return false;
    // The echo reply is "<agent>: <body_prefix><i> [history N]".
    size_t at = m.body.find(spec_.body_prefix);
    size_t p = at == std::string::npos ? m.body.size() : at + spec_.body_prefix.size(), digits = 0;
    size_t i = 0;
    while (p < m.body.size() && m.body[p] >= '0' && m.body[p] <= '9' && digits < 18) {
        i = i * 10 + static_cast<size_t>(m.body[p++] - '0');
        ++digits;
    }
    if (!digits || m.body.compare(p, 9, " [history") != 0 || i >= spec_.messages) {
        ++others_;
        return false;
    }
    if (received_at_[i]) {
        ++duplicates_;
        return true;
    }
    received_at_[i] = m.received_ms;
    ++received_;
    int c = waiter_[i];
    if (c >= 0) {
        waiter_[i] = -1;
        conversations_[static_cast<size_t>(c)]->timer.cancel();
        next(static_cast<size_t>(c));
    }
    return true;
}

void Round::finish(std::string error) {
    if (finished_)
        return;
    finished_ = true;
    long long ended_at = epoch_ms();
    deadline_.cancel();
    for (auto &conv : conversations_)
        conv->timer.cancel();
    size_t opened = 0;
    for (auto &pool : pools_) {
        pool->close();
        opened += pool->opened();
    }

    nlohmann::json sent = nlohmann::json::array(), received = nlohmann::json::array();
    for (size_t i = 0; i < spec_.messages; ++i) {
        sent.push_back(sent_at_[i] ? nlohmann::json(sent_at_[i]) : nlohmann::json(nullptr));
        received.push_back(received_at_[i] ? nlohmann::json(received_at_[i]) : nlohmann::json(nullptr));
    }
    nlohmann::json result = {
        {"tag", spec_.tag},
        {"messages", spec_.messages},
        {"startedAt", started_at_},
        {"endedAt", ended_at},
        {"sentAt", std::move(sent)},
        {"receivedAt", std::move(received)},
        {"respMs", resp_ms_},
        {"statuses", statuses_},
        {"received", received_},
        {"replyTimeouts", reply_timeouts_},
        {"duplicateReplies", duplicates_},
        {"otherMessages", others_},
        {"connectionsOpened", opened},
        {"error", error.empty() ? nlohmann::json(nullptr) : nlohmann::json(error)},
    };
    // Called last and through a copy: the receiver may drop its reference to this round.
    Done done = std::move(done_);
    done(std::move(result));
}

}  // namespace darkspere::bench
