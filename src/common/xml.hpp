// src/common/xml.hpp — escaping text for TwiML (XML) responses.
#pragma once

#ifdef POSTGRES_H
#error "src/common is pure C++: include its headers only where postgres.h is not included"
#endif

#include <string>
#include <string_view>

namespace darkspere {

// xml_escape returns text with & < > " ' replaced by their predefined entities, safe in element content and
// in either kind of quoted attribute. Other bytes, UTF-8 included, pass through unchanged.
std::string xml_escape(std::string_view text);

}  // namespace darkspere
