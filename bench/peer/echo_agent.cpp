// bench/peer/echo_agent.cpp — the instant echo agent (see echo_agent.hpp).
#include "echo_agent.hpp"

#include <nlohmann/json.hpp>

namespace darkspere::bench {

Response echo_agent(const Request &req, const std::string &name) {
    nlohmann::json body =
        req.body().empty() ? nlohmann::json::object() : nlohmann::json::parse(req.body(), nullptr, false);
    if (body.is_discarded())
        return json_response(400, R"({"error":"body is not JSON"})");
    // Mirror the Node agent's JavaScript: a body that is not an object counts as {}, a missing message prints
    // as "undefined", and history counts only when it is an array.
    std::string message = "undefined";
    size_t turns = 0;
    if (body.is_object()) {
        auto m = body.find("message");
        if (m != body.end())
            message = m->is_string() ? m->get<std::string>() : m->dump();
        auto h = body.find("history");
        if (h != body.end() && h->is_array())
            turns = h->size();
    }
    nlohmann::json reply = {{"reply", name + ": " + message + " [history " + std::to_string(turns) + "]"}};
    return json_response(200, reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace darkspere::bench
