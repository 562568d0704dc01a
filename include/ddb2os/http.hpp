// http.hpp: the transport interface the sync engine talks through.
//
// Network failures are expected, so they come back as values (as cpp-httplib does), never as
// exceptions. transport/curl.hpp is the libcurl implementation; tests can plug in their own.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config.hpp"

DDB2OS_BEGIN_NAMESPACE
namespace http {

using clock = std::chrono::steady_clock;

struct header {
    std::string name;
    std::string value;
};

struct request {
    std::string method;  // "GET", "POST", ...
    // Path and query relative to the transport's endpoint ("/_bulk?refresh=false"), or an
    // absolute URL ("https://dynamodb.us-east-1.amazonaws.com/").
    std::string target;
    std::vector<header> headers;
    std::string body;
};

struct response {
    long status = 0;
    std::vector<header> headers;
    std::string body;

    // The first header of that name (case-insensitive), or empty.
    std::string_view header_value(std::string_view name) const noexcept {
        for (const header& h : headers) {
            if (h.name.size() != name.size()) continue;
            bool same = true;
            for (std::size_t i = 0; i < name.size() && same; ++i) {
                const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
                same = lower(h.name[i]) == lower(name[i]);
            }
            if (same) return h.value;
        }
        return {};
    }
};

enum class error_kind : unsigned char {
    none,
    connect,      // refused, unreachable, DNS
    timeout,      // connect or total timeout, or the deadline
    tls,          // certificate or handshake
    send_receive, // reset or broken connection mid-request
    credentials,  // no credentials to sign with
    other,
};

struct result {
    error_kind error = error_kind::none;
    std::string message;  // never holds a secret
    response res;

    explicit operator bool() const noexcept { return error == error_kind::none; }
};

class transport {
public:
    virtual ~transport() = default;
    // Sends one request; gives up at `deadline`. Never throws for network failures.
    virtual result send(const request& req, clock::time_point deadline) = 0;
};

}  // namespace http
DDB2OS_END_NAMESPACE
