// src/worker/agent_json.cpp — depth-limited parsing of foreign JSON (see agent_json.hpp).
#include "agent_json.hpp"

namespace darkspere::worker {

bool json_depth_exceeds(std::string_view text, size_t max_depth) {
    size_t depth = 0;
    bool in_string = false, escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        switch (c) {
            case '"':
                in_string = true;
                break;
            case '[':
            case '{':
                if (++depth > max_depth)
                    return true;
                break;
            case ']':
            case '}':
                // Unbalanced closers make the text invalid; the parser rejects it, the scan only must not
                // wrap.
                if (depth > 0)
                    --depth;
                break;
            default:
                break;
        }
    }
    return false;
}

nlohmann::json parse_foreign_json(std::string_view text, size_t max_depth) {
    if (json_depth_exceeds(text, max_depth))
        return nlohmann::json(nlohmann::json::value_t::discarded);
    return nlohmann::json::parse(text, nullptr, false);
}

const nlohmann::json *json_member(const nlohmann::json &obj, std::string_view key) {
    if (!obj.is_object())
        return nullptr;
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
}

}  // namespace darkspere::worker
