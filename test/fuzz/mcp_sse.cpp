// test/fuzz/mcp_sse.cpp — libFuzzer target for the text/event-stream parser (src/worker/mcp_sse.cpp): an MCP
// agent's response stream, read chunk by chunk as curl delivers it.
//
// Input: one byte choosing chunk sizes, then the stream.
// Invariants: the events do not depend on how the stream is cut into chunks (CR LF split across chunks, a
// BOM, a line cut anywhere); an event's data never ends in the "\n" that joins data lines; nothing after
// finish().
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "mcp_sse.hpp"

using darkspere::worker::SseEvent;
using darkspere::worker::SseParser;

namespace {

std::vector<SseEvent> parse(std::string_view stream, size_t step) {
    SseParser parser;
    std::vector<SseEvent> events;
    for (size_t at = 0; at < stream.size(); at += step) {
        auto got = parser.feed(stream.substr(at, step));
        events.insert(events.end(), got.begin(), got.end());
    }
    auto tail = parser.finish();
    events.insert(events.end(), tail.begin(), tail.end());
    return events;
}

bool same(const std::vector<SseEvent> &a, const std::vector<SseEvent> &b) {
    if (a.size() != b.size())
        return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (a[i].event != b[i].event || a[i].id != b[i].id || a[i].data != b[i].data ||
            a[i].retry_ms != b[i].retry_ms)
            return false;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    const size_t step = 1 + data[0] % 7;
    std::string_view stream(reinterpret_cast<const char *>(data) + 1, size - 1);

    auto whole = parse(stream, stream.size() + 1);
    auto chunked = parse(stream, step);
    auto bytewise = parse(stream, 1);
    FUZZ_CHECK(same(whole, chunked));
    FUZZ_CHECK(same(whole, bytewise));
    size_t data_bytes = 0;
    for (const auto &e : whole)
        data_bytes += e.data.size();
    FUZZ_CHECK(data_bytes <= stream.size());

    SseParser done;
    done.feed(stream);
    done.finish();
    FUZZ_CHECK(done.finish().empty());
    return 0;
}
