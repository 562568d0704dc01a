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
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config.hpp"
#include "credentials.hpp"
#include "detail/crypto.hpp"
#include "detail/uri.hpp"
#include "error.hpp"

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
        switch (kind_) {
            case kind::bytes:
                // Most signed requests (GET, HEAD, DELETE) have no body: its hash is a constant.
                if (data_.empty()) return "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
                return detail::hex(detail::sha256(data_));
            case kind::sha256: return detail::hex(digest_);
            case kind::sha256_hex: {
                const bool ok = data_.size() == 64 && std::all_of(data_.begin(), data_.end(), [](char c) {
                    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                });
                if (!ok) throw error("sigv4.bad_payload_hash", "precomputed payload hash is not 64 lower-case hex digits");
                return std::string(data_);
            }
            case kind::unsigned_payload: return "UNSIGNED-PAYLOAD";
        }
        return {};
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

// "YYYYMMDDTHHMMSSZ", UTC, from seconds since the Unix epoch.
inline std::string format_amz_date(std::int64_t seconds) {
    constexpr std::int64_t max_seconds = 253402300799;  // 9999-12-31T23:59:59Z
    if (seconds < 0 || seconds > max_seconds)
        throw error("sigv4.bad_time", "signing time is outside the years 1970 to 9999");
    const std::int64_t days = seconds / 86400;
    auto secs = static_cast<unsigned>(seconds % 86400);
    const civil_date c = civil_from_days(days);
    std::string out(16, '0');
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
    return out;
}

inline std::string format_amz_date(std::chrono::system_clock::time_point t) {
    return format_amz_date(
        static_cast<std::int64_t>(std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count()));
}

// RFC 9110 token: the characters a method or a header name may have.
constexpr bool is_token_char(unsigned char c) noexcept {
    return is_uri_unreserved(c) || c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' ||
           c == '*' || c == '+' || c == '^' || c == '`' || c == '|';
}

inline void check_token(std::string_view s, const char* id, const char* what) {
    if (s.empty()) throw error(id, std::string(what) + " is empty");
    for (const char c : s)
        if (!is_token_char(static_cast<unsigned char>(c)))
            throw error(id, std::string(what) + " \"" + std::string(s) + "\" is not an HTTP token");
}

constexpr bool is_header_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

// Trimall: no leading or trailing whitespace, each inner run of it (line folds included) one space.
inline void append_trimmed(std::string& out, std::string_view v) {
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

// Stage 1: the canonical request.
inline canonical_request make_canonical_request(const request& req, const credentials& creds,
                                                const signing_params& p) {
    detail::check_params(req, p);
    const options& o = p.opts;
    const bool in_headers = o.location == signature_location::headers;
    const bool token_signed = creds.has_session_token() && o.session_token == session_token_mode::sign;

    canonical_request cr;
    cr.amz_date = detail::format_amz_date(p.time);
    cr.scope.reserve(8 + p.region.size() + p.service.size() + 16);
    cr.scope.append(cr.amz_date, 0, 8).append(1, '/').append(p.region).append(1, '/').append(p.service).append(
        "/aws4_request");
    const detail::url_parts url = detail::split_url(req.url);

    // Headers: lower-case names in one buffer, sorted by (name, position) so repeated names keep
    // their order when joined.
    struct entry {
        std::size_t off, len;
        std::string_view value;
        std::size_t order;
    };
    std::string names, derived_host, canonical_headers;
    names.reserve(req.headers.size() * 16 + 64);
    std::vector<entry> entries;
    entries.reserve(req.headers.size() + 4);
    bool has_host = false;
    const auto add = [&](std::string_view lower_name, std::string_view value) {
        entries.push_back({names.size(), lower_name.size(), value, entries.size()});
        names.append(lower_name);
    };
    for (const header& h : req.headers) {
        detail::check_token(h.name, "sigv4.bad_header", "header name");
        const std::size_t off = names.size();
        for (const char c : h.name) names.push_back(detail::ascii_lower(c));
        const std::string_view lower(names.data() + off, h.name.size());
        if (detail::skip_header(lower, in_headers, creds.has_session_token(), o)) {
            names.resize(off);
            continue;
        }
        has_host = has_host || lower == "host";
        entries.push_back({off, h.name.size(), h.value, entries.size()});
    }
    if (!has_host) {
        if (url.host.empty()) throw error("sigv4.no_host", "request has no Host header and its URL has no host");
        derived_host = detail::host_header_value(url);
        add("host", derived_host);
    }
    cr.payload_hash = req.body.hash();
    if (in_headers) {
        add("x-amz-date", cr.amz_date);
        if (token_signed) add("x-amz-security-token", creds.session_token());
        if (o.checksum == payload_checksum::x_amz_content_sha256) add("x-amz-content-sha256", cr.payload_hash);
    }
    const auto name_of = [&names](const entry& e) { return std::string_view(names.data() + e.off, e.len); };
    std::sort(entries.begin(), entries.end(), [&](const entry& a, const entry& b) {
        const int c = name_of(a).compare(name_of(b));
        return c != 0 ? c < 0 : a.order < b.order;
    });
    canonical_headers.reserve(names.size() + entries.size() * 48);
    cr.signed_headers.reserve(names.size() + entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const std::string_view name = name_of(entries[i]);
        if (i != 0 && name == name_of(entries[i - 1])) {
            canonical_headers.push_back(',');
        } else {
            if (i != 0) {
                canonical_headers.push_back('\n');
                cr.signed_headers.push_back(';');
            }
            canonical_headers.append(name).push_back(':');
            cr.signed_headers.append(name);
        }
        detail::append_trimmed(canonical_headers, entries[i].value);
    }

    std::vector<detail::query_param> query;
    detail::parse_query_canonical(url.query, query);
    if (!in_headers) {
        query.push_back({"X-Amz-Algorithm", "AWS4-HMAC-SHA256"});
        std::string credential;
        credential.reserve(creds.access_key_id().size() + 1 + cr.scope.size());
        credential.append(creds.access_key_id()).append(1, '/').append(cr.scope);
        query.push_back({"X-Amz-Credential", detail::uri_encoded(credential)});
        query.push_back({"X-Amz-Date", cr.amz_date});
        query.push_back({"X-Amz-Expires", std::to_string(o.expires.count())});
        query.push_back({"X-Amz-SignedHeaders", detail::uri_encoded(cr.signed_headers)});
        if (token_signed) query.push_back({"X-Amz-Security-Token", detail::uri_encoded(creds.session_token())});
    }

    std::string& t = cr.text;
    t.reserve(req.method.size() + url.path.size() * 3 + url.query.size() * 2 + canonical_headers.size() +
              cr.signed_headers.size() + (in_headers ? 0 : 256) + 80);
    t.append(req.method).push_back('\n');
    const std::string_view raw_path = url.path.empty() ? std::string_view("/") : url.path;
    std::string normalized;
    const bool rewrite = o.normalize_path && !detail::is_normal_uri_path(raw_path);
    if (rewrite) normalized = detail::normalize_uri_path(raw_path);
    const std::string_view path = rewrite ? std::string_view(normalized) : raw_path;
    if (o.double_encode_path)
        detail::append_uri_encoded(t, path, true);
    else
        t.append(path);
    t.push_back('\n');
    detail::append_sorted_query(t, query);
    t.push_back('\n');
    t.append(canonical_headers).append("\n\n");
    t.append(cr.signed_headers).push_back('\n');
    t.append(cr.payload_hash);
    return cr;
}

// Stage 2: the string to sign.
inline std::string make_string_to_sign(std::string_view amz_date, std::string_view scope,
                                       std::string_view canonical_request_text) {
    std::string s;
    s.reserve(17 + amz_date.size() + 1 + scope.size() + 1 + 64);
    s.append("AWS4-HMAC-SHA256\n").append(amz_date).append(1, '\n').append(scope).append(1, '\n');
    const detail::sha256_digest d = detail::sha256(canonical_request_text);
    detail::append_hex(s, d.data(), d.size());
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
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            if (entry* e = find(creds, date8, region, service)) {
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
        if (entry* e = find(creds, date8, region, service)) {
            e->last_used = ++clock_;
            return {key, prepared};
        }
        entry fresh{creds.access_key_id(), creds.secret_access_key(), std::string(date8), std::string(region),
                    std::string(service), key, prepared, ++clock_};
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
        std::string access_key_id, secret, date, region, service;
        signing_key key;
        detail::hmac_sha256_key prepared;
        std::uint64_t last_used;
    };
    // The secret is compared too: a rotated secret under the same key id must not reuse a key.
    entry* find(const credentials& creds, std::string_view date8, std::string_view region, std::string_view service) {
        for (entry& e : entries_)
            if (e.date == date8 && e.region == region && e.service == service &&
                e.access_key_id == creds.access_key_id() && e.secret == creds.secret_access_key())
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
        auth.append("AWS4-HMAC-SHA256 Credential=").append(creds.access_key_id()).append(1, '/').append(cr.scope);
        auth.append(", SignedHeaders=").append(cr.signed_headers).append(", Signature=").append(r.signature);
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

}  // namespace sigv4
DDB2OS_END_NAMESPACE
