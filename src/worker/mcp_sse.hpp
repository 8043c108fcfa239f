// src/worker/mcp_sse.hpp — incremental text/event-stream parser for MCP responses sent as SSE.
//
// Follows the WHATWG event-stream rules the MCP servers rely on: lines end in CRLF, LF or CR; a blank line
// dispatches the event; `data:` lines are joined with "\n"; lines starting with ':' are comments
// (keep-alives). The parser is pure: it never touches the network and never interprets the data as JSON.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace darkspere::worker {

struct SseEvent {
    std::string event;  // `event:` field; empty means the default type "message"
    std::string id;     // `id:` field of this event; empty when the event had none
    std::string data;   // `data:` lines joined with "\n"; may be empty (a priming event)
    std::optional<long> retry_ms;
};

class SseParser {
  public:
    // feed — appends one chunk of the stream and returns the events it completed, in order.
    std::vector<SseEvent> feed(std::string_view chunk);
    // finish — end of stream: returns the last event when it had data but no closing blank line. The SSE
    // rules would drop it, but a server that closes right after its response should still be understood.
    std::vector<SseEvent> finish();

  private:
    void take_line(std::string_view line, std::vector<SseEvent> &out);
    void dispatch(std::vector<SseEvent> &out);

    std::string partial_line_;        // bytes after the last line terminator
    bool previous_chunk_cr_ = false;  // a chunk ended in CR: a leading LF in the next one belongs to it
    bool at_stream_start_ = true;     // a UTF-8 BOM is only skipped at the very start
    SseEvent current_;
    bool current_has_data_ = false;  // at least one data: line, even an empty one
    bool current_has_fields_ = false;
};

}  // namespace darkspere::worker
