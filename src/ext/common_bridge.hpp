// src/ext/common_bridge.hpp — plain-C-typed doorway from extension code to the pure C++ of src/common.
//
// src/common headers refuse to be compiled next to postgres.h, and their functions use std::string and may
// throw. This bridge is compiled without PostgreSQL headers; every function is noexcept, takes and returns
// plain C types, and reports failure through its return value, so extension code can call it from
// PostgreSQL-zone frames without any C++ object or exception crossing into PostgreSQL. A failed status
// becomes an error in one place, raise_bridge_status (errors.hpp; docs/architecture.md#error-boundary).
#pragma once

#include <cstddef>

namespace darkspere::bridge {

enum Status { kOk = 0, kOutOfMemory = -1, kInvalidInput = -2, kInvalidUtf8 = -3 };

bool is_e164(const char *number) noexcept;

struct Segments {
    bool ucs2;
    int segments;
    int units;
};
// count_segments — kInvalidUtf8 for invalid UTF-8.
int count_segments(const char *utf8, size_t len, Segments *out) noexcept;

// One message of a reply: bytes [offset, offset + length) of the reply, and its segments.
struct ReplyChunk {
    size_t offset;
    size_t length;
    Segments segments;
};
// plan_reply — cuts a reply into messages within max_segments SMS segments in all (common/reply_chunks.hpp);
// writes at most max_chunks of them to out, their number to *nchunks, and whether text was left out to
// *truncated. kInvalidUtf8 for invalid UTF-8 in the part read; kInvalidInput when more than max_chunks are
// needed.
int plan_reply(const char *utf8, size_t len, int max_segments, ReplyChunk *out, int max_chunks, int *nchunks,
               bool *truncated) noexcept;

// A list of decoded form parameters, as parallel arrays.
struct Params {
    const char *const *names;
    const char *const *values;
    int count;
};

// twilio_signature — writes the Base64 X-Twilio-Signature (28 characters + NUL) into out.
int twilio_signature(const char *auth_token, const char *url, Params params, char out[29]) noexcept;
// twilio_signature_valid — 1 valid (any URL port variant), 0 invalid, negative on error.
int twilio_signature_valid(const char *auth_token, const char *url, Params params,
                           const char *signature) noexcept;
// stripe_signature_valid — 1 valid, 0 invalid, negative on error.
int stripe_signature_valid(const char *secret, const char *payload, size_t payload_len, const char *header,
                           long long tolerance_s, long long now_unix) noexcept;

}  // namespace darkspere::bridge
