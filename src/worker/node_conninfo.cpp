// src/worker/node_conninfo.cpp — the worker's database settings for another Citus node (see
// node_conninfo.hpp).
#include "node_conninfo.hpp"

#include <libpq-fe.h>

#include <cstring>
#include <memory>

namespace darkspere::worker {

namespace {

// quoted — a conninfo value in single quotes, with ' and \ escaped as libpq reads them.
std::string quoted(const char *value) {
    std::string out = "'";
    for (const char *c = value; *c != '\0'; ++c) {
        if (*c == '\'' || *c == '\\')
            out += '\\';
        out += *c;
    }
    return out + "'";
}

}  // namespace

std::optional<std::string> conninfo_for_node(const std::string &conninfo, const std::string &node_host,
                                             int node_port, std::string *error) {
    char *parse_error = nullptr;
    std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(
        PQconninfoParse(conninfo.c_str(), &parse_error), &PQconninfoFree);
    if (!options) {
        if (error != nullptr)
            *error = parse_error != nullptr ? parse_error : "out of memory";
        PQfreemem(parse_error);
        return std::nullopt;
    }
    std::string out = "host=" + quoted(node_host.c_str()) + " port=" + std::to_string(node_port);
    for (PQconninfoOption *o = options.get(); o->keyword != nullptr; ++o) {
        if (o->val == nullptr || std::strcmp(o->keyword, "host") == 0 ||
            std::strcmp(o->keyword, "port") == 0 || std::strcmp(o->keyword, "hostaddr") == 0)
            continue;
        out += ' ';
        out += o->keyword;
        out += '=';
        out += quoted(o->val);
    }
    return out;
}

}  // namespace darkspere::worker
