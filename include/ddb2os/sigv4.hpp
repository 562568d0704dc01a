// sigv4.hpp: AWS Signature Version 4, pure. Everything the signature depends on is an argument,
// the time included; nothing here reads a clock, the environment or the network.
//
// Three stages, each callable on its own and each producing the text the AWS test suite ships:
//   make_canonical_request -> make_string_to_sign -> derive_signing_key + make_signature
// sign() runs them and returns the headers (or query parameters) to add.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config.hpp"
#include "credentials.hpp"
#include "detail/crypto.hpp"
#include "detail/uri.hpp"
#include "detail/utf8.hpp"
#include "error.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

DDB2OS_BEGIN_NAMESPACE
namespace sigv4 {

enum class signature_location : unsigned char {
    headers,       // Authorization header
    query_string,  // presigned URL: X-Amz-* query parameters, with an expiry
};

enum class session_token_mode : unsigned char {
    sign,               // X-Amz-Security-Token is part of the signature (what every AWS SDK does)
    add_after_signing,  // added but not signed (services that require it outside the signature)
};

enum class payload_checksum : unsigned char {
    none,                  // the payload hash is only in the canonical request
    x_amz_content_sha256,  // also sent, and signed, as x-amz-content-sha256 (aoss, s3)
};

struct options {
    signature_location location = signature_location::headers;
    std::chrono::seconds expires{3600};  // query_string only: 1 s to 7 days
    bool normalize_path = true;          // remove dot segments and repeated slashes
    bool double_encode_path = true;      // encode the (already encoded) path again; false: path as is
    session_token_mode session_token = session_token_mode::sign;
    payload_checksum checksum = payload_checksum::none;
    bool sign_content_length = true;  // aoss refuses a signed content-length

    // What each service requires: aoss wants x-amz-content-sha256 and no signed content-length;
    // s3 neither normalizes nor double-encodes its keys. Everything else (es, dynamodb, ...) is the default.
    static options for_service(std::string_view service) {
        options o;
        if (service == "aoss") {
            o.checksum = payload_checksum::x_amz_content_sha256;
            o.sign_content_length = false;
        } else if (service == "s3") {
            o.normalize_path = false;
            o.double_encode_path = false;
            o.checksum = payload_checksum::x_amz_content_sha256;
        }
        return o;
    }
};

using sha256_digest = std::array<unsigned char, 32>;
using signing_key = std::array<unsigned char, 32>;

// The request body as the signer sees it. Holds views: the bytes must outlive the signing call.
class payload {
public:
    enum class kind : unsigned char { bytes, sha256, sha256_hex, unsigned_payload };

    payload() noexcept = default;  // an empty body
    static payload bytes(std::string_view body) noexcept { return payload(kind::bytes, body); }
    // A hash computed elsewhere (a streamed or compressed body, detail::sha256_stream).
    static payload sha256(const sha256_digest& digest) noexcept {
        payload p(kind::sha256, {});
        p.digest_ = digest;
        return p;
    }
    // 64 lower-case hex digits, checked when signing (sigv4.bad_payload_hash).
    static payload sha256_hex(std::string_view hex) noexcept { return payload(kind::sha256_hex, hex); }
    // The literal UNSIGNED-PAYLOAD (S3 over TLS, presigned uploads).
    static payload unsigned_payload() noexcept { return payload(kind::unsigned_payload, {}); }

    kind type() const noexcept { return kind_; }
    std::string_view data() const noexcept { return data_; }
    const sha256_digest& digest() const noexcept { return digest_; }

    // What goes in the canonical request's last line.
    std::string hash() const {
        std::string s;
        append_hash(s);
        return s;
    }
    void append_hash(std::string& out) const {
        switch (kind_) {
            case kind::bytes:
                // Most signed requests (GET, HEAD, DELETE) have no body: its hash is a constant.
                if (data_.empty()) {
                    out.append("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 64);
                    return;
                }
                return detail::append_hex(out, detail::sha256(data_).data(), 32);
            case kind::sha256: return detail::append_hex(out, digest_.data(), digest_.size());
            case kind::sha256_hex: {
                const bool ok = data_.size() == 64 && std::all_of(data_.begin(), data_.end(), [](char c) {
                    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                });
                if (!ok) throw error("sigv4.bad_payload_hash", "precomputed payload hash is not 64 lower-case hex digits");
                out.append(data_);
                return;
            }
            case kind::unsigned_payload: out.append("UNSIGNED-PAYLOAD"); return;
        }
    }

private:
    payload(kind k, std::string_view d) noexcept : kind_(k), data_(d) {}
    kind kind_ = kind::bytes;
    std::string_view data_;
    sha256_digest digest_{};
};

struct header {
    std::string_view name;
    std::string_view value;
};

// A request to sign. Views: the strings must outlive the signing call.
struct request {
    std::string_view method;  // as sent ("GET", "POST", ...)
    // "https://host[:port]/path?query" or "/path?query" (then a Host header is required).
    // The path and query are as on the wire; the path is encoded again when double_encode_path.
    std::string_view url;
    // Repeated names are kept in order; names are case-insensitive. Without a Host header, the
    // one an HTTP client derives from the URL is signed (lower-case, port only if not default).
    std::vector<header> headers;
    payload body;
};

struct signing_params {
    std::string_view region;   // "us-east-1"
    std::string_view service;  // "es", "aoss", "dynamodb"
    std::chrono::system_clock::time_point time;
    options opts{};
};

// Stage 1's output: the canonical request and what the later stages need from it.
struct canonical_request {
    std::string text;
    std::string signed_headers;  // "host;x-amz-date"
    std::string payload_hash;    // hex, or UNSIGNED-PAYLOAD
    std::string amz_date;        // "20150830T123600Z"
    std::string scope;           // "20150830/us-east-1/es/aws4_request"
};

struct field {
    std::string name;
    std::string value;
};

struct signing_result {
    // signature_location::headers: set these on the request, replacing any of the same name.
    std::vector<field> headers;
    // signature_location::query_string: append these to the URL's query, in this order. Values
    // are already percent-encoded.
    std::vector<field> query;
    std::string canonical_request;
    std::string string_to_sign;
    std::string signature;  // hex

    // The query parameters joined as "k=v&k=v" (empty in header mode).
    std::string query_string() const {
        std::string s;
        for (const field& f : query) {
            if (!s.empty()) s += '&';
            s += f.name;
            s += '=';
            s += f.value;
        }
        return s;
    }
};

namespace detail {

using namespace ddb2os::detail;

constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? static_cast<unsigned>(-3) : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct civil_date {
    std::int64_t year;
    unsigned month;
    unsigned day;
};

constexpr civil_date civil_from_days(std::int64_t z) noexcept {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return {static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2), m, d};
}

inline std::int64_t epoch_seconds(std::chrono::system_clock::time_point t) noexcept {
    return static_cast<std::int64_t>(std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count());
}

// "YYYYMMDDTHHMMSSZ", UTC, from seconds since the Unix epoch.
inline void format_amz_date(std::int64_t seconds, char (&out)[16]) {
    constexpr std::int64_t max_seconds = 253402300799;  // 9999-12-31T23:59:59Z
    if (seconds < 0 || seconds > max_seconds)
        throw error("sigv4.bad_time", "signing time is outside the years 1970 to 9999");
    const std::int64_t days = seconds / 86400;
    auto secs = static_cast<unsigned>(seconds % 86400);
    const civil_date c = civil_from_days(days);
    const auto put = [&out](std::size_t at, unsigned value, std::size_t width) {
        for (std::size_t i = width; i-- > 0; value /= 10) out[at + i] = static_cast<char>('0' + value % 10);
    };
    put(0, static_cast<unsigned>(c.year), 4);
    put(4, c.month, 2);
    put(6, c.day, 2);
    out[8] = 'T';
    put(9, secs / 3600, 2);
    put(11, secs / 60 % 60, 2);
    put(13, secs % 60, 2);
    out[15] = 'Z';
}

inline std::string format_amz_date(std::int64_t seconds) {
    char text[16];
    format_amz_date(seconds, text);
    return std::string(text, sizeof text);
}

inline std::string format_amz_date(std::chrono::system_clock::time_point t) {
    return format_amz_date(epoch_seconds(t));
}

// RFC 9110 token: the characters a method or a header name may have.
constexpr bool is_token_char(unsigned char c) noexcept {
    return is_uri_unreserved(c) || c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' ||
           c == '*' || c == '+' || c == '^' || c == '`' || c == '|';
}

inline void check_token(std::string_view s, const char* id, const char* what) {
    if (s.empty()) throw error(id, std::string(what) + " is empty");
    for (const char c : s)
        if (!is_token_char(static_cast<unsigned char>(c))) {
            // Quoted as valid UTF-8: a name given as bytes (Python's b"\xff") need not be, and a
            // message that is not could not become the Python error's str.
            std::string m = std::string(what) + " \"";
            append_sanitized_utf8(m, s);
            throw error(id, m + "\" is not an HTTP token");
        }
}

constexpr bool is_header_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

// True when no byte of `v` is a space or a control character, so none is header whitespace: the
// usual value (a host, a date, a content type). 16 bytes at a time, the last block overlapping; a
// byte-by-byte scan for whitespace was 5% of a signature.
inline bool has_no_space_or_control(std::string_view v) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(v.data());
    const std::size_t n = v.size();
    std::size_t i = 0;
#if defined(__SSE2__)
    if (n >= 16) {
        const __m128i space = _mm_set1_epi8(0x20);
        __m128i low = _mm_setzero_si128();  // 0xFF where a byte is at most 0x20 (unsigned)
        const auto mark = [&](const unsigned char* at) {
            const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
            low = _mm_or_si128(low, _mm_cmpeq_epi8(_mm_min_epu8(x, space), x));
        };
        for (; i + 16 <= n; i += 16) mark(p + i);
        if (i < n) mark(p + n - 16);
        return _mm_movemask_epi8(low) == 0;
    }
#endif
    for (; i < n; ++i)
        if (p[i] <= 0x20) return false;
    return true;
}

// Trimall: no leading or trailing whitespace, each inner run of it (line folds included) one space.
inline void append_trimmed(std::string& out, std::string_view v) {
    if (has_no_space_or_control(v)) {
        out.append(v.data(), v.size());
        return;
    }
    std::size_t i = 0;
    bool first = true;
    while (i < v.size()) {
        while (i < v.size() && is_header_space(v[i])) ++i;
        const std::size_t word = i;
        while (i < v.size() && !is_header_space(v[i])) ++i;
        if (i == word) break;
        if (!first) out.push_back(' ');
        out.append(v.data() + word, i - word);
        first = false;
    }
}

// Headers never signed from the input: hop-by-hop headers and others that proxies and clients
// change (botocore's list), and those the signer sets itself.
inline bool skip_header(std::string_view n, bool in_headers, bool has_token, const options& o) noexcept {
    static constexpr std::string_view unsigned_names[] = {
        "authorization", "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id"};
    for (const std::string_view u : unsigned_names)
        if (n == u) return true;
    if (in_headers && (n == "x-amz-date" || (has_token && n == "x-amz-security-token") ||
                       (o.checksum == payload_checksum::x_amz_content_sha256 && n == "x-amz-content-sha256")))
        return true;
    return !o.sign_content_length && n == "content-length";
}

inline void check_params(const request& req, const signing_params& p) {
    check_token(req.method, "sigv4.bad_method", "HTTP method");
    if (p.region.empty()) throw error("sigv4.bad_scope", "region is empty");
    if (p.service.empty()) throw error("sigv4.bad_scope", "service is empty");
    if (p.opts.location == signature_location::query_string &&
        (p.opts.expires.count() < 1 || p.opts.expires.count() > 604800))
        throw error("sigv4.bad_expiry", "presigned URL expiry must be 1 to 604800 seconds, not " +
                                            std::to_string(p.opts.expires.count()));
}

inline std::string uri_encoded(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 16);
    append_uri_encoded(out, s, false);
    return out;
}

}  // namespace detail

namespace detail {

// make_canonical_request's working storage: a signer keeps one, so signing allocates nothing
// once these have grown.
struct canonical_buffers {
    struct entry {
        std::size_t off, len;
        std::string_view value;
        std::size_t order;
    };
    std::string names, normalized;
    std::vector<entry> entries;
    std::vector<query_param> query;
    // The last URL, split, and the Host value it gives (empty: not made yet): a signer signs the
    // same URL again and again (every _bulk), and a repeat then costs one compare.
    bool has_url = false;
    std::string url;
    url_parts parts;  // views into `url`
    std::string derived_host;

    const url_parts& split(std::string_view u) {
        if (has_url && u == url) return parts;
        const url_parts p = split_url(u);  // throws for a bad URL before anything is kept
        url.assign(u.data(), u.size());
        // split_url's views are all within `u`: the same offsets into the copy.
        const auto rebase = [&](std::string_view v) {
            return v.data() == nullptr ? v : std::string_view(url.data() + (v.data() - u.data()), v.size());
        };
        parts = {rebase(p.scheme), rebase(p.host), rebase(p.port), rebase(p.path), rebase(p.query)};
        derived_host.clear();
        has_url = true;
        return parts;
    }
};

// The credential scope of `amz_date`'s day: "20150830/us-east-1/es/aws4_request".
inline void append_scope(std::string& out, std::string_view amz_date, std::string_view region, std::string_view service) {
    out.append(amz_date.substr(0, 8)).append(1, '/').append(region).append(1, '/').append(service).append("/aws4_request");
}

// The string to sign's lines before the canonical request's hash, and the Authorization header's
// start before the signed headers: the same for every request of a second, and of a day.
inline void append_string_to_sign_prefix(std::string& out, std::string_view amz_date, std::string_view scope) {
    out.append("AWS4-HMAC-SHA256\n").append(amz_date).append(1, '\n').append(scope).append(1, '\n');
}
inline void append_authorization_prefix(std::string& out, std::string_view access_key_id, std::string_view scope) {
    out.append("AWS4-HMAC-SHA256 Credential=").append(access_key_id).append(1, '/').append(scope);
    out.append(", SignedHeaders=");
}

// Stage 1 into `cr`, whose strings are overwritten (their capacity kept). `scope` is the
// credential scope of `amz_date`'s day (append_scope).
inline void write_canonical_request(const request& req, const credentials& creds, const signing_params& p,
                                    std::string_view amz_date, std::string_view scope, canonical_request& cr,
                                    canonical_buffers& b) {
    check_params(req, p);
    const options& o = p.opts;
    const bool in_headers = o.location == signature_location::headers;
    const bool token_signed = creds.has_session_token() && o.session_token == session_token_mode::sign;

    cr.amz_date.assign(amz_date.data(), amz_date.size());
    cr.scope.assign(scope.data(), scope.size());
    const url_parts& url = b.split(req.url);

    // Headers: lower-case names in one buffer, sorted by (name, position) so repeated names keep
    // their order when joined.
    using entry = canonical_buffers::entry;
    std::string& names = b.names;
    std::vector<entry>& entries = b.entries;
    names.clear();
    entries.clear();
    bool has_host = false;
    // Fields stored in place: an entry built on the stack and copied in was read back in 16-byte
    // loads from 8-byte stores (a store-forwarding stall, 2% of a signature).
    const auto push_entry = [&entries](std::size_t off, std::size_t len, std::string_view value) {
        const std::size_t order = entries.size();
        entry& e = entries.emplace_back();
        e.off = off;
        e.len = len;
        e.value = value;
        e.order = order;
    };
    const auto add = [&](std::string_view lower_name, std::string_view value) {
        push_entry(names.size(), lower_name.size(), value);
        names.append(lower_name);
    };
    for (const header& h : req.headers) {
        check_token(h.name, "sigv4.bad_header", "header name");
        const std::size_t off = names.size();
        names.resize(off + h.name.size());  // one resize: push_back per character was 13% of a signature
        copy_ascii_lower(&names[off], h.name);
        const std::string_view lower(names.data() + off, h.name.size());
        if (skip_header(lower, in_headers, creds.has_session_token(), o)) {
            names.resize(off);
            continue;
        }
        has_host = has_host || lower == "host";
        push_entry(off, h.name.size(), h.value);
    }
    if (!has_host) {
        if (url.host.empty()) throw error("sigv4.no_host", "request has no Host header and its URL has no host");
        if (b.derived_host.empty()) append_host_header_value(b.derived_host, url);
        add("host", b.derived_host);
    }
    cr.payload_hash.clear();
    req.body.append_hash(cr.payload_hash);
    if (in_headers) {
        add("x-amz-date", cr.amz_date);
        if (token_signed) add("x-amz-security-token", creds.session_token());
        if (o.checksum == payload_checksum::x_amz_content_sha256) add("x-amz-content-sha256", cr.payload_hash);
    }
    const auto name_of = [&names](const entry& e) { return std::string_view(names.data() + e.off, e.len); };
    const auto before = [&](const entry& x, const entry& y) {
        const int c = name_of(x).compare(name_of(y));
        return c != 0 ? c < 0 : x.order < y.order;
    };
    // Often in order already (host, then x-amz-date): one pass to see, instead of a sort's setup.
    if (!std::is_sorted(entries.begin(), entries.end(), before)) std::sort(entries.begin(), entries.end(), before);
    cr.signed_headers.clear();
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const std::string_view name = name_of(entries[i]);
        if (i != 0 && name == name_of(entries[i - 1])) continue;
        if (i != 0) cr.signed_headers.push_back(';');
        cr.signed_headers.append(name);
    }

    std::vector<query_param>& query = b.query;
    query.clear();
    parse_query_canonical(url.query, query);
    if (!in_headers) {
        query.push_back({"X-Amz-Algorithm", "AWS4-HMAC-SHA256"});
        std::string credential;
        credential.reserve(creds.access_key_id().size() + 1 + cr.scope.size());
        credential.append(creds.access_key_id()).append(1, '/').append(cr.scope);
        query.push_back({"X-Amz-Credential", uri_encoded(credential)});
        query.push_back({"X-Amz-Date", cr.amz_date});
        query.push_back({"X-Amz-Expires", std::to_string(o.expires.count())});
        query.push_back({"X-Amz-SignedHeaders", uri_encoded(cr.signed_headers)});
        if (token_signed) query.push_back({"X-Amz-Security-Token", uri_encoded(creds.session_token())});
    }

    std::string& t = cr.text;
    t.clear();
    t.append(req.method).push_back('\n');
    const std::string_view raw_path = url.path.empty() ? std::string_view("/") : url.path;
    const bool rewrite = o.normalize_path && !is_normal_uri_path(raw_path);
    if (rewrite) b.normalized = normalize_uri_path(raw_path);
    const std::string_view path = rewrite ? std::string_view(b.normalized) : raw_path;
    if (o.double_encode_path)
        append_uri_encoded(t, path, true);
    else
        t.append(path);
    t.push_back('\n');
    append_sorted_query(t, query);
    t.push_back('\n');
    for (std::size_t i = 0; i < entries.size(); ++i) {  // repeated names: one line, values joined by ','
        const std::string_view name = name_of(entries[i]);
        if (i != 0 && name == name_of(entries[i - 1])) {
            t.push_back(',');
        } else {
            if (i != 0) t.push_back('\n');
            t.append(name).push_back(':');
        }
        append_trimmed(t, entries[i].value);
    }
    t.append("\n\n", 2);
    t.append(cr.signed_headers).push_back('\n');
    t.append(cr.payload_hash);
}

}  // namespace detail

// Stage 1: the canonical request.
inline canonical_request make_canonical_request(const request& req, const credentials& creds,
                                                const signing_params& p) {
    canonical_request cr;
    detail::canonical_buffers b;
    char text[16];
    detail::format_amz_date(detail::epoch_seconds(p.time), text);
    const std::string_view amz_date(text, sizeof text);
    std::string scope;
    detail::append_scope(scope, amz_date, p.region, p.service);
    detail::write_canonical_request(req, creds, p, amz_date, scope, cr, b);
    return cr;
}

namespace detail {
inline void append_string_to_sign(std::string& s, std::string_view amz_date, std::string_view scope,
                                  std::string_view canonical_request_text) {
    append_string_to_sign_prefix(s, amz_date, scope);
    append_hex(s, sha256(canonical_request_text).data(), 32);
}
}  // namespace detail

// Stage 2: the string to sign.
inline std::string make_string_to_sign(std::string_view amz_date, std::string_view scope,
                                       std::string_view canonical_request_text) {
    std::string s;
    s.reserve(17 + amz_date.size() + 1 + scope.size() + 1 + 64);
    detail::append_string_to_sign(s, amz_date, scope, canonical_request_text);
    return s;
}

inline std::string make_string_to_sign(const canonical_request& cr) {
    return make_string_to_sign(cr.amz_date, cr.scope, cr.text);
}

// Stage 3: the signing key (four HMACs; cache it) and the signature.
inline signing_key derive_signing_key(std::string_view secret_access_key, std::string_view date8,
                                      std::string_view region, std::string_view service) {
    std::string k;
    k.reserve(4 + secret_access_key.size());
    k.append("AWS4").append(secret_access_key);
    signing_key key = detail::hmac_sha256(k, date8);
    std::fill(k.begin(), k.end(), '\0');  // do not leave the secret in a freed buffer
    key = detail::hmac_sha256(detail::as_view(key), region);
    key = detail::hmac_sha256(detail::as_view(key), service);
    return detail::hmac_sha256(detail::as_view(key), "aws4_request");
}

inline std::string make_signature(const signing_key& key, std::string_view string_to_sign) {
    return detail::hex(detail::hmac_sha256(detail::as_view(key), string_to_sign));
}

// Signing keys per (access key id, date, region, service), shared between threads. A key lives
// for a day; the cache keeps the `capacity` most recently used.
class signing_key_cache {
public:
    explicit signing_key_cache(std::size_t capacity = 8) : capacity_(capacity == 0 ? 1 : capacity) {}
    signing_key_cache(const signing_key_cache&) = delete;
    signing_key_cache& operator=(const signing_key_cache&) = delete;

    signing_key get(const credentials& creds, std::string_view date8, std::string_view region,
                    std::string_view service) {
        return get_prepared(creds, date8, region, service).first;
    }

    // The key and its HMAC with the pads already hashed: a signature is then two SHA-256 finishes.
    std::pair<signing_key, detail::hmac_sha256_key> get_prepared(const credentials& creds, std::string_view date8,
                                                                std::string_view region, std::string_view service) {
        const detail::sha256_digest secret = detail::sha256(creds.secret_access_key());
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            if (entry* e = find(creds, secret, date8, region, service)) {
                e->last_used = ++clock_;
                ++hits_;
                return {e->key, e->prepared};
            }
            ++misses_;
        }
        // Derived outside the lock; another thread may have inserted the same key meanwhile.
        const signing_key key = derive_signing_key(creds.secret_access_key(), date8, region, service);
        const detail::hmac_sha256_key prepared(detail::as_view(key));
        const std::lock_guard<std::mutex> lock(mutex_);
        if (entry* e = find(creds, secret, date8, region, service)) {
            e->last_used = ++clock_;
            return {key, prepared};
        }
        entry fresh{creds.access_key_id(), secret, std::string(date8), std::string(region), std::string(service), key,
                    prepared, ++clock_};
        if (entries_.size() < capacity_) {
            entries_.push_back(std::move(fresh));
        } else {
            auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                           [](const entry& a, const entry& b) { return a.last_used < b.last_used; });
            *oldest = std::move(fresh);
        }
        return {key, prepared};
    }

    std::size_t size() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return entries_.size();
    }
    std::uint64_t hits() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return hits_;
    }
    std::uint64_t misses() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return misses_;
    }

private:
    struct entry {
        std::string access_key_id;
        detail::sha256_digest secret;  // of the secret key: the cache keeps no secret it was given
        std::string date, region, service;
        signing_key key;
        detail::hmac_sha256_key prepared;
        std::uint64_t last_used;
    };
    // The secret is compared too (a rotated secret under the same key id must not reuse a key), by
    // its digest, in constant time.
    entry* find(const credentials& creds, const detail::sha256_digest& secret, std::string_view date8,
                std::string_view region, std::string_view service) {
        for (entry& e : entries_)
            if (e.date == date8 && e.region == region && e.service == service &&
                e.access_key_id == creds.access_key_id() && CRYPTO_memcmp(e.secret.data(), secret.data(), secret.size()) == 0)
                return &e;
        return nullptr;
    }

    mutable std::mutex mutex_;
    std::vector<entry> entries_;
    std::size_t capacity_;
    std::uint64_t clock_ = 0, hits_ = 0, misses_ = 0;
};

// All three stages; with a cache, repeated signing skips the key derivation.
inline signing_result sign(const request& req, const credentials& creds, const signing_params& p,
                           signing_key_cache* cache = nullptr) {
    canonical_request cr = make_canonical_request(req, creds, p);
    signing_result r;
    r.string_to_sign = make_string_to_sign(cr);
    const std::string_view date8 = std::string_view(cr.amz_date).substr(0, 8);
    if (cache != nullptr) {
        r.signature = detail::hex(cache->get_prepared(creds, date8, p.region, p.service).second.sign(r.string_to_sign));
    } else {
        r.signature = make_signature(derive_signing_key(creds.secret_access_key(), date8, p.region, p.service),
                                     r.string_to_sign);
    }
    const bool has_token = creds.has_session_token();
    if (p.opts.location == signature_location::headers) {
        r.headers.reserve(4);
        if (has_token) r.headers.push_back({"X-Amz-Security-Token", creds.session_token()});
        r.headers.push_back({"X-Amz-Date", cr.amz_date});
        if (p.opts.checksum == payload_checksum::x_amz_content_sha256)
            r.headers.push_back({"x-amz-content-sha256", cr.payload_hash});
        std::string auth;
        auth.reserve(64 + creds.access_key_id().size() + cr.scope.size() + cr.signed_headers.size() + 64);
        detail::append_authorization_prefix(auth, creds.access_key_id(), cr.scope);
        auth.append(cr.signed_headers).append(", Signature=").append(r.signature);
        r.headers.push_back({"Authorization", std::move(auth)});
    } else {
        r.query.reserve(7);
        r.query.push_back({"X-Amz-Algorithm", "AWS4-HMAC-SHA256"});
        r.query.push_back({"X-Amz-Credential", detail::uri_encoded(creds.access_key_id() + "/" + cr.scope)});
        r.query.push_back({"X-Amz-Date", cr.amz_date});
        r.query.push_back({"X-Amz-SignedHeaders", detail::uri_encoded(cr.signed_headers)});
        r.query.push_back({"X-Amz-Expires", std::to_string(p.opts.expires.count())});
        if (has_token) r.query.push_back({"X-Amz-Security-Token", detail::uri_encoded(creds.session_token())});
        r.query.push_back({"X-Amz-Signature", r.signature});
    }
    r.canonical_request = std::move(cr.text);
    return r;
}

// What signer::sign returns: the headers to set on the request, replacing any of the same name.
// Views into the signer, valid until its next call; the last two are empty when not sent.
struct signed_headers {
    std::string_view amz_date;        // X-Amz-Date
    std::string_view authorization;   // Authorization
    std::string_view security_token;  // X-Amz-Security-Token (temporary credentials)
    std::string_view content_sha256;  // x-amz-content-sha256 (aoss, s3)
};

// Header-mode signing for one set of credentials, region and service, like botocore's SigV4Auth:
// the day's signing key is kept, the X-Amz-Date text made once per second, and the buffers
// reused, so that signing allocates nothing once they have grown. Same signatures as sign().
// Not thread-safe: one per thread (or a lock around it).
class signer {
public:
    signer(credentials creds, std::string region, const std::string& service)
        : signer(std::move(creds), std::move(region), service, options::for_service(service)) {}
    signer(credentials creds, std::string region, std::string service, options opts)
        : creds_(std::move(creds)), region_(std::move(region)), service_(std::move(service)), opts_(opts) {
        if (region_.empty()) throw error("sigv4.bad_scope", "region is empty");
        if (service_.empty()) throw error("sigv4.bad_scope", "service is empty");
        if (opts_.location != signature_location::headers)
            throw error("sigv4.bad_option", "a signer signs in headers; presign with sign() and signature_location::query_string");
    }

    // Throws error (sigv4.*) for a request that cannot be signed, as sign() does.
    const signed_headers& sign(const request& req, std::chrono::system_clock::time_point t) {
        const std::int64_t seconds = detail::epoch_seconds(t);
        if (!second_key_ || seconds != seconds_) new_second(seconds);  // -1 is a second too (1969-12-31T23:59:59)
        const std::string_view amz_date(amz_date_, sizeof amz_date_);
        const signing_params p{region_, service_, t, opts_};
        detail::write_canonical_request(req, creds_, p, amz_date, scope_, cr_, buffers_);
        string_to_sign_.resize(string_to_sign_prefix_);
        detail::append_hex(string_to_sign_, canonical_hash_.hash(cr_.text).data(), 32);
        const sha256_digest signature =
            second_key_->sign(std::string_view(string_to_sign_).substr(string_to_sign_prefix_));
        auth_.resize(auth_prefix_);
        auth_.append(cr_.signed_headers).append(", Signature=", 12);
        detail::append_hex(auth_, signature.data(), signature.size());
        out_.amz_date = cr_.amz_date;
        out_.authorization = auth_;
        out_.security_token = creds_.has_session_token() ? std::string_view(creds_.session_token()) : std::string_view();
        out_.content_sha256 =
            opts_.checksum == payload_checksum::x_amz_content_sha256 ? std::string_view(cr_.payload_hash) : std::string_view();
        return out_;
    }

    // The last call's stages, for comparing with what a service expected on a mismatch. They hold
    // no secret key, but the canonical request holds the session token when there is one: scrub it
    // before logging them.
    const canonical_request& last_canonical_request() const noexcept { return cr_; }
    std::string_view last_string_to_sign() const noexcept { return string_to_sign_; }

    const credentials& creds() const noexcept { return creds_; }
    const std::string& region() const noexcept { return region_; }
    const std::string& service() const noexcept { return service_; }

private:
    // What changes only with the second (the date, the string to sign's first lines) or the day
    // (the scope, the key, the Authorization header's start) is made here, not per request.
    void new_second(std::int64_t seconds) {
        // seconds_ is set last, and key_date_ last of the day's state: if anything here throws, the
        // next call starts over instead of signing with half of it.
        detail::format_amz_date(seconds, amz_date_);  // throws for a time it cannot show
        const std::string_view amz_date(amz_date_, sizeof amz_date_);
        if (!key_ || std::memcmp(key_date_, amz_date_, sizeof key_date_) != 0) {
            signing_key k = derive_signing_key(creds_.secret_access_key(), amz_date.substr(0, 8), region_, service_);
            key_.emplace(detail::as_view(k));
            OPENSSL_cleanse(k.data(), k.size());
            scope_.clear();
            detail::append_scope(scope_, amz_date, region_, service_);
            auth_.clear();
            detail::append_authorization_prefix(auth_, creds_.access_key_id(), scope_);
            auth_prefix_ = auth_.size();
            std::memcpy(key_date_, amz_date_, sizeof key_date_);
        }
        string_to_sign_.clear();
        detail::append_string_to_sign_prefix(string_to_sign_, amz_date, scope_);
        string_to_sign_prefix_ = string_to_sign_.size();
        second_key_.emplace(key_->with_prefix(string_to_sign_));  // those lines hashed once a second
        seconds_ = seconds;
    }

    credentials creds_;
    std::string region_, service_;
    options opts_;
    std::int64_t seconds_ = -1;  // the second amz_date_ shows, once second_key_ is set
    char amz_date_[16] = {};
    char key_date_[8] = {};      // the day key_ and scope_ are for
    std::optional<detail::hmac_sha256_key> key_, second_key_;  // the day's key; with the second's lines
    detail::sha256_first_block_cache canonical_hash_;  // requests to one host and path share a first block
    std::string scope_;
    canonical_request cr_;
    detail::canonical_buffers buffers_;
    std::string string_to_sign_, auth_;  // each: a prefix kept across requests, then the request's part
    std::size_t string_to_sign_prefix_ = 0, auth_prefix_ = 0;
    signed_headers out_;
};

}  // namespace sigv4
DDB2OS_END_NAMESPACE
