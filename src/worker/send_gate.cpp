// src/worker/send_gate.cpp — per-account request slots shared in turn between tenants (see send_gate.hpp).
#include "send_gate.hpp"

#include <boost/asio/post.hpp>

namespace darkspere::worker {

// Slot — one held request slot; frees it when the send's last reference goes.
class SendGate::Slot {
  public:
    Slot(SendGate &gate, std::string account)
        : gate_(gate), alive_(gate.alive_), account_(std::move(account)) {}
    ~Slot() {
        if (!alive_.expired())
            gate_.released(account_);
    }
    Slot(const Slot &) = delete;
    Slot &operator=(const Slot &) = delete;

  private:
    SendGate &gate_;
    std::weak_ptr<bool> alive_;
    std::string account_;
};

SendGate::SendGate(boost::asio::io_context &io, std::function<long()> limit)
    : io_(io), limit_(std::move(limit)) {}

SendGate::~SendGate() {
    alive_.reset();
}

SendGate::Permit SendGate::take_slot(const std::string &account) {
    ++accounts_[account].open;
    return std::make_shared<Slot>(*this, account);
}

void SendGate::enter(const std::string &account, const std::string &tenant, Clock::duration max_wait,
                     Start start, Expired expired) {
    Account &a = accounts_[account];
    // Sends already waiting go first even if a slot just freed: its admit() is on its way.
    if (a.waiting.empty() && a.open < limit_()) {
        start(take_slot(account));
        return;
    }
    a.waiting.push(tenant, Waiting{Clock::now(), max_wait, std::move(start), std::move(expired)});
    ++waiting_;
}

void SendGate::released(const std::string &account) {
    auto it = accounts_.find(account);
    if (it == accounts_.end())
        return;
    Account &a = it->second;
    --a.open;
    if (a.waiting.empty()) {
        if (a.open == 0)
            accounts_.erase(it);  // no state kept for accounts that are idle
        return;
    }
    // Not from inside the finished request's callback: the next send starts on a clean stack.
    boost::asio::post(io_, [this, alive = std::weak_ptr<bool>(alive_), account] {
        if (!alive.expired())
            admit(account);
    });
}

void SendGate::admit(const std::string &account) {
    auto it = accounts_.find(account);
    if (it == accounts_.end())
        return;
    Account &a = it->second;
    while (!a.waiting.empty() && a.open < limit_()) {
        Waiting w = a.waiting.pop();
        --waiting_;
        Clock::duration waited = Clock::now() - w.since;
        if (waited > w.max_wait)
            w.expired(waited);
        else
            w.start(take_slot(account));
    }
    if (a.open == 0 && a.waiting.empty())
        accounts_.erase(it);  // no state kept for accounts that are idle
}

long SendGate::waiting() const {
    return waiting_;
}

long SendGate::open(const std::string &account) const {
    auto it = accounts_.find(account);
    return it == accounts_.end() ? 0 : it->second.open;
}

}  // namespace darkspere::worker
