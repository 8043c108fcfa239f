// src/worker/agent_json.hpp — parsing JSON that came from outside (agents, Twilio): bounded nesting, no
// exceptions.
//
// nlohmann's parser is iterative, but copying, comparing or dumping a value recurses once per level: an
// agent answering `[[[[…]]]]` 200,000 levels deep (about 400 KB) would overflow the worker's stack the first
// time the tree is copied. Bodies nested deeper than the limit are refused before the parser builds anything.
#pragma once

#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

namespace darkspere::worker {

// No MCP or agent message needs more than a handful of levels; 64 leaves room for tool input schemas.
inline constexpr size_t kMaxForeignJsonDepth = 64;

// json_depth_exceeds — whether any array or object in text is nested deeper than max_depth (brackets inside
// strings do not count). Linear, allocation-free; the text need not be valid JSON.
bool json_depth_exceeds(std::string_view text, size_t max_depth);

// parse_foreign_json — the parsed value, or a discarded value (is_discarded()) when text is not JSON or is
// nested deeper than max_depth. Never throws.
nlohmann::json parse_foreign_json(std::string_view text, size_t max_depth = kMaxForeignJsonDepth);

// json_member — a pointer to obj[key] without copying it; nullptr when obj is not an object or has no key.
const nlohmann::json *json_member(const nlohmann::json &obj, std::string_view key);

}  // namespace darkspere::worker
