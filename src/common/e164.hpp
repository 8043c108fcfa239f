// src/common/e164.hpp — E.164 telephone number syntax, the only phone number form DarkSpere stores.
#pragma once

#ifdef POSTGRES_H
#error "src/common is pure C++: include its headers only where postgres.h is not included"
#endif

#include <cstddef>
#include <string_view>

namespace darkspere {

// E.164 numbers carry a country code (1–3 digits) and at most 15 digits in all.
constexpr std::size_t kE164MinDigits = 2;
constexpr std::size_t kE164MaxDigits = 15;

// is_e164 returns whether number is '+' followed by 2–15 ASCII digits, the first of them 1–9. No spaces,
// punctuation or extensions: Twilio sends From/To in exactly this form.
bool is_e164(std::string_view number);

}  // namespace darkspere
