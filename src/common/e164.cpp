// src/common/e164.cpp — E.164 telephone number syntax check.
#include "common/e164.hpp"

namespace darkspere {

bool is_e164(std::string_view number) {
    if (number.empty() || number.front() != '+') {
        return false;
    }
    const std::string_view digits = number.substr(1);
    if (digits.size() < kE164MinDigits || digits.size() > kE164MaxDigits || digits.front() == '0') {
        return false;
    }
    for (char c : digits) {
        if (c < '0' || c > '9') {
            return false;
        }
    }
    return true;
}

}  // namespace darkspere
