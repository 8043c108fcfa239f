// src/worker/fair_queue.hpp — a queue that serves its keys in turn: one item of each key with items waiting,
// then the next key, FIFO within a key.
//
// Used where one tenant's burst must not hold another tenant's single item back for the whole burst: the SMS
// sends waiting for a Twilio request slot (send_gate.hpp) and the job outcomes waiting for an ack statement
// (job_runner_ack.cpp). An item pushed under a key with nothing waiting is served after at most one item of every
// other key with items waiting.
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace darkspere::worker {

template <typename T>
class FairQueue {
  public:
    void push(const std::string &key, T item) {
        auto &queue = by_key_[key];
        if (queue.empty())
            turns_.push_back(key);
        queue.push_back(std::move(item));
        ++size_;
    }

    // pop — the next key's oldest item. Not on an empty queue.
    T pop() {
        std::string key = std::move(turns_.front());
        turns_.pop_front();
        auto it = by_key_.find(key);
        T item = std::move(it->second.front());
        it->second.pop_front();
        if (it->second.empty())
            by_key_.erase(it);
        else
            turns_.push_back(std::move(key));  // its next item waits for the other keys' turns
        --size_;
        return item;
    }

    // take_light — every item of the keys that have at most per_key_max waiting (and are not `skip`ped), keys
    // in turn order, while the total stays within total_max: what waits for keys without a backlog, leaving
    // the backlogs queued.
    template <typename Skip>
    std::vector<T> take_light(size_t per_key_max, size_t total_max, Skip skip) {
        std::vector<T> out;
        for (auto turn = turns_.begin(); turn != turns_.end();) {
            auto it = by_key_.find(*turn);
            size_t n = it->second.size();
            if (n > per_key_max || out.size() + n > total_max || skip(*turn)) {
                ++turn;
                continue;
            }
            for (T &item : it->second)
                out.push_back(std::move(item));
            size_ -= n;
            by_key_.erase(it);
            turn = turns_.erase(turn);
        }
        return out;
    }

    bool empty() const { return size_ == 0; }
    size_t size() const { return size_; }

  private:
    std::map<std::string, std::deque<T>> by_key_;
    std::deque<std::string> turns_;  // keys with items waiting, next first; each appears once
    size_t size_ = 0;
};

}  // namespace darkspere::worker
