// src/worker/http_client_curl.cpp — libcurl multi + Asio integration (see http_client_curl.hpp).
#include "http_client_curl.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include <boost/asio/post.hpp>

#include "log.hpp"

namespace darkspere::worker {

namespace asio = boost::asio;

std::string HttpResponse::header(std::string_view name) const {
    for (const auto &[k, v] : headers) {
        if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) ==
                       std::tolower(static_cast<unsigned char>(b));
            }))
            return v;
    }
    return {};
}

std::string HttpResponse::failure(std::string_view what) const {
    if (too_large)
        return std::string(what) + " " + error;
    if (status == 0)
        return timed_out ? "timeout" : error.empty() ? "no response" : error;
    if (status < 200 || status >= 300)
        return std::string(what) + " http " + std::to_string(status);
    return {};
}

struct CurlHttpClient::Transfer {
    CurlHttpClient *client = nullptr;
    CURL *easy = nullptr;
    curl_slist *headers = nullptr;
    HttpRequest request;
    HttpResponse response;
    std::function<void(HttpResponse)> on_done;
    bool stopped_early = false;
    size_t received = 0;     // header and body bytes so far, checked against request.max_response_bytes
    bool too_large = false;  // the cap was hit and the transfer aborted
    std::string refused;     // why the guard refused a connection (the last one, if curl tried several)
    ~Transfer() {
        if (headers)
            curl_slist_free_all(headers);
    }
};

CurlHttpClient::CurlHttpClient(asio::io_context &io, std::string user_agent, ConnectGuard guard)
    : io_(io),
      user_agent_(std::move(user_agent)),
      guard_(std::move(guard)),
      timer_(io),
      alive_(std::make_shared<bool>(true)) {
    multi_ = curl_multi_init();
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlHttpClient::on_socket);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlHttpClient::on_timer);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
    // Keep enough idle connections to reuse them for many agents at once.
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, 4096L);
}

CurlHttpClient::~CurlHttpClient() {
    *alive_ = false;
    for (auto &[easy, t] : transfers_) {
        curl_multi_remove_handle(multi_, easy);
        curl_easy_cleanup(easy);
    }
    transfers_.clear();
    curl_multi_cleanup(multi_);  // closes cached connections through on_close_socket
    for (auto &[fd, s] : sockets_) {
        boost::system::error_code ignored;
        s->descriptor.release();
        (void)ignored;
    }
}

void CurlHttpClient::send(HttpRequest request, std::function<void(HttpResponse)> on_done) {
    auto t = std::make_unique<Transfer>();
    t->client = this;
    t->request = std::move(request);
    t->on_done = std::move(on_done);
    CURL *easy = curl_easy_init();
    t->easy = easy;
    const HttpRequest &r = t->request;

    curl_easy_setopt(easy, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t.get());
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<long>(1, r.deadline.count())));
    curl_easy_setopt(easy, CURLOPT_USERAGENT, user_agent_.c_str());
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &CurlHttpClient::on_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &CurlHttpClient::on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &CurlHttpClient::on_open_socket);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, &CurlHttpClient::on_close_socket);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, this);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    // Small receive buffers keep thousands of concurrent calls within the memory budget.
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 16384L);
    curl_easy_setopt(easy, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);

    if (r.method == "POST") {
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, r.body.data());
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    } else if (r.method == "GET") {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, r.method.c_str());
        if (!r.body.empty()) {
            curl_easy_setopt(easy, CURLOPT_POSTFIELDS, r.body.data());
            curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
        }
    }
    if (!r.basic_auth_user.empty()) {
        curl_easy_setopt(easy, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(easy, CURLOPT_USERNAME, r.basic_auth_user.c_str());
        curl_easy_setopt(easy, CURLOPT_PASSWORD, r.basic_auth_password.c_str());
    }
    for (const auto &[name, value] : r.headers) {
        std::string line = name + ": " + value;
        t->headers = curl_slist_append(t->headers, line.c_str());
    }
    // No "Expect: 100-continue" round trip: peers answer the whole request at once.
    t->headers = curl_slist_append(t->headers, "Expect:");
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);

    transfers_.emplace(easy, std::move(t));
    CURLMcode rc = curl_multi_add_handle(multi_, easy);
    if (rc != CURLM_OK) {
        auto node = transfers_.extract(easy);
        HttpResponse resp;
        resp.error = curl_multi_strerror(rc);
        auto done = std::move(node.mapped()->on_done);
        curl_easy_cleanup(easy);
        asio::post(io_,
                   [done = std::move(done), resp = std::move(resp)]() mutable { done(std::move(resp)); });
    }
}

// over_cap — counts len more received bytes; true (and the transfer marked) once they pass the cap.
bool CurlHttpClient::over_cap(Transfer *t, size_t len) {
    t->received += len;
    if (t->received <= t->request.max_response_bytes)
        return false;
    t->too_large = true;
    return true;
}

size_t CurlHttpClient::on_write(char *data, size_t size, size_t n, void *p) {
    auto *t = static_cast<Transfer *>(p);
    size_t len = size * n;
    if (over_cap(t, len))
        return 0;  // aborts the transfer with CURLE_WRITE_ERROR; reported as too_large below
    t->response.body.append(data, len);
    if (t->request.on_body_chunk && t->request.on_body_chunk(std::string_view(data, len))) {
        t->stopped_early = true;
        return 0;  // makes curl end the transfer with CURLE_WRITE_ERROR, reported as a normal response below
    }
    return len;
}

size_t CurlHttpClient::on_header(char *data, size_t size, size_t n, void *p) {
    auto *t = static_cast<Transfer *>(p);
    size_t len = size * n;
    if (over_cap(t, len))
        return 0;  // endless header lines are as much a flood as an endless body
    std::string_view line(data, len);
    if (line.rfind("HTTP/", 0) == 0) {
        t->response.headers.clear();  // a new response (after 100 Continue or a redirect) starts over
        return len;
    }
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
        std::string_view name = line.substr(0, colon), value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
            value.remove_prefix(1);
        while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
            value.remove_suffix(1);
        t->response.headers.emplace_back(std::string(name), std::string(value));
    }
    return len;
}

curl_socket_t CurlHttpClient::on_open_socket(void *p, curlsocktype, struct curl_sockaddr *a) {
    auto *t = static_cast<Transfer *>(p);
    // Here curl has resolved the name and is about to connect: the only point that sees the address actually
    // used, whatever DNS answered before.
    if (t->client->guard_) {
        std::string refusal = t->client->guard_(&a->addr);
        if (!refusal.empty()) {
            t->refused = std::move(refusal);
            return CURL_SOCKET_BAD;  // curl tries the next address, or fails with CURLE_COULDNT_CONNECT
        }
    }
    return ::socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

int CurlHttpClient::on_close_socket(void *p, curl_socket_t fd) {
    auto *self = static_cast<CurlHttpClient *>(p);
    // Asio must forget the descriptor before the number can be reused by a new socket.
    auto it = self->sockets_.find(fd);
    if (it != self->sockets_.end()) {
        it->second->closed = true;
        boost::system::error_code ignored;
        it->second->descriptor.cancel(ignored);
        it->second->descriptor.release();
        self->sockets_.erase(it);
    }
    return ::close(fd);
}

int CurlHttpClient::on_socket(CURL *, curl_socket_t fd, int what, void *p, void *) {
    auto *self = static_cast<CurlHttpClient *>(p);
    auto it = self->sockets_.find(fd);
    if (what == CURL_POLL_REMOVE) {
        if (it != self->sockets_.end()) {
            it->second->want = 0;
            boost::system::error_code ignored;
            it->second->descriptor.cancel(ignored);
        }
        return 0;
    }
    if (it == self->sockets_.end())
        it = self->sockets_.emplace(fd, std::make_shared<Socket>(self->io_, fd)).first;
    it->second->want = what;
    self->arm(it->second);
    return 0;
}

void CurlHttpClient::arm(const std::shared_ptr<Socket> &s) {
    std::weak_ptr<bool> alive = alive_;
    int fd = s->descriptor.native_handle();
    if ((s->want & CURL_POLL_IN) && !s->reading) {
        s->reading = true;
        s->descriptor.async_wait(asio::posix::descriptor_base::wait_read,
                                 [this, alive, s, fd](const boost::system::error_code &ec) {
                                     s->reading = false;
                                     if (alive.expired() || s->closed)
                                         return;
                                     if (ec == asio::error::operation_aborted) {
                                         rearm_after_cancel(s);
                                         return;
                                     }
                                     socket_ready(fd, CURL_CSELECT_IN | (ec ? CURL_CSELECT_ERR : 0));
                                 });
    }
    if ((s->want & CURL_POLL_OUT) && !s->writing) {
        s->writing = true;
        s->descriptor.async_wait(asio::posix::descriptor_base::wait_write,
                                 [this, alive, s, fd](const boost::system::error_code &ec) {
                                     s->writing = false;
                                     if (alive.expired() || s->closed)
                                         return;
                                     if (ec == asio::error::operation_aborted) {
                                         rearm_after_cancel(s);
                                         return;
                                     }
                                     socket_ready(fd, CURL_CSELECT_OUT | (ec ? CURL_CSELECT_ERR : 0));
                                 });
    }
}

// rearm_after_cancel — a wait was cancelled (curl said CURL_POLL_REMOVE), but until its handler ran, arm()
// saw the wait as still pending and started no other. If curl wants the socket again by now (a kept-alive
// connection reused by the next request before the cancelled handler ran), nothing would watch it: its answer
// would sit unread until the request's deadline. Re-arming here closes that gap; arm() starts only the waits
// still missing.
void CurlHttpClient::rearm_after_cancel(const std::shared_ptr<Socket> &s) {
    if (s->want)
        arm(s);
}

void CurlHttpClient::socket_ready(int fd, int direction) {
    int running = 0;
    curl_multi_socket_action(multi_, fd, direction, &running);
    collect_finished();
    // curl may still want this socket; a wait that fired must be renewed.
    auto it = sockets_.find(fd);
    if (it != sockets_.end() && it->second->want)
        arm(it->second);
}

int CurlHttpClient::on_timer(CURLM *, long timeout_ms, void *p) {
    auto *self = static_cast<CurlHttpClient *>(p);
    std::weak_ptr<bool> alive = self->alive_;
    if (timeout_ms == 0) {
        // "Act now" comes with nearly every request started or finished; posting it, once, costs no timer
        // syscall (re-arming the steady_timer cost a timerfd_settime each time: 8 % of the worker's CPU under
        // load). A timer armed earlier may still fire: curl treats an early timeout call as a no-op.
        if (!self->immediate_pending_) {
            self->immediate_pending_ = true;
            boost::asio::post(self->io_, [self, alive] {
                if (alive.expired())
                    return;
                self->immediate_pending_ = false;
                self->timer_fired();
            });
        }
        return 0;
    }
    if (timeout_ms < 0) {
        self->timer_.cancel();
        return 0;
    }
    self->timer_.expires_after(std::chrono::milliseconds(timeout_ms));  // cancels the previous wait
    self->timer_.async_wait([self, alive](const boost::system::error_code &ec) {
        if (ec || alive.expired())
            return;
        self->timer_fired();
    });
    return 0;
}

void CurlHttpClient::timer_fired() {
    int running = 0;
    curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
    collect_finished();
}

void CurlHttpClient::collect_finished() {
    int queued = 0;
    while (CURLMsg *msg = curl_multi_info_read(multi_, &queued)) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        auto node = transfers_.extract(easy);
        curl_multi_remove_handle(multi_, easy);
        if (node.empty()) {
            curl_easy_cleanup(easy);
            continue;
        }
        std::unique_ptr<Transfer> t = std::move(node.mapped());
        HttpResponse &resp = t->response;
        long status = 0;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        double total = 0;
        curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME, &total);
        resp.elapsed = std::chrono::milliseconds(static_cast<long>(total * 1000));
        if (t->too_large) {
            // The status (if any) stays, so a caller can tell "accepted, then flooded" from a refusal; the
            // partial body is dropped: it must not be mistaken for a whole answer.
            resp.status = status;
            resp.too_large = true;
            resp.body.clear();
            resp.body.shrink_to_fit();
            resp.error = "response larger than " + std::to_string(t->request.max_response_bytes) + " bytes";
        } else if (result == CURLE_OK || (t->stopped_early && result == CURLE_WRITE_ERROR)) {
            resp.status = status;
        } else if (result == CURLE_OPERATION_TIMEDOUT) {
            resp.status = 0;
            resp.timed_out = true;
            resp.error = "timeout after " + std::to_string(t->request.deadline.count()) + " ms";
        } else if (!t->refused.empty() && result == CURLE_COULDNT_CONNECT) {
            resp.status = 0;
            resp.error = t->refused;
        } else {
            resp.status = 0;
            resp.error = result == CURLE_COULDNT_CONNECT ? "connection refused" : curl_easy_strerror(result);
        }
        curl_easy_cleanup(easy);
        // Completion runs outside curl's call stack, so on_done may start new requests freely.
        asio::post(io_, [t = std::move(t)]() mutable { t->on_done(std::move(t->response)); });
    }
}

}  // namespace darkspere::worker
