// test/unit/sd_notify_test.cpp — the worker's readiness datagram reaches systemd's notify socket as sent.
#include "common/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

using darkspere::sd_notify_state;

namespace {

// A datagram socket standing in for systemd's; the name is set as NOTIFY_SOCKET for the test's duration.
class NotifySocket {
  public:
    explicit NotifySocket(bool abstract) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::string name = "/tmp/darkspere-sd-notify-test." + std::to_string(::getpid());
        socklen_t len;
        if (abstract) {
            env_ = "@" + name;
            std::memcpy(addr.sun_path + 1, name.data(), name.size());
            len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
        } else {
            env_ = path_ = name;
            ::unlink(name.c_str());
            std::memcpy(addr.sun_path, name.data(), name.size());
            len = static_cast<socklen_t>(sizeof addr);
        }
        bound_ = ::bind(fd_, reinterpret_cast<sockaddr *>(&addr), len) == 0;
        ::setenv("NOTIFY_SOCKET", env_.c_str(), 1);
    }
    ~NotifySocket() {
        ::unsetenv("NOTIFY_SOCKET");
        ::close(fd_);
        if (!path_.empty())
            ::unlink(path_.c_str());
    }
    bool bound() const { return bound_; }
    std::string receive() {
        char buf[512];
        ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
        return n < 0 ? std::string("<nothing>") : std::string(buf, static_cast<size_t>(n));
    }

  private:
    int fd_ = -1;
    bool bound_ = false;
    std::string env_, path_;
};

}  // namespace

TEST(SdNotify, WithoutNotifySocketNothingIsSent) {
    ::unsetenv("NOTIFY_SOCKET");
    EXPECT_EQ(sd_notify_state("READY=1"), 0);
}

TEST(SdNotify, ReadyReachesAPathSocket) {
    NotifySocket systemd(false);
    ASSERT_TRUE(systemd.bound());
    EXPECT_EQ(sd_notify_state("READY=1\nSTATUS=listening"), 1);
    EXPECT_EQ(systemd.receive(), "READY=1\nSTATUS=listening");
}

TEST(SdNotify, StoppingReachesAnAbstractSocket) {
    NotifySocket systemd(true);
    ASSERT_TRUE(systemd.bound());
    EXPECT_EQ(sd_notify_state("STOPPING=1"), 1);
    EXPECT_EQ(systemd.receive(), "STOPPING=1");
}

TEST(SdNotify, ARelativeSocketNameIsAnErrorNotACrash) {
    ::setenv("NOTIFY_SOCKET", "relative/name", 1);
    std::string error;
    EXPECT_EQ(sd_notify_state("READY=1", &error), -1);
    EXPECT_NE(error.find("NOTIFY_SOCKET"), std::string::npos);
    ::unsetenv("NOTIFY_SOCKET");
}

TEST(SdNotify, ASocketNobodyListensOnIsAnError) {
    ::setenv("NOTIFY_SOCKET", "/nonexistent/darkspere/notify", 1);
    std::string error;
    EXPECT_EQ(sd_notify_state("READY=1", &error), -1);
    EXPECT_NE(error.find("sendto"), std::string::npos);
    ::unsetenv("NOTIFY_SOCKET");
}
