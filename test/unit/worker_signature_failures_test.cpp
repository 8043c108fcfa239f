// test/unit/worker_signature_failures_test.cpp — refused signatures are counted per source and sent as one
// statement a second (darkspere.report_signature_failures), not one per refusal.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "signature_failures.hpp"

using namespace darkspere::worker;

namespace {

class RecordingPg : public PgClient {
  public:
    std::vector<std::pair<std::string, PgParams>> calls;
    void query(std::string sql, PgParams params, PgCallback on_done, PgPriority) override {
        calls.emplace_back(std::move(sql), std::move(params));
        PgResult ok;
        ok.ok = true;
        on_done(ok);
    }
    size_t connected() const override { return 1; }
};

}  // namespace

TEST(SignatureFailures, ParamsAreTwoArraysInAddressOrder) {
    PgParams p = signature_failure_params({{"192.0.2.7", 3}, {"2001:db8::1", 1}});
    ASSERT_EQ(p.size(), 2u);
    EXPECT_EQ(*p[0], "{\"192.0.2.7\",\"2001:db8::1\"}");
    EXPECT_EQ(*p[1], "{3,1}");
}

TEST(SignatureFailures, OneBatchASecond) {
    boost::asio::io_context io;
    RecordingPg pg;
    SignatureFailures counter(io, pg);
    counter.add("192.0.2.7");
    counter.add("192.0.2.7");
    counter.add("198.51.100.1");
    EXPECT_TRUE(pg.calls.empty()) << "nothing is sent per refusal";
    EXPECT_EQ(counter.pending().at("192.0.2.7"), 2);
    io.run_for(std::chrono::milliseconds(1500));
    ASSERT_EQ(pg.calls.size(), 1u);
    EXPECT_NE(pg.calls[0].first.find("darkspere.report_signature_failures"), std::string::npos);
    EXPECT_EQ(*pg.calls[0].second[0], "{\"192.0.2.7\",\"198.51.100.1\"}");
    EXPECT_EQ(*pg.calls[0].second[1], "{2,1}");
    EXPECT_TRUE(counter.pending().empty());
}
