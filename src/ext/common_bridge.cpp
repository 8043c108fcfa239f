// src/ext/common_bridge.cpp — noexcept wrappers over src/common for the extension (no PostgreSQL headers
// here).
#include "ext/common_bridge.hpp"

#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/e164.hpp"
#include "common/form.hpp"
#include "common/reply_chunks.hpp"
#include "common/sms_segments.hpp"
#include "common/stripe_signature.hpp"
#include "common/twilio_signature.hpp"

namespace darkspere::bridge {

bool is_e164(const char *number) noexcept {
    return darkspere::is_e164(number);
}

int count_segments(const char *utf8, size_t len, Segments *out) noexcept {
    try {
        SegmentCount count = darkspere::count_segments(std::string_view(utf8, len));
        out->ucs2 = count.encoding == SmsEncoding::ucs2;
        out->segments = count.segments;
        out->units = count.units;
        return kOk;
    } catch (const std::bad_alloc &) {
        return kOutOfMemory;
    } catch (...) {
        return kInvalidUtf8;
    }
}

int plan_reply(const char *utf8, size_t len, int max_segments, ReplyChunk *out, int max_chunks, int *nchunks,
               bool *truncated) noexcept {
    try {
        ReplyPlan plan = darkspere::plan_reply(std::string_view(utf8, len), max_segments);
        if (plan.chunks.size() > static_cast<size_t>(max_chunks)) {
            return kInvalidInput;
        }
        for (size_t i = 0; i < plan.chunks.size(); i++) {
            const darkspere::ReplyChunk &c = plan.chunks[i];
            out[i] =
                ReplyChunk{c.offset, c.length,
                           Segments{c.count.encoding == SmsEncoding::ucs2, c.count.segments, c.count.units}};
        }
        *nchunks = static_cast<int>(plan.chunks.size());
        *truncated = plan.truncated;
        return kOk;
    } catch (const std::bad_alloc &) {
        return kOutOfMemory;
    } catch (...) {
        return kInvalidUtf8;
    }
}

static std::vector<FormParam> to_form_params(Params params) {
    std::vector<FormParam> list;
    list.reserve(params.count);
    for (int i = 0; i < params.count; i++) {
        list.push_back(FormParam{params.names[i], params.values[i]});
    }
    return list;
}

int twilio_signature(const char *auth_token, const char *url, Params params, char out[29]) noexcept {
    try {
        std::string signature = darkspere::twilio_signature(auth_token, url, to_form_params(params));
        if (signature.size() != 28) {
            return kInvalidInput;
        }
        std::memcpy(out, signature.c_str(), 29);
        return kOk;
    } catch (const std::bad_alloc &) {
        return kOutOfMemory;
    } catch (...) {
        return kInvalidInput;
    }
}

int twilio_signature_valid(const char *auth_token, const char *url, Params params,
                           const char *signature) noexcept {
    try {
        return darkspere::twilio_signature_valid(auth_token, url, to_form_params(params), signature) ? 1 : 0;
    } catch (const std::bad_alloc &) {
        return kOutOfMemory;
    } catch (...) {
        return kInvalidInput;
    }
}

int stripe_signature_valid(const char *secret, const char *payload, size_t payload_len, const char *header,
                           long long tolerance_s, long long now_unix) noexcept {
    try {
        return darkspere::stripe_signature_valid(secret, std::string_view(payload, payload_len), header,
                                                 tolerance_s, now_unix)
                   ? 1
                   : 0;
    } catch (const std::bad_alloc &) {
        return kOutOfMemory;
    } catch (...) {
        return kInvalidInput;
    }
}

}  // namespace darkspere::bridge
