// transport/curl.hpp: the libcurl implementation of http::transport, and the only header that
// includes <curl/curl.h> (and zlib). Link with ddb2os::curl.
//
// - Connections are kept alive and reused across requests: each transport keeps a pool of curl
//   easy handles (one per concurrent send), and each handle keeps its own connections. Keep the
//   transport for the life of the process (across Lambda invocations) to reuse them.
// - send() may be called from several threads at once.
// - TLS peers are verified unless `insecure` says otherwise; `ca_file` replaces the system CAs
//   (both the CA file and the CA directory libcurl was built with).
// - Proxies come from the environment, as libcurl reads them (http_proxy, HTTPS_PROXY,
//   https_proxy, ALL_PROXY, NO_PROXY, no_proxy), plus upper-case HTTP_PROXY, which libcurl
//   ignores on purpose (CGI "httpoxy") and the AWS SDKs honour: it is used here unless
//   REQUEST_METHOD says this is a CGI program. The credential endpoints' transport
//   (make_metadata_transport) uses none.
// - Failures come back as http::result values whose messages never hold a password, a secret
//   key, a session token or an Authorization header.
#pragma once

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <curl/curl.h>
#include <zlib.h>

#include "../config.hpp"
#include "../credentials.hpp"
#include "../credentials_http.hpp"
#include "../detail/base64.hpp"
#include "../error.hpp"
#include "../http.hpp"
#include "../sigv4.hpp"

DDB2OS_BEGIN_NAMESPACE

// How requests prove who sends them.
class authentication {
public:
    enum class kind : unsigned char { none, basic, sigv4 };

    // Local or open clusters.
    static authentication none() { return authentication(); }
    // Self-managed OpenSearch (the security plugin's internal users). Sent only to the
    // transport's endpoint, never to an absolute-URL target on another origin.
    static authentication basic(std::string username, std::string password) {
        authentication a;
        a.kind_ = kind::basic;
        a.username_ = std::move(username);
        a.password_ = std::move(password);
        return a;
    }
    // AWS Signature Version 4: service "es" (managed domains), "aoss" (serverless) or, for
    // absolute-URL targets, another AWS service ("dynamodb"). Every request is signed with the
    // credentials `provider` gives at that moment: give it a refreshing_credentials.
    static authentication sigv4(std::string service, std::string region,
                                std::shared_ptr<credentials_provider> provider) {
        if (service.empty()) throw error("transport.bad_option", "SigV4 service is empty");
        if (region.empty()) throw error("transport.bad_option", "SigV4 region is empty");
        if (!provider) throw error("transport.bad_option", "SigV4 credentials provider is null");
        authentication a;
        a.kind_ = kind::sigv4;
        a.service_ = std::move(service);
        a.region_ = std::move(region);
        a.provider_ = std::move(provider);
        return a;
    }
    // Not owned: `provider` must outlive every transport using it.
    static authentication sigv4(std::string service, std::string region, credentials_provider& provider) {
        return sigv4(std::move(service), std::move(region),
                     std::shared_ptr<credentials_provider>(std::shared_ptr<void>(), &provider));
    }

    kind type() const noexcept { return kind_; }
    const std::string& username() const noexcept { return username_; }
    const std::string& service() const noexcept { return service_; }
    const std::string& region() const noexcept { return region_; }

private:
    friend class curl_transport;
    kind kind_ = kind::none;
    std::string username_, password_, service_, region_;
    std::shared_ptr<credentials_provider> provider_;
};

struct curl_options {
    std::chrono::milliseconds connect_timeout{10000};
    // For the whole of one request; the deadline given to send() bounds it too.
    std::chrono::milliseconds timeout{60000};
    // PEM file of the CAs to trust instead of the system's.
    std::string ca_file;
    // Proxies from the environment (see the top of this file); off: every request goes direct.
    bool environment_proxies = true;
    // Skips certificate and host name verification. For tests against self-signed clusters only.
    bool insecure = false;
    // Compresses request bodies of at least gzip_min_bytes (Content-Encoding: gzip); SigV4 then
    // signs the compressed bytes. Not done when the request already sets Content-Encoding.
    bool gzip = false;
    std::size_t gzip_min_bytes = 1024;
    authentication auth = authentication::none();
    std::string user_agent = std::string("ddb2os/") + version_string;
};

namespace detail {

// curl_global_init once per process, thread-safely (a function-local static); never cleaned
// up, since other code in the process may still use libcurl.
inline CURLcode curl_global() {
    static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    return rc;
}

// RFC 1952 gzip of `in`. Throws transport.gzip if zlib fails (out of memory).
inline std::string gzip_compress(std::string_view in, int level = Z_DEFAULT_COMPRESSION) {
    z_stream zs{};
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw error("transport.gzip", "cannot initialise zlib");
    std::string out;
    out.resize(deflateBound(&zs, static_cast<uLong>(std::min<std::size_t>(in.size(), ULONG_MAX))) + 64);
    std::size_t produced = 0;
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        if (zs.avail_in == 0 && !in.empty()) {
            const std::size_t n = std::min<std::size_t>(in.size(), UINT_MAX);
            zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
            zs.avail_in = static_cast<uInt>(n);
            in.remove_prefix(n);
        }
        if (produced == out.size()) out.resize(out.size() * 2);
        const std::size_t room = std::min<std::size_t>(out.size() - produced, UINT_MAX);
        zs.next_out = reinterpret_cast<Bytef*>(&out[produced]);
        zs.avail_out = static_cast<uInt>(room);
        rc = deflate(&zs, in.empty() ? Z_FINISH : Z_NO_FLUSH);
        produced += room - zs.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
            deflateEnd(&zs);
            throw error("transport.gzip", "zlib failed to compress the request body");
        }
    }
    deflateEnd(&zs);
    out.resize(produced);
    return out;
}

// Replaces every occurrence of each secret in `text` with ****. Defence in depth: libcurl's
// messages name hosts and ports, but a proxy URL from the environment may carry a password.
inline std::string scrub(std::string text, const std::vector<std::string>& secrets) {
    for (const std::string& s : secrets) {
        if (s.size() < 4) continue;  // too short to be a secret, and would mangle the text
        for (std::size_t at = text.find(s); at != std::string::npos; at = text.find(s, at + 4))
            text.replace(at, s.size(), "****");
    }
    // userinfo in any URL the message quotes: scheme://user:password@host
    for (std::size_t at = text.find("://"); at != std::string::npos; at = text.find("://", at + 3)) {
        const std::size_t start = at + 3;
        const std::size_t end = text.find_first_of("/ \t\r\n\"'", start);
        const std::size_t amp = text.find('@', start);
        if (amp != std::string::npos && (end == std::string::npos || amp < end)) text.replace(start, amp - start, "****");
    }
    return text;
}

// An AWS answer refusing the session token (ExpiredToken, ExpiredTokenException, "The security
// token included in the request is expired" or "... is invalid").
inline bool says_token_rejected(std::string_view body) noexcept {
    return body.find("ExpiredToken") != std::string_view::npos ||
           body.find("security token included in the request is expired") != std::string_view::npos ||
           body.find("security token included in the request is invalid") != std::string_view::npos;
}

inline http::error_kind curl_error_kind(CURLcode rc) noexcept {
    switch (rc) {
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT: return http::error_kind::connect;
        case CURLE_OPERATION_TIMEDOUT: return http::error_kind::timeout;
        // A handshake that fails is mostly a connection reset or closed during it: retried as one.
        // (A certificate that fails verification has its own code, below.)
        case CURLE_SSL_CONNECT_ERROR: return http::error_kind::send_receive;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_SSL_SHUTDOWN_FAILED:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
#if LIBCURL_VERSION_NUM >= 0x074900
        case CURLE_SSL_CLIENTCERT:
#endif
        case CURLE_USE_SSL_FAILED: return http::error_kind::tls;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_BAD_CONTENT_ENCODING:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM: return http::error_kind::send_receive;
        default: return http::error_kind::other;
    }
}

inline bool starts_with_icase(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// A header name (or a method) is an HTTP token; a value holds no line break or NUL (header injection).
inline bool valid_header(const http::header& h) noexcept {
    if (h.name.empty()) return false;
    for (const char c : h.name)
        if (!sigv4::detail::is_token_char(static_cast<unsigned char>(c))) return false;
    return h.value.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos;
}

}  // namespace detail

class curl_transport final : public http::transport {
public:
    using options = curl_options;

    // `endpoint` is "https://host[:port]" or "http://host[:port]" (a trailing '/' is allowed), or
    // empty for a transport that only sends absolute-URL targets (metadata endpoints, DynamoDB).
    // Throws transport.bad_endpoint, transport.bad_option or transport.init.
    explicit curl_transport(std::string endpoint, options o = {}) : opts_(std::move(o)) {
        if (detail::curl_global() != CURLE_OK)
            throw error("transport.init", "curl_global_init failed");
        if (!endpoint.empty()) set_endpoint(std::move(endpoint));
        if (opts_.connect_timeout.count() <= 0 || opts_.timeout.count() <= 0)
            throw error("transport.bad_option", "timeouts must be positive");
        if (opts_.auth.kind_ == authentication::kind::basic && origin_.empty())
            throw error("transport.bad_option", "basic authentication needs an endpoint");
        if (opts_.auth.kind_ == authentication::kind::basic) {
            secrets_.push_back(opts_.auth.password_);
            std::string up = opts_.auth.username_ + ":" + opts_.auth.password_;
            std::string b64;
            detail::base64_encode(b64, reinterpret_cast<const unsigned char*>(up.data()), up.size());
            secrets_.push_back(std::move(b64));
        }
    }

    curl_transport(const curl_transport&) = delete;
    curl_transport& operator=(const curl_transport&) = delete;

    ~curl_transport() override {
        for (CURL* h : idle_) curl_easy_cleanup(h);
    }

    // "scheme://host[:port]", or empty.
    const std::string& endpoint() const noexcept { return origin_; }

    // Connections opened so far (each reuse of a kept-alive one opens none).
    std::uint64_t connections_opened() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return connections_opened_;
    }

    http::result send(const http::request& req, http::clock::time_point deadline) override {
        http::result out;
        const http::clock::time_point now = http::clock::now();
        if (deadline <= now) return fail(out, http::error_kind::timeout, "the deadline passed before sending");

        if (!detail::valid_header({req.method, {}}))
            return fail(out, http::error_kind::other, "the method is not an HTTP token");

        // The URL, and the Host header signed and sent (the signer's rule: lower-case host, port
        // only if not the scheme's default).
        std::string url;
        if (!req.target.empty() && req.target.front() == '/') {
            if (origin_.empty())
                return fail(out, http::error_kind::other, "target is a path but the transport has no endpoint");
            url = origin_ + req.target;
        } else if (detail::starts_with_icase(req.target, "http://") || detail::starts_with_icase(req.target, "https://")) {
            url = req.target;
        } else {
            return fail(out, http::error_kind::other, "target is neither a path starting with '/' nor an http(s) URL");
        }
        url = detail::encode_unsafe_url_bytes(std::move(url));
        detail::url_parts parts;
        try {
            parts = detail::split_url(url);
        } catch (const error& e) {
            return fail(out, http::error_kind::other, e.message());
        }
        const std::string host = detail::host_header_value(parts);
        const std::string scheme = lower(parts.scheme);
        // What messages call the request: no query (it may carry a presigned secret), no userinfo.
        const std::string what = req.method + " " + scheme + "://" + host + std::string(parts.path) + ": ";
        const bool same_origin = !origin_.empty() && scheme == origin_scheme_ && host == origin_host_;

        std::vector<http::header> headers;
        headers.reserve(req.headers.size() + 8);
        bool has_host = false, has_content_type = false, has_content_encoding = false;
        for (const http::header& h : req.headers) {
            if (!detail::valid_header(h))
                return fail(out, http::error_kind::other, what + "a header name is not a token or a value holds a line break");
            // libcurl computes these from the body it sends.
            if (detail::iequals(h.name, "content-length") || detail::iequals(h.name, "transfer-encoding")) continue;
            has_host = has_host || detail::iequals(h.name, "host");
            has_content_type = has_content_type || detail::iequals(h.name, "content-type");
            has_content_encoding = has_content_encoding || detail::iequals(h.name, "content-encoding");
            headers.push_back(h);
        }
        if (!has_host) headers.insert(headers.begin(), http::header{"Host", host});

        const std::string* body = &req.body;
        std::string compressed;
        if (opts_.gzip && !has_content_encoding && !req.body.empty() && req.body.size() >= opts_.gzip_min_bytes) {
            try {
                compressed = detail::gzip_compress(req.body);
            } catch (const error& e) {
                return fail(out, http::error_kind::other, what + e.message());
            }
            body = &compressed;
            headers.push_back({"Content-Encoding", "gzip"});
        }

        std::vector<std::string> secrets = secrets_;
        if (opts_.auth.kind_ == authentication::kind::sigv4) {
            std::optional<credentials> creds;
            try {
                creds = opts_.auth.provider_->load(deadline);  // a fetch over the network stops at the request's deadline
            } catch (const error& e) {
                return fail(out, http::error_kind::credentials, e.message());
            }
            secrets.push_back(creds->secret_access_key());
            if (creds->has_session_token()) secrets.push_back(creds->session_token());
            sigv4::signing_result signed_;
            try {
                sigv4::request sr;
                sr.method = req.method;
                sr.url = url;
                sr.headers.reserve(headers.size());
                for (const http::header& h : headers) sr.headers.push_back({h.name, h.value});
                sr.body = sigv4::payload::bytes(*body);  // hashed once, inside sign()
                sigv4::signing_params p{opts_.auth.region_, opts_.auth.service_, std::chrono::system_clock::now(),
                                        sigv4::options::for_service(opts_.auth.service_)};
                signed_ = sigv4::sign(sr, *creds, p, &keys_);
            } catch (const error& e) {
                return fail(out, http::error_kind::other, what + e.message());
            }
            // The signer's headers replace any of the same name.
            headers.erase(std::remove_if(headers.begin(), headers.end(),
                                         [&](const http::header& h) {
                                             for (const sigv4::field& f : signed_.headers)
                                                 if (detail::iequals(h.name, f.name)) return true;
                                             return false;
                                         }),
                          headers.end());
            for (sigv4::field& f : signed_.headers) {
                // A line break in a session token or key id (a copied variable) would end the header and
                // start another: refused, never quoted.
                if (!detail::valid_header({f.name, f.value}))
                    return fail(out, http::error_kind::credentials,
                                what + "the credentials hold a control character (a line break?); their " + f.name +
                                    " header cannot be sent");
                headers.push_back({std::move(f.name), std::move(f.value)});
            }
        }

        std::vector<std::string> lines;
        lines.reserve(headers.size() + 2);
        for (const http::header& h : headers) {
            if (detail::iequals(h.name, "authorization")) secrets.push_back(h.value);
            // curl drops "Name: " with only blanks after it, and sends "Name;" as an empty header: the
            // signed one, whose canonical value is empty.
            const bool blank = h.value.find_first_not_of(" \t") == std::string::npos;
            lines.push_back(blank ? h.name + ";" : h.name + ": " + h.value);
        }
        lines.emplace_back("Expect:");  // no 100-continue round trip before large bodies
        const bool sends_body = !(req.method == "GET" && req.body.empty()) && req.method != "HEAD";
        if (sends_body && !has_content_type) lines.emplace_back("Content-Type:");  // not curl's form default

        handle h(*this);
        if (h.get() == nullptr) return fail(out, http::error_kind::other, what + "curl_easy_init failed");
        slist list;
        for (const std::string& l : lines)
            if (!list.append(l)) return fail(out, http::error_kind::other, what + "out of memory");

        CURL* c = h.get();
        curl_easy_reset(c);  // keeps the live connections, drops every option
        char errbuf[CURL_ERROR_SIZE] = {};
        receiver rx{out.res};
        // Read again here: loading credentials (a container or instance-metadata call) and
        // compressing a large body take time.
        const http::clock::time_point before = http::clock::now();
        if (deadline <= before)
            return fail(out, http::error_kind::timeout,
                        what + "the deadline passed while the request was prepared (credentials, signing, gzip)");
        const auto remaining = std::chrono::ceil<std::chrono::milliseconds>(deadline - before);
        const long total_ms = static_cast<long>(std::max<long long>(
            1, std::min<long long>(opts_.timeout.count(), static_cast<long long>(remaining.count()))));
        const long connect_ms = std::min<long>(static_cast<long>(opts_.connect_timeout.count()), total_ms);
        bool ok = set(c, CURLOPT_URL, url.c_str()) && set(c, CURLOPT_ERRORBUFFER, errbuf) &&
                  set(c, CURLOPT_NOSIGNAL, 1L) && set(c, CURLOPT_PATH_AS_IS, 1L) &&
                  set(c, CURLOPT_TIMEOUT_MS, total_ms) && set(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms) &&
                  set(c, CURLOPT_TCP_KEEPALIVE, 1L) && set(c, CURLOPT_HTTPHEADER, list.get()) &&
                  set(c, CURLOPT_WRITEFUNCTION, &receiver::on_body) && set(c, CURLOPT_WRITEDATA, &rx) &&
                  set(c, CURLOPT_HEADERFUNCTION, &receiver::on_header) && set(c, CURLOPT_HEADERDATA, &rx) &&
                  set(c, CURLOPT_ACCEPT_ENCODING, "") && allow_http_only(c);
        if (ok && !opts_.user_agent.empty()) ok = set(c, CURLOPT_USERAGENT, opts_.user_agent.c_str());
        if (ok && opts_.insecure) ok = set(c, CURLOPT_SSL_VERIFYPEER, 0L) && set(c, CURLOPT_SSL_VERIFYHOST, 0L);
        // Instead of the system's CAs, so also without the CA directory a distribution's libcurl
        // is built with (Debian's: /etc/ssl/certs), which CAINFO alone leaves trusted.
        if (ok && !opts_.ca_file.empty()) {
            ok = set(c, CURLOPT_CAINFO, opts_.ca_file.c_str());
            // A TLS backend without a CA directory (Schannel, Secure Transport) refuses the option.
            const CURLcode rc = curl_easy_setopt(c, CURLOPT_CAPATH, static_cast<char*>(nullptr));
            ok = ok && (rc == CURLE_OK || rc == CURLE_NOT_BUILT_IN || rc == CURLE_UNKNOWN_OPTION);
        }
        if (ok && opts_.auth.kind_ == authentication::kind::basic && same_origin)
            ok = set(c, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC)) &&
                 set(c, CURLOPT_USERNAME, opts_.auth.username_.c_str()) &&
                 set(c, CURLOPT_PASSWORD, opts_.auth.password_.c_str());
        const std::string proxy =
            scheme == "http" && opts_.environment_proxies ? upper_case_http_proxy() : std::string();
        if (ok && !proxy.empty()) ok = set(c, CURLOPT_PROXY, proxy.c_str());
        if (ok && !opts_.environment_proxies) ok = set(c, CURLOPT_NOPROXY, "*");
        if (ok) {
            if (req.method == "HEAD") {
                ok = set(c, CURLOPT_NOBODY, 1L);
            } else if (!sends_body) {
                ok = set(c, CURLOPT_HTTPGET, 1L);
            } else {
                ok = set(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size())) &&
                     set(c, CURLOPT_POSTFIELDS, body->data()) && set(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
            }
        }
        if (!ok) return fail(out, http::error_kind::other, what + "libcurl refused an option");

        const CURLcode rc = curl_easy_perform(c);
        long connects = 0;
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
        h.count_connections(connects);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, static_cast<char*>(nullptr));
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
        if (rc != CURLE_OK) {
            out.res = http::response{};
            std::string msg = what + curl_easy_strerror(rc);
            if (errbuf[0] != '\0') msg += std::string(" (") + errbuf + ")";
            http::error_kind kind = detail::curl_error_kind(rc);
            // A handshake answered in plain HTTP (https:// to an http port) fails the same way every
            // time: a TLS failure (tried three times), not a reset retried until the deadline.
            if (rc == CURLE_SSL_CONNECT_ERROR && std::strstr(errbuf, "wrong version number") != nullptr)
                kind = http::error_kind::tls;
            return fail(out, kind, detail::scrub(std::move(msg), secrets));
        }
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.res.status);
        // An error answer is quoted in reasons and logs, and a proxy or gateway may echo the request's
        // headers in it (Authorization, X-Amz-Security-Token). Successful answers are not read that way.
        if (out.res.status < 200 || out.res.status >= 300) out.res.body = detail::scrub(std::move(out.res.body), secrets);
        // Credentials the service calls expired or invalid are dropped from the cache, so the next
        // request (the batch's retry) fetches new ones instead of signing with them until their
        // refresh window: this request itself is answered as it was.
        // (DynamoDB answers ExpiredTokenException with 400, OpenSearch Service with 403.)
        if (opts_.auth.kind_ == authentication::kind::sigv4 && out.res.status >= 400 && out.res.status <= 403 &&
            detail::says_token_rejected(out.res.body))
            opts_.auth.provider_->invalidate();
        return out;
    }

private:
    // Collects the final response's headers and body (interim 1xx and proxy CONNECT responses
    // are dropped when the next status line arrives).
    struct receiver {
        http::response& res;

        static std::size_t on_body(char* p, std::size_t size, std::size_t n, void* self) {
            static_cast<receiver*>(self)->res.body.append(p, size * n);
            return size * n;
        }
        static std::size_t on_header(char* p, std::size_t size, std::size_t n, void* self) {
            http::response& res = static_cast<receiver*>(self)->res;
            std::string_view line(p, size * n);
            while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
            if (line.substr(0, 5) == "HTTP/") {
                res.headers.clear();
            } else if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
                if (!res.headers.empty()) {  // obsolete line folding
                    res.headers.back().value += ' ';
                    res.headers.back().value.append(detail::trim(line));
                }
            } else if (const std::size_t colon = line.find(':'); colon != std::string_view::npos) {
                res.headers.push_back({std::string(line.substr(0, colon)), std::string(detail::trim(line.substr(colon + 1)))});
            }
            return size * n;
        }
    };

    // An easy handle borrowed from the pool for one send.
    class handle {
    public:
        explicit handle(curl_transport& t) : t_(t) {
            {
                const std::lock_guard<std::mutex> lock(t_.mutex_);
                if (!t_.idle_.empty()) {
                    h_ = t_.idle_.back();
                    t_.idle_.pop_back();
                }
            }
            if (h_ == nullptr) h_ = curl_easy_init();
        }
        ~handle() {
            if (h_ == nullptr) return;
            const std::lock_guard<std::mutex> lock(t_.mutex_);
            t_.idle_.push_back(h_);
        }
        handle(const handle&) = delete;
        handle& operator=(const handle&) = delete;
        CURL* get() const noexcept { return h_; }
        void count_connections(long n) {
            const std::lock_guard<std::mutex> lock(t_.mutex_);
            t_.connections_opened_ += static_cast<std::uint64_t>(n < 0 ? 0 : n);
        }

    private:
        curl_transport& t_;
        CURL* h_ = nullptr;
    };

    class slist {
    public:
        slist() = default;
        ~slist() { curl_slist_free_all(list_); }
        slist(const slist&) = delete;
        slist& operator=(const slist&) = delete;
        bool append(const std::string& line) {
            curl_slist* next = curl_slist_append(list_, line.c_str());
            if (next == nullptr) return false;
            list_ = next;
            return true;
        }
        curl_slist* get() const noexcept { return list_; }

    private:
        curl_slist* list_ = nullptr;
    };

    template <class T>
    static bool set(CURL* c, CURLoption o, T value) noexcept {
        return curl_easy_setopt(c, o, value) == CURLE_OK;
    }

    static bool allow_http_only(CURL* c) noexcept {
#if LIBCURL_VERSION_NUM >= 0x075500
        return set(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        return set(c, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    }

    static http::result& fail(http::result& r, http::error_kind kind, std::string message) {
        r.error = kind;
        r.message = std::move(message);
        return r;
    }

    static std::string lower(std::string_view s) {
        std::string out(s);
        for (char& c : out) c = detail::ascii_lower(c);
        return out;
    }

    // HTTP_PROXY when libcurl would not look at it: http_proxy unset, and not a CGI program.
    // NO_PROXY still applies (libcurl checks it against any proxy).
    static std::string upper_case_http_proxy() {
        const char* lower_case = std::getenv("http_proxy");
        const char* upper_case = std::getenv("HTTP_PROXY");
        if ((lower_case != nullptr && *lower_case != '\0') || upper_case == nullptr || std::getenv("REQUEST_METHOD") != nullptr)
            return {};
        return upper_case;
    }

    void set_endpoint(std::string endpoint) {
        while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
        detail::url_parts parts;
        try {
            parts = detail::split_url(endpoint);
        } catch (const error&) {
            throw error("transport.bad_endpoint", "endpoint is not scheme://host[:port]");
        }
        const std::string scheme = lower(parts.scheme);
        if (scheme != "http" && scheme != "https")
            throw error("transport.bad_endpoint", "endpoint scheme must be http or https");
        if (!parts.path.empty() || !parts.query.empty() || endpoint.find_first_of("@#") != std::string::npos)
            throw error("transport.bad_endpoint", "endpoint must be scheme://host[:port], without user, path or query");
        origin_scheme_ = scheme;
        origin_host_ = detail::host_header_value(parts);
        origin_ = scheme + "://" + std::string(endpoint.substr(endpoint.find("://") + 3));
    }

    options opts_;
    std::string origin_, origin_scheme_, origin_host_;
    std::vector<std::string> secrets_;  // what messages must never show
    sigv4::signing_key_cache keys_;
    mutable std::mutex mutex_;
    std::vector<CURL*> idle_;
    std::uint64_t connections_opened_ = 0;
};

// A transport for the credential endpoints (container, EC2 instance metadata): no endpoint,
// no authentication, short connect timeout, and no proxy, as the AWS SDKs' container fetchers:
// the endpoints are link-local or loopback addresses of this host (or a full URI given for the
// purpose), a proxy would be sent the container's authorization token, and a proxy's own
// instance metadata would answer with its host's credentials.
inline std::shared_ptr<http::transport> make_metadata_transport() {
    curl_options o;
    o.environment_proxies = false;
    o.connect_timeout = std::chrono::milliseconds(1000);
    o.timeout = std::chrono::milliseconds(5000);
    return std::make_shared<curl_transport>(std::string(), std::move(o));
}

// The AWS SDKs' default credentials (environment, shared files, container endpoint, EC2
// instance metadata), cached and refreshed before they expire, fetched with libcurl.
inline std::shared_ptr<credentials_provider> default_aws_credentials(environment env = process_environment()) {
    return default_credentials_provider(make_metadata_transport(), std::move(env));
}

DDB2OS_END_NAMESPACE
