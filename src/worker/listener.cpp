// src/worker/listener.cpp — LISTEN darkspere and turn notifications into claims (see listener.hpp).
#include "listener.hpp"

#include "log.hpp"

namespace darkspere::worker {

Listener::Listener(boost::asio::io_context &io, std::string conninfo)
    : connection_(std::make_shared<PgConnection>(io, std::move(conninfo), "listen")) {
    connection_->on_connected = [this] {
        connection_->query("LISTEN darkspere", {}, [this](PgResult r) {
            if (!r.ok) {
                // The connection drops and reconnects on its own if it broke; otherwise the poll timer covers
                // us.
                log_error("LISTEN failed", {{"sqlstate", r.sqlstate}, {"error", r.error}});
                return;
            }
            listening_ = true;
            if (on_ready)
                on_ready();
            if (on_wake)
                on_wake();
        });
    };
    connection_->on_lost = [this](const std::string &) { listening_ = false; };
    connection_->on_notify = [this](const std::string &) {
        if (on_wake)
            on_wake();
    };
}

void Listener::start() {
    connection_->start();
}

void Listener::stop() {
    listening_ = false;
    connection_->stop();
}

}  // namespace darkspere::worker
