// detail/uri.hpp: URL splitting, URI encoding, path normalization and query canonicalization,
// the string work of SigV4's canonical request (internals of sigv4.hpp).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../error.hpp"

DDB2OS_BEGIN_NAMESPACE
namespace detail {

// RFC 3986 unreserved: A-Z a-z 0-9 - . _ ~ (the only bytes SigV4 leaves unencoded).
constexpr bool is_uri_unreserved(unsigned char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

constexpr int hex_value(unsigned char c) noexcept {
    return (c >= '0' && c <= '9') ? c - '0'
         : (c >= 'A' && c <= 'F') ? c - 'A' + 10
         : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                  : -1;
}

// Percent-encodes every byte but the unreserved ones (and '/' when keep_slash), upper-case hex.
inline void append_uri_encoded(std::string& out, std::string_view in, bool keep_slash) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::size_t run = 0;  // start of the pending run of bytes copied as they are
    for (std::size_t i = 0; i < in.size(); ++i) {
        const auto c = static_cast<unsigned char>(in[i]);
        if (is_uri_unreserved(c) || (keep_slash && c == '/')) continue;
        out.append(in.data() + run, i - run);
        const char esc[3] = {'%', digits[c >> 4], digits[c & 0x0F]};
        out.append(esc, 3);
        run = i + 1;
    }
    out.append(in.data() + run, in.size() - run);
}

// Decodes %XX escapes. A '%' not followed by two hex digits stays a literal '%' (it is then
// encoded as %25), and '+' stays '+': a query string is not form data.
inline void append_uri_decoded(std::string& out, std::string_view in) {
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '%' && i + 2 < in.size()) {
            const int hi = hex_value(static_cast<unsigned char>(in[i + 1]));
            const int lo = hex_value(static_cast<unsigned char>(in[i + 2]));
            if (hi >= 0 && lo >= 0) {
                out.push_back(static_cast<char>(hi * 16 + lo));
                i += 2;
                continue;
            }
        }
        out.push_back(in[i]);
    }
}

// Decode then encode: the canonical form of one query key or value, whether the caller gave it
// raw ("a b", UTF-8) or already encoded ("a%20b").
inline void append_query_canonical(std::string& out, std::string_view in) {
    bool plain = true;
    for (const char ch : in) {
        if (!is_uri_unreserved(static_cast<unsigned char>(ch))) {
            plain = false;
            break;
        }
    }
    if (plain) {  // the common case: nothing to decode or encode
        out.append(in);
        return;
    }
    std::string decoded;
    decoded.reserve(in.size());
    append_uri_decoded(decoded, in);
    append_uri_encoded(out, decoded, false);
}

// Removes "." and ".." segments and empty segments (repeated slashes), keeping a leading slash
// and a trailing one when segments remain: the rule of botocore and the Rust and C AWS SDKs.
inline bool is_normal_uri_path(std::string_view path) noexcept {
    if (path.empty() || path.front() != '/') return false;
    std::size_t start = 1;
    while (start < path.size()) {
        std::size_t end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        const std::string_view seg = path.substr(start, end - start);
        if (seg.empty() || seg == "." || seg == "..") return false;
        start = end + 1;
    }
    return true;
}

inline std::string normalize_uri_path(std::string_view path) {
    if (is_normal_uri_path(path)) return std::string(path);
    if (path.empty()) return "/";
    std::vector<std::string_view> segments;
    std::size_t start = 0;
    while (start <= path.size()) {
        std::size_t end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        const std::string_view seg = path.substr(start, end - start);
        if (seg == "..") {
            if (!segments.empty()) segments.pop_back();
        } else if (!seg.empty() && seg != ".") {
            segments.push_back(seg);
        }
        start = end + 1;
    }
    std::string out;
    out.reserve(path.size());
    if (path.front() == '/') out.push_back('/');
    for (std::size_t i = 0; i < segments.size(); ++i) {
        if (i != 0) out.push_back('/');
        out.append(segments[i]);
    }
    if (path.back() == '/' && !segments.empty()) out.push_back('/');
    return out;
}

// One query parameter in canonical (encoded) form.
struct query_param {
    std::string key;
    std::string value;
};

// Splits "a=1&b&c=" into canonical parameters appended to `out`. Empty pieces ("a=1&&b") are
// skipped; a key without '=' has an empty value.
inline void parse_query_canonical(std::string_view query, std::vector<query_param>& out) {
    std::size_t start = 0;
    while (start <= query.size()) {
        std::size_t end = query.find('&', start);
        if (end == std::string_view::npos) end = query.size();
        const std::string_view piece = query.substr(start, end - start);
        if (!piece.empty()) {
            const std::size_t eq = piece.find('=');
            query_param p;
            append_query_canonical(p.key, piece.substr(0, eq));
            if (eq != std::string_view::npos) append_query_canonical(p.value, piece.substr(eq + 1));
            out.push_back(std::move(p));
        }
        start = end + 1;
    }
}

// Sorted by key, then value, byte-wise; joined as k=v&k=v.
inline void append_sorted_query(std::string& out, std::vector<query_param>& params) {
    std::sort(params.begin(), params.end(), [](const query_param& a, const query_param& b) {
        const int c = a.key.compare(b.key);
        return c != 0 ? c < 0 : a.value < b.value;
    });
    for (std::size_t i = 0; i < params.size(); ++i) {
        if (i != 0) out.push_back('&');
        out.append(params[i].key);
        out.push_back('=');
        out.append(params[i].value);
    }
}

// The parts of a request target that SigV4 reads. Views into the caller's URL.
struct url_parts {
    std::string_view scheme;  // "https"; empty for an origin-form target ("/path?q")
    std::string_view host;    // without userinfo and port; IPv6 keeps its brackets
    std::string_view port;    // digits, or empty
    std::string_view path;    // as on the wire (possibly empty)
    std::string_view query;   // after '?', before '#'
};

// Accepts "scheme://[userinfo@]host[:port][/path][?query][#fragment]" or "/path[?query]".
// Error messages never quote the URL: its userinfo or query may carry secrets.
inline url_parts split_url(std::string_view url) {
    url_parts parts;
    std::string_view rest = url;
    const std::size_t hash = rest.find('#');
    if (hash != std::string_view::npos) rest = rest.substr(0, hash);
    if (rest.empty() || rest.front() != '/') {
        const std::size_t sep = rest.find("://");
        if (sep == std::string_view::npos || sep == 0)
            throw error("sigv4.bad_url", "URL is neither absolute (scheme://host/path) nor a path starting with '/'");
        parts.scheme = rest.substr(0, sep);
        rest = rest.substr(sep + 3);
        // The authority ends at the first '/' or '?' (two memchr: find_first_of calls memchr per byte).
        const std::size_t slash = rest.find('/');
        const std::size_t auth_end = std::min(slash, rest.substr(0, slash).find('?'));
        std::string_view authority = rest.substr(0, auth_end);
        rest = auth_end == std::string_view::npos ? std::string_view{} : rest.substr(auth_end);
        std::size_t at = authority.find('@');  // userinfo: up to the last '@'
        if (at != std::string_view::npos) {
            at = authority.rfind('@');
            authority = authority.substr(at + 1);
        }
        std::size_t colon = std::string_view::npos;
        if (!authority.empty() && authority.front() == '[') {
            const std::size_t close = authority.find(']');
            if (close == std::string_view::npos)
                throw error("sigv4.bad_url", "URL has an IPv6 host without its closing ']'");
            if (close + 1 < authority.size()) {
                if (authority[close + 1] != ':')
                    throw error("sigv4.bad_url", "URL has characters after its IPv6 host");
                colon = close + 1;
            }
        } else {
            colon = authority.find(':');  // a host has none; "h:1:2" is a bad port, not host "h:1"
        }
        parts.host = authority.substr(0, colon);
        if (colon != std::string_view::npos) {
            parts.port = authority.substr(colon + 1);
            unsigned long value = 0;
            for (const char c : parts.port) {
                if (c < '0' || c > '9' || value > 65535) {
                    value = 65536;
                    break;
                }
                value = value * 10 + static_cast<unsigned long>(c - '0');
            }
            if (parts.port.empty() || value > 65535)
                throw error("sigv4.bad_url", "URL port is not a number from 0 to 65535");
        }
        if (parts.host.empty()) throw error("sigv4.bad_url", "URL has an empty host");
    }
    const std::size_t q = rest.find('?');
    parts.path = rest.substr(0, q);
    if (q != std::string_view::npos) parts.query = rest.substr(q + 1);
    return parts;
}

// Branch-free, so that a loop over a name vectorizes.
inline char ascii_lower(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return static_cast<char>(u | (static_cast<unsigned char>(u - 'A') < 26 ? 0x20 : 0));
}

inline bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

// `in` lower-cased (ASCII letters only) into out[0, in.size()): eight bytes at a time (SWAR), since
// a host or header name is lower-cased for every signature.
inline void copy_ascii_lower(char* out, std::string_view in) noexcept {
    constexpr std::uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    std::size_t i = 0;
    for (; i + 8 <= in.size(); i += 8) {
        std::uint64_t w;
        std::memcpy(&w, in.data() + i, 8);
        const std::uint64_t low7 = w & ~high;
        const std::uint64_t at_least_a = low7 + ones * (0x80 - 'A');     // high bit: byte >= 'A'
        const std::uint64_t above_z = low7 + ones * (0x80 - 'Z' - 1);    // high bit: byte > 'Z'
        const std::uint64_t upper = at_least_a & ~above_z & ~w & high;   // 'A'..'Z', never a byte >= 0x80
        w |= upper >> 2;                                                  // 0x80 >> 2 = 0x20
        std::memcpy(out + i, &w, 8);
    }
    for (; i < in.size(); ++i) out[i] = ascii_lower(in[i]);
}

// The Host header an HTTP client derives from the URL: lower-case host, port only when it is
// not the scheme's default (as botocore signs it).
inline void append_host_header_value(std::string& host, const url_parts& u) {
    const std::size_t at = host.size();
    host.resize(at + u.host.size());
    copy_ascii_lower(&host[at], u.host);
    if (!u.port.empty()) {
        std::string_view port = u.port;
        while (port.size() > 1 && port.front() == '0') port.remove_prefix(1);
        const bool is_default = (iequals(u.scheme, "https") && port == "443") || (iequals(u.scheme, "http") && port == "80");
        if (!is_default) {
            host.push_back(':');
            host.append(port);
        }
    }
}
inline std::string host_header_value(const url_parts& u) {
    std::string host;
    host.reserve(u.host.size() + 1 + u.port.size());
    append_host_header_value(host, u);
    return host;
}

// A URL with every byte that may not appear in one raw (non-ASCII, controls, space) written as
// %XX in upper case, as the signer's canonical form has it. Left raw, they are encoded after signing
// (by libcurl, by Python's requests), and the signature, made over the raw form, does not match the
// request sent.
inline std::string encode_unsafe_url_bytes(std::string url) {
    static const char hex[] = "0123456789ABCDEF";
    std::size_t i = 0;
    while (i < url.size()) {
        const auto c = static_cast<unsigned char>(url[i]);
        if (c > 0x20 && c < 0x7F) {
            ++i;
            continue;
        }
        const char enc[3] = {'%', hex[c >> 4], hex[c & 15]};
        url.replace(i, 1, enc, 3);
        i += 3;
    }
    return url;
}

}  // namespace detail
DDB2OS_END_NAMESPACE
