// src/worker/mcp_sse.cpp — incremental text/event-stream parser for MCP responses sent as SSE.
#include "mcp_sse.hpp"

#include <cctype>

namespace darkspere::worker {

std::vector<SseEvent> SseParser::feed(std::string_view chunk) {
    std::vector<SseEvent> out;
    if (at_stream_start_ && !chunk.empty()) {
        static constexpr std::string_view kBom = "\xEF\xBB\xBF";
        std::string probe = partial_line_ + std::string(chunk.substr(0, kBom.size()));
        if (probe.size() < kBom.size() && kBom.substr(0, probe.size()) == probe) {
            // Not enough bytes yet to tell whether the stream opens with a BOM.
            partial_line_ = probe;
            return out;
        }
        at_stream_start_ = false;
        if (probe.compare(0, kBom.size(), kBom) == 0) {
            size_t from_chunk = kBom.size() - partial_line_.size();
            partial_line_.clear();
            chunk.remove_prefix(from_chunk);
        }
    }
    size_t pos = 0;
    if (previous_chunk_cr_ && !chunk.empty() && chunk[0] == '\n') {
        pos = 1;  // the LF of a CRLF split across two chunks
    }
    previous_chunk_cr_ = false;
    while (pos < chunk.size()) {
        size_t end = chunk.find_first_of("\r\n", pos);
        if (end == std::string_view::npos) {
            partial_line_.append(chunk.substr(pos));
            break;
        }
        partial_line_.append(chunk.substr(pos, end - pos));
        take_line(partial_line_, out);
        partial_line_.clear();
        pos = end + 1;
        if (chunk[end] == '\r') {
            if (pos < chunk.size()) {
                if (chunk[pos] == '\n') {
                    ++pos;
                }
            } else {
                previous_chunk_cr_ = true;
            }
        }
    }
    return out;
}

std::vector<SseEvent> SseParser::finish() {
    std::vector<SseEvent> out;
    if (!partial_line_.empty()) {
        take_line(partial_line_, out);
        partial_line_.clear();
    }
    if (current_has_data_) {
        dispatch(out);
    }
    current_ = SseEvent{};
    current_has_data_ = current_has_fields_ = false;
    return out;
}

void SseParser::take_line(std::string_view line, std::vector<SseEvent> &out) {
    if (line.empty()) {
        dispatch(out);
        return;
    }
    if (line[0] == ':') {
        return;  // comment / keep-alive
    }
    std::string_view field = line;
    std::string_view value;
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
        field = line.substr(0, colon);
        value = line.substr(colon + 1);
        if (!value.empty() && value[0] == ' ') {
            value.remove_prefix(1);
        }
    }
    if (field == "data") {
        if (current_has_data_) {
            current_.data.push_back('\n');
        }
        current_.data.append(value);
        current_has_data_ = true;
    } else if (field == "event") {
        current_.event = std::string(value);
    } else if (field == "id") {
        if (value.find('\0') == std::string_view::npos) {
            current_.id = std::string(value);
        }
    } else if (field == "retry") {
        bool digits = !value.empty();
        for (char c : value) {
            digits = digits && std::isdigit(static_cast<unsigned char>(c));
        }
        if (digits && value.size() < 10) {
            current_.retry_ms = std::stol(std::string(value));
        }
    } else {
        return;  // unknown fields are ignored, as the SSE rules require
    }
    current_has_fields_ = true;
}

void SseParser::dispatch(std::vector<SseEvent> &out) {
    // An event with only id:/retry: fields still matters to a resuming client, so it is dispatched; whether
    // empty data is worth reading is the caller's decision.
    if (current_has_fields_) {
        out.push_back(std::move(current_));
    }
    current_ = SseEvent{};
    current_has_data_ = current_has_fields_ = false;
}

}  // namespace darkspere::worker
