// src/ext/sms_text.hpp — SMS segment counting (GSM-7 / UCS-2) for the extension (sms_sql.cpp).
#pragma once

#include "ext/common_bridge.hpp"
#include "ext/pg.hpp"

namespace darkspere {

constexpr int kSmsBodyMaxChars = 1600;  // Twilio's hard limit for one message body

// The extension's one segment count is the bridge's (common_bridge.hpp): encoding, segments, units.
using Segments = bridge::Segments;
// count_sms_segments — the segments of a NUL-terminated UTF-8 body; raises 22021 when it is not UTF-8.
Segments count_sms_segments(const char *utf8);

}  // namespace darkspere
