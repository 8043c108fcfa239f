// src/common/reply_chunks.hpp — cutting an agent's reply into SMS messages under a segment budget, in one
// pass.
//
// An agent may answer with any amount of text. A reply becomes at most kSmsBodyMaxCharacters per message
// (Twilio's limit) and at most max_segments SMS segments in all (what the reply may cost); the text past that
// budget is left out, cut where a segment ends. The planner reads the reply once, front to back, and stops at
// the budget: a 10 MB reply costs what its first few thousand characters cost.
#pragma once

#ifdef POSTGRES_H
#error "src/common is pure C++: include its headers only where postgres.h is not included"
#endif

#include <cstddef>
#include <string_view>
#include <vector>

#include "common/sms_segments.hpp"

namespace darkspere {

// Where a message boundary may move back to keep a word whole: the last space among the final characters.
constexpr std::size_t kReplyWordCutWindow = 100;

struct ReplyChunk {
    std::size_t offset;  // bytes into the reply
    std::size_t length;  // bytes
    SegmentCount count;  // encoding and segments of this message on its own
};

struct ReplyPlan {
    std::vector<ReplyChunk> chunks;  // in order, each non-empty; their segments add up to at most the budget
    bool truncated = false;          // text after the last chunk was left out
};

// plan_reply cuts a UTF-8 reply into messages of at most max_chars code points, in order. A message that is
// not the last of the text ends after the last space among its final kReplyWordCutWindow characters, when
// there is one, so words stay whole. Messages stop when their segments reach max_segments (>= 1): the message
// that would exceed it is cut to the longest prefix that fits the segments left — a segment boundary — and
// the plan is marked truncated, as it is when text remains once the budget is spent. Bytes past the last
// message and its look-ahead of max_chars code points are never read. Throws std::invalid_argument for
// invalid UTF-8 in what it reads, and for max_segments < 1 or max_chars < 1.
ReplyPlan plan_reply(std::string_view utf8, int max_segments, std::size_t max_chars = kSmsBodyMaxCharacters);

}  // namespace darkspere
