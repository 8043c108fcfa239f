// src/common/sd_notify.cpp — the sd_notify datagram (see the header for why it is not libsystemd's).
#include "common/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace darkspere {

int sd_notify_state(const std::string &state, std::string *error) {
    const char *path = std::getenv("NOTIFY_SOCKET");
    if (path == nullptr || path[0] == '\0') {
        return 0;
    }
    auto fail = [error](const std::string &what) {
        if (error != nullptr) {
            *error = what;
        }
        return -1;
    };
    size_t len = std::strlen(path);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof addr.sun_path) {
        return fail("NOTIFY_SOCKET is neither an absolute path nor an abstract socket name");
    }
    std::memcpy(addr.sun_path, path, len);
    if (path[0] == '@') {
        addr.sun_path[0] = '\0';  // abstract namespace: a leading NUL, and the length counts exactly the name
    }
    socklen_t addr_len =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len + (path[0] == '/' ? 1 : 0));
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return fail(std::string("socket: ") + std::strerror(errno));
    }
    ssize_t sent =
        ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr *>(&addr), addr_len);
    int saved = errno;
    ::close(fd);
    if (sent < 0 || static_cast<size_t>(sent) != state.size()) {
        return fail(std::string("sendto NOTIFY_SOCKET: ") + std::strerror(saved));
    }
    return 1;
}

}  // namespace darkspere
