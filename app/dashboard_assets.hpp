// The dashboard's files (app/dashboard/), compiled into the binary by CMake
// (dashboard_assets.cpp.in): one page, its script and its style sheet,
// served by `serve` at /, /dashboard.js and /dashboard.css with no data in
// them, so no token is needed to load them.
#pragma once

#include <string_view>

namespace bgagent {

std::string_view dashboard_html();
std::string_view dashboard_js();
std::string_view dashboard_css();

} // namespace bgagent
