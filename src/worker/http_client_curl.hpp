// src/worker/http_client_curl.hpp — HttpClient on libcurl's multi interface, driven by the Asio event loop.
//
// curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to wake it
// (CURLMOPT_TIMERFUNCTION); Asio waits on those sockets without taking ownership of them. One multi handle
// serves every request, so connections to the same agent or API are kept alive and reused.
#pragma once

#include <curl/curl.h>

#include <functional>
#include <map>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "http_client.hpp"

namespace darkspere::worker {

// ConnectGuard — asked before every new connection with the address curl resolved; a non-empty answer refuses
// the connection and becomes the request's error (the request then ends with status 0).
using ConnectGuard = std::function<std::string(const struct sockaddr *address)>;

class CurlHttpClient final : public HttpClient {
  public:
    // user_agent is sent on every request. guard (optional) vets every new connection. Connections are kept
    // alive per client, so a client with a guard never reuses a connection opened without it.
    CurlHttpClient(boost::asio::io_context &io, std::string user_agent, ConnectGuard guard = {});
    ~CurlHttpClient() override;
    CurlHttpClient(const CurlHttpClient &) = delete;
    CurlHttpClient &operator=(const CurlHttpClient &) = delete;

    void send(HttpRequest request, std::function<void(HttpResponse)> on_done) override;

    // in_flight — requests started and not yet completed.
    size_t in_flight() const { return transfers_.size(); }

  private:
    friend class CurlHttpClientTestPeer;  // test/unit: drives the socket callbacks as curl would
    struct Transfer;
    struct Socket {
        explicit Socket(boost::asio::io_context &io, int fd) : descriptor(io, fd) {}
        boost::asio::posix::stream_descriptor descriptor;
        int want = 0;  // CURL_POLL_* currently asked for by curl
        bool reading = false, writing = false;
        bool closed = false;
    };

    static int on_socket(CURL *easy, curl_socket_t fd, int what, void *self, void *socketp);
    static int on_timer(CURLM *multi, long timeout_ms, void *self);
    static curl_socket_t on_open_socket(void *self, curlsocktype purpose, struct curl_sockaddr *address);
    static int on_close_socket(void *self, curl_socket_t fd);
    static size_t on_write(char *data, size_t size, size_t n, void *transfer);
    static size_t on_header(char *data, size_t size, size_t n, void *transfer);
    static bool over_cap(Transfer *t, size_t len);

    void arm(const std::shared_ptr<Socket> &socket);
    void rearm_after_cancel(const std::shared_ptr<Socket> &socket);
    void socket_ready(int fd, int direction);
    void timer_fired();
    void collect_finished();

    boost::asio::io_context &io_;
    std::string user_agent_;
    ConnectGuard guard_;
    CURLM *multi_ = nullptr;
    boost::asio::steady_timer timer_;
    bool immediate_pending_ = false;  // a posted "timeout now" that has not run yet
    std::map<int, std::shared_ptr<Socket>> sockets_;
    std::map<CURL *, std::unique_ptr<Transfer>> transfers_;
    std::shared_ptr<bool> alive_;
};

}  // namespace darkspere::worker
