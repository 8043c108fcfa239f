// src/common/reply_chunks.cpp — the one-pass reply planner: message boundaries, word cuts and the segment
// budget.
#include "common/reply_chunks.hpp"

#include <stdexcept>
#include <string>

namespace darkspere {

namespace {

// sequence_length returns the bytes of the UTF-8 sequence starting at utf8[at], from its lead byte. The
// continuation bytes are checked when the message is counted (count_segments decodes it strictly); a sequence
// cut off by the end of the text is refused here.
std::size_t sequence_length(std::string_view utf8, std::size_t at) {
    const auto lead = static_cast<unsigned char>(utf8[at]);
    std::size_t length;
    if (lead < 0x80) {
        length = 1;
    } else if ((lead & 0xE0) == 0xC0) {
        length = 2;
    } else if ((lead & 0xF0) == 0xE0) {
        length = 3;
    } else if ((lead & 0xF8) == 0xF0) {
        length = 4;
    } else {
        throw std::invalid_argument("invalid UTF-8: unexpected byte at offset " + std::to_string(at));
    }
    if (utf8.size() - at < length) {
        throw std::invalid_argument("invalid UTF-8: truncated sequence at offset " + std::to_string(at));
    }
    return length;
}

// longest_fitting returns how many of the characters ending at ends[0..n) (byte offsets relative to the start
// of the message) fit in budget segments: segment counts only grow with the prefix, so a binary search finds
// it. At least one character always fits one segment.
std::size_t longest_fitting(std::string_view message, const std::vector<std::size_t> &ends, int budget) {
    std::size_t fits = 1, too_many = ends.size();  // count_segments(prefix of too_many) > budget
    while (too_many - fits > 1) {
        const std::size_t mid = fits + (too_many - fits) / 2;
        if (count_segments(message.substr(0, ends[mid - 1])).segments <= budget) {
            fits = mid;
        } else {
            too_many = mid;
        }
    }
    return fits;
}

}  // namespace

ReplyPlan plan_reply(std::string_view utf8, int max_segments, std::size_t max_chars) {
    if (max_segments < 1 || max_chars < 1) {
        throw std::invalid_argument("plan_reply: max_segments and max_chars must be at least 1");
    }
    ReplyPlan plan;
    int budget = max_segments;
    std::vector<std::size_t> ends;  // ends[i]: bytes of the message's first i + 1 characters
    std::size_t pos = 0;
    while (pos < utf8.size()) {
        if (budget == 0) {
            plan.truncated = true;
            break;
        }
        const std::string_view rest = utf8.substr(pos);
        ends.clear();
        std::size_t p = 0;
        while (p < rest.size() && ends.size() < max_chars) {
            p += sequence_length(rest, p);
            ends.push_back(p);
        }
        std::size_t chars = ends.size();
        if (p < rest.size()) {
            // More text follows: end after the last space among the final characters, if any (a space is one
            // byte, so the character before it ends one byte earlier).
            for (std::size_t i = chars - 1; i >= 1 && chars - i <= kReplyWordCutWindow; --i) {
                if (ends[i] - ends[i - 1] == 1 && rest[ends[i - 1]] == ' ') {
                    chars = i + 1;
                    break;
                }
            }
        }
        std::string_view message = rest.substr(0, ends[chars - 1]);
        SegmentCount count = count_segments(message);
        if (count.segments > budget) {
            ends.resize(chars);
            message = message.substr(0, ends[longest_fitting(message, ends, budget) - 1]);
            count = count_segments(message);
            plan.truncated = true;
        }
        plan.chunks.push_back(ReplyChunk{pos, message.size(), count});
        budget -= count.segments;
        pos += message.size();
        if (plan.truncated) {
            break;
        }
    }
    return plan;
}

}  // namespace darkspere
