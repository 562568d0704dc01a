// detail/utc_time.hpp: a time as ISO 8601 text in UTC, for dead letters' "time" and for messages.
#pragma once

#include <chrono>
#include <ctime>
#include <string>

#include "../config.hpp"

DDB2OS_BEGIN_NAMESPACE
namespace detail {

// "2024-05-01T12:34:56Z" (whole seconds).
inline std::string iso8601_utc(std::chrono::system_clock::time_point t) {
    const std::time_t s = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&s, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace detail
DDB2OS_END_NAMESPACE
