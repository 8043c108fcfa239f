// src/worker/mcp_tools.cpp — DarkSpere's tool binding and the reading of tools/call results
// (docs/protocols.md#mcp-tools).
#include "mcp_tools.hpp"

#include <algorithm>
#include <cctype>

#include "agent_json.hpp"
#include "mcp_message.hpp"

namespace darkspere::worker {

namespace {

// Header names are RFC 9110 tokens; anything else cannot be sent and makes the annotation invalid.
bool is_header_token(const std::string &name) {
    static constexpr std::string_view kTokenPunctuation = "!#$%&'*+-.^_`|~";
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               kTokenPunctuation.find(c) != std::string_view::npos;
    });
}

bool is_primitive_schema(const nlohmann::json &property) {
    const nlohmann::json *type = json_member(property, "type");
    return type != nullptr &&
           (*type == "string" || *type == "integer" || *type == "number" || *type == "boolean");
}

std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

// declared_type — the JSON Schema "type" of a property when it is a single string; empty otherwise (a union
// or no type at all accepts what we send).
std::string declared_type(const nlohmann::json *property) {
    const nlohmann::json *type = property ? json_member(*property, "type") : nullptr;
    if (type != nullptr && type->is_string()) {
        return type->get<std::string>();
    }
    return {};
}

// Agent JSON is read in place through these: nlohmann's value() returns a copy, and copying recurses.
const nlohmann::json kNoProperties = nlohmann::json::object();

const nlohmann::json &schema_properties(const nlohmann::json &input_schema) {
    const nlohmann::json *properties = json_member(input_schema, "properties");
    return properties != nullptr && properties->is_object() ? *properties : kNoProperties;
}

// typed_string — a conversation field converted to the property's declared type, or null when it cannot be.
nlohmann::json typed_string(const std::string &value, const std::string &type) {
    if (type.empty() || type == "string") {
        return value;
    }
    if ((type == "integer" || type == "number") && !value.empty() &&
        std::all_of(value.begin(), value.end(),
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) &&
        value.size() < 19) {
        return std::stoll(value);
    }
    return nullptr;
}

std::string trim(const std::string &text) {
    static constexpr std::string_view kSpace = " \t\r\n\f\v";
    size_t begin = text.find_first_not_of(kSpace);
    if (begin == std::string::npos) {
        return {};
    }
    size_t end = text.find_last_not_of(kSpace);
    return text.substr(begin, end - begin + 1);
}

}  // namespace

std::optional<McpTool> mcp_parse_tool(const nlohmann::json &entry) {
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string()) {
        return std::nullopt;
    }
    McpTool tool;
    tool.name = entry["name"].get<std::string>();
    if (entry.contains("description") && entry["description"].is_string()) {
        tool.description = entry["description"].get<std::string>();
    }
    if (entry.contains("inputSchema") && entry["inputSchema"].is_object()) {
        tool.input_schema = entry["inputSchema"];
    }
    const nlohmann::json &properties = schema_properties(tool.input_schema);
    std::vector<std::string> seen;
    for (const auto &[property, schema] : properties.items()) {
        if (!schema.is_object() || !schema.contains("x-mcp-header")) {
            continue;
        }
        const auto &annotation = schema["x-mcp-header"];
        if (!annotation.is_string() || !is_header_token(annotation.get<std::string>()) ||
            !is_primitive_schema(schema)) {
            return std::nullopt;
        }
        std::string key = lower(annotation.get<std::string>());
        if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
            return std::nullopt;  // two properties may not claim the same header
        }
        seen.push_back(key);
        tool.header_params.emplace_back(property, annotation.get<std::string>());
    }
    return tool;
}

const McpTool *mcp_choose_tool(const std::vector<McpTool> &tools, const std::string &configured,
                               std::string *error) {
    const std::string &wanted = configured.empty() ? std::string("chat") : configured;
    for (const auto &candidate : tools) {
        if (candidate.name == wanted) {
            return &candidate;
        }
    }
    if (!configured.empty()) {
        *error = "tool " + configured + " not offered by agent";
        return nullptr;
    }
    if (tools.size() == 1) {
        return &tools.front();
    }
    *error = tools.empty() ? std::string("agent offers no tool")
                           : "agent offers " + std::to_string(tools.size()) +
                                 " tools and none named chat: set the agent's tool_name";
    return nullptr;
}

nlohmann::json mcp_tools_summary(const std::vector<McpTool> &tools) {
    nlohmann::json summary = nlohmann::json::array();
    for (const auto &tool : tools) {
        if (summary.size() == kMcpToolsStored) {
            break;
        }
        nlohmann::json entry = {{"name", tool.name}};
        if (!tool.description.empty()) {
            std::string description = tool.description;
            if (description.size() > kMcpToolDescriptionBytes) {
                size_t cut = kMcpToolDescriptionBytes;
                while (cut > 0 && (static_cast<unsigned char>(description[cut]) & 0xC0) == 0x80) {
                    --cut;  // never split a UTF-8 sequence
                }
                description.resize(cut);
            }
            entry["description"] = std::move(description);
        }
        summary.push_back(std::move(entry));
    }
    return summary;
}

McpArguments mcp_tool_arguments(const McpTool &tool, const AgentTurn &turn) {
    McpArguments out;
    const nlohmann::json &properties = schema_properties(tool.input_schema);
    auto declared = [&](const char *name) { return properties.contains(name); };
    auto property = [&](const char *name) { return json_member(properties, name); };

    auto put_string = [&](const char *name, const std::string &value) {
        nlohmann::json typed = typed_string(value, declared_type(property(name)));
        if (typed.is_null()) {
            out.error = std::string("tool argument ") + name + " does not match inputSchema";
            return;
        }
        out.arguments[name] = std::move(typed);
    };

    put_string("message", turn.message);
    for (const auto &[name, value] :
         {std::pair<const char *, const std::string *>{"session_id", &turn.session_id},
          {"from", &turn.from},
          {"to", &turn.to}}) {
        if (declared(name)) {
            put_string(name, *value);
        }
    }
    if (declared("history")) {
        std::string type = declared_type(property("history"));
        if (!type.empty() && type != "array") {
            out.error = "tool argument history does not match inputSchema";
        }
        out.arguments["history"] = turn.history.is_array() ? turn.history : nlohmann::json::array();
    }
    if (!out.error.empty()) {
        return out;
    }
    const nlohmann::json *required = json_member(tool.input_schema, "required");
    if (required != nullptr && required->is_array()) {
        for (const auto &name : *required) {
            if (name.is_string() && !out.arguments.contains(name.get<std::string>())) {
                out.error =
                    "tool requires argument " + name.get<std::string>() + " the worker cannot provide";
                return out;
            }
        }
    }
    return out;
}

HeaderList mcp_param_headers(const McpTool &tool, const nlohmann::json &arguments) {
    HeaderList headers;
    for (const auto &[property, header] : tool.header_params) {
        if (!arguments.contains(property)) {
            continue;
        }
        const auto &value = arguments[property];
        std::string text;
        if (value.is_string()) {
            text = value.get<std::string>();
        } else if (value.is_boolean()) {
            text = value.get<bool>() ? "true" : "false";
        } else if (value.is_number()) {
            text = value.dump();
        } else {
            continue;  // null or structured: the header is omitted
        }
        headers.emplace_back("Mcp-Param-" + header, mcp_header_value(text));
    }
    return headers;
}

AgentOutcome mcp_outcome_from_result(const nlohmann::json &result) {
    AgentOutcome outcome;
    if (!result.is_object()) {
        outcome.error = "malformed tools/call result";
        return outcome;
    }
    const nlohmann::json *result_type = json_member(result, "resultType");
    if (result_type != nullptr && *result_type == "input_required") {
        outcome.error = "agent asked for input (input_required is not supported)";
        return outcome;
    }
    const nlohmann::json *is_error = json_member(result, "isError");
    if (is_error != nullptr && is_error->is_boolean() && is_error->get<bool>()) {
        // The text explains the failure to a model; it is never shown to the SMS user nor logged verbatim.
        outcome.error = "tool reported isError";
        return outcome;
    }
    std::string joined;
    bool first = true;
    const nlohmann::json *content = json_member(result, "content");
    if (content != nullptr && content->is_array()) {
        for (const auto &item : *content) {
            const nlohmann::json *type = json_member(item, "type");
            const nlohmann::json *text = json_member(item, "text");
            if (type == nullptr || *type != "text" || text == nullptr || !text->is_string()) {
                continue;
            }
            if (!first) {
                joined += '\n';
            }
            joined += text->get_ref<const std::string &>();
            first = false;
        }
    }
    outcome.ok = true;
    std::string text = trim(joined);
    if (!text.empty()) {
        outcome.reply = std::move(text);
    }
    return outcome;
}

}  // namespace darkspere::worker
