// credentials_http.hpp: credentials fetched over HTTP, through any http::transport (libcurl's in
// transport/curl.hpp, or a test's):
// - container_credentials: the container endpoint (ECS task roles, EKS Pod Identity, ...),
// - imds_credentials: EC2 instance metadata, IMDSv2 only (a session token first),
// - refreshing_credentials: a thread-safe cache that refreshes before `Expiration`,
// - default_credentials_chain(transport, env): the AWS SDKs' order, environment -> shared files
//   -> container -> instance metadata, and default_credentials_provider() with the cache on top.
//
// As in credentials.hpp, messages never hold a secret key, a session token, an authorization
// token or a response body.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "config.hpp"
#include "credentials.hpp"
#include "detail/uri.hpp"
#include "detail/utc_time.hpp"
#include "error.hpp"
#include "http.hpp"
#include "sigv4.hpp"

DDB2OS_BEGIN_NAMESPACE

namespace detail {

// "2024-05-01T12:34:56Z", with optional fractional seconds (dropped) and a Z or +hh:mm / -hh:mm
// offset. nullopt when it is not such a time.
inline std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view s) {
    std::size_t at = 0;
    const auto digits = [&](std::size_t n, int& value) {
        if (at + n > s.size()) return false;
        value = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const char c = s[at + i];
            if (c < '0' || c > '9') return false;
            value = value * 10 + (c - '0');
        }
        at += n;
        return true;
    };
    const auto lit = [&](char c) {
        if (at >= s.size() || (s[at] != c && !(c == 'T' && s[at] == 't'))) return false;
        ++at;
        return true;
    };
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    if (!(digits(4, y) && lit('-') && digits(2, mo) && lit('-') && digits(2, d) && lit('T') && digits(2, h) &&
          lit(':') && digits(2, mi) && lit(':') && digits(2, sec)))
        return std::nullopt;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
    if (at < s.size() && s[at] == '.') {
        ++at;
        const std::size_t start = at;
        while (at < s.size() && s[at] >= '0' && s[at] <= '9') ++at;
        if (at == start) return std::nullopt;
    }
    long offset = 0;
    if (at < s.size() && (s[at] == 'Z' || s[at] == 'z')) {
        ++at;
    } else if (at < s.size() && (s[at] == '+' || s[at] == '-')) {
        const long sign = s[at] == '-' ? -1 : 1;
        ++at;
        int oh = 0, om = 0;
        if (!digits(2, oh)) return std::nullopt;
        if (at < s.size() && s[at] == ':') ++at;
        if (!digits(2, om) || oh > 23 || om > 59) return std::nullopt;
        offset = sign * (oh * 3600L + om * 60L);
    } else {
        return std::nullopt;
    }
    if (at != s.size()) return std::nullopt;
    const std::int64_t days = sigv4::detail::days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
    const std::int64_t epoch = days * 86400 + h * 3600 + mi * 60 + sec - offset;
    // system_clock counts nanoseconds here (years 1678-2261): a time past its range is clamped a day
    // inside it rather than overflowed (a far-future Expiration, as a custom credentials server may
    // send, means no expiry), leaving room for the refresh window's arithmetic.
    using std::chrono::system_clock;
    constexpr std::int64_t day = 86400;
    const std::int64_t most = std::chrono::duration_cast<std::chrono::seconds>(system_clock::time_point::max().time_since_epoch()).count() - day;
    const std::int64_t least = std::chrono::duration_cast<std::chrono::seconds>(system_clock::time_point::min().time_since_epoch()).count() + day;
    return system_clock::time_point(std::chrono::seconds(epoch > most ? most : epoch < least ? least : epoch));
}

// The AWS credentials document both endpoints return:
// {"Code": "Success", "AccessKeyId": ..., "SecretAccessKey": ..., "Token": ..., "Expiration": ...}
inline credentials parse_credentials_document(std::string_view body, const std::string& where) {
    const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        throw error("credentials.bad_response", where + " did not return a JSON object");
    const auto text = [&](const char* key, bool required) -> std::string {
        const auto it = j.find(key);
        if (it == j.end() || it->is_null() || (it->is_string() && it->get_ref<const std::string&>().empty())) {
            if (required) throw error("credentials.bad_response", where + " returned no " + key);
            return {};
        }
        if (!it->is_string()) throw error("credentials.bad_response", where + " returned a " + key + " that is not a string");
        return it->get<std::string>();
    };
    const std::string code = text("Code", false);
    if (!code.empty() && code != "Success") {
        // The code is not secret, but it is the server's text: quote it only when short and plain.
        const bool plain = code.size() <= 64 && std::all_of(code.begin(), code.end(), [](char c) {
                               return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
                           });
        throw error("credentials.bad_response", where + " returned Code " + (plain ? "\"" + code + "\"" : "other than Success"));
    }
    std::string id = text("AccessKeyId", true);
    std::string secret = text("SecretAccessKey", true);
    std::string token = text("Token", false);
    const std::string expiration = text("Expiration", false);
    std::optional<credentials::time_point> expires;
    if (!expiration.empty()) {
        expires = parse_iso8601(expiration);
        if (!expires) throw error("credentials.bad_response", where + " returned an Expiration that is not an ISO-8601 time");
    }
    return credentials(std::move(id), std::move(secret), std::move(token), expires);
}

// Sends `req` up to `attempts` times while the network fails or the server answers 5xx, each
// attempt given `timeout`, none past `deadline` (the request's that wanted the credentials).
inline http::result fetch(http::transport& t, const http::request& req, std::chrono::milliseconds timeout,
                          int attempts, http::clock::time_point deadline) {
    http::result r;
    for (int i = 0; i < std::max(1, attempts); ++i) {
        const http::clock::time_point now = http::clock::now();
        if (i > 0 && now >= deadline) break;
        r = t.send(req, std::min(now + timeout, deadline));
        if (r && r.res.status < 500) break;
    }
    return r;
}

inline bool is_loopback_or_container_host(std::string_view host) {
    if (iequals(host, "localhost") || host == "[::1]") return true;
    if (host == "169.254.170.2" || host == "169.254.170.23" || iequals(host, "[fd00:ec2::23]")) return true;
    if (host.substr(0, 4) != "127.") return false;  // 127.0.0.0/8, written as an address
    return std::all_of(host.begin(), host.end(), [](char c) { return c == '.' || (c >= '0' && c <= '9'); });
}

}  // namespace detail

struct container_credentials_options {
    std::chrono::milliseconds timeout{2000};  // per attempt
    int attempts = 3;
    // Where AWS_CONTAINER_CREDENTIALS_RELATIVE_URI points (the ECS agent); tests change it.
    std::string relative_uri_host = "http://169.254.170.2";
};

// The container endpoint: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (against 169.254.170.2), else
// AWS_CONTAINER_CREDENTIALS_FULL_URI, which must be https or http to a loopback or container-host
// address (as the SDKs require). The token for the Authorization header is read from
// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE at each fetch (EKS rotates it), else taken from
// AWS_CONTAINER_AUTHORIZATION_TOKEN. Configured but failing is an error, not "not found".
class container_credentials final : public credentials_provider {
public:
    explicit container_credentials(std::shared_ptr<http::transport> transport, environment env = process_environment(),
                                   container_credentials_options o = {})
        : transport_(std::move(transport)), env_(std::move(env)), opts_(std::move(o)) {
        if (!transport_) throw error("credentials.bad_option", "container credentials need a transport");
    }

    credentials_lookup lookup() override { return lookup_within(http::clock::time_point::max()); }
    credentials_lookup lookup_within(http::clock::time_point deadline) override {
        credentials_lookup r;
        const std::optional<std::string> relative = detail::env_value(env_, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
        const std::optional<std::string> full = detail::env_value(env_, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
        if (!relative && !full) {
            r.tried = "container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI not set)";
            return r;
        }
        http::request req;
        req.method = "GET";
        std::string where = "container credentials endpoint (";
        if (relative) {
            if (relative->front() != '/')
                throw error("credentials.bad_container_uri", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI does not start with '/'");
            req.target = opts_.relative_uri_host + *relative;
            where += "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)";
        } else {
            check_full_uri(*full);
            req.target = *full;
            where += "AWS_CONTAINER_CREDENTIALS_FULL_URI)";
        }
        req.headers.push_back({"Accept", "application/json"});
        if (std::optional<std::string> token = authorization_token()) req.headers.push_back({"Authorization", std::move(*token)});
        const http::result res = detail::fetch(*transport_, req, opts_.timeout, opts_.attempts, deadline);
        if (!res) throw error("credentials.unreachable", where + " failed: " + without_request(res.message));
        if (res.res.status != 200)
            throw error("credentials.refused", where + " answered HTTP " + std::to_string(res.res.status));
        r.found = detail::parse_credentials_document(res.res.body, where);
        return r;
    }

private:
    // The transport's message names the request ("GET http://169.254.170.2/v2/credentials/<id>: ...");
    // the relative URI's path is a bearer name for the task's credentials to anything on the
    // endpoint's network, so only what went wrong is kept (a URL holds no space, so its ": " ends it).
    static std::string without_request(const std::string& message) {
        const std::size_t at = message.find(": ");
        return message.rfind("GET ", 0) == 0 && at != std::string::npos ? message.substr(at + 2) : message;
    }

    static void check_full_uri(const std::string& uri) {
        // The URI is never quoted: its query or userinfo may carry secrets.
        detail::url_parts parts;
        try {
            parts = detail::split_url(uri);
        } catch (const error&) {
            throw error("credentials.bad_container_uri", "AWS_CONTAINER_CREDENTIALS_FULL_URI is not an absolute URL with a host");
        }
        if (detail::iequals(parts.scheme, "https")) return;
        if (detail::iequals(parts.scheme, "http") && detail::is_loopback_or_container_host(parts.host)) return;
        throw error("credentials.bad_container_uri",
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback address or the "
                    "container host (169.254.170.2, 169.254.170.23, fd00:ec2::23)");
    }

    std::optional<std::string> authorization_token() const {
        std::string token;
        const char* from = nullptr;
        if (std::optional<std::string> file = detail::env_value(env_, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) {
            std::optional<std::string> text =
                detail::read_optional_file(*file, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
            if (!text) throw error("credentials.unreadable", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE names no file");
            token.assign(detail::trim(*text));
            from = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
        } else if (std::optional<std::string> value = detail::env_value(env_, "AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
            token.assign(detail::trim(*value));
            from = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
        } else {
            return std::nullopt;
        }
        if (token.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
            throw error("credentials.bad_token", std::string(from) + " holds a line break");
        if (token.empty()) return std::nullopt;
        return token;
    }

    std::shared_ptr<http::transport> transport_;
    environment env_;
    container_credentials_options opts_;
};

struct imds_credentials_options {
    std::chrono::milliseconds timeout{1000};  // per attempt, as botocore
    int attempts = 1;
    std::chrono::seconds token_ttl{21600};
};

// EC2 instance metadata, IMDSv2: PUT /latest/api/token, then the role name and its credentials.
// The endpoint is AWS_EC2_METADATA_SERVICE_ENDPOINT, else by AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE
// (IPv4: http://169.254.169.254, IPv6: http://[fd00:ec2::254]). AWS_EC2_METADATA_DISABLED=true
// turns it off. Not reachable, or no role: nothing found (most machines are not EC2 instances);
// a role whose credentials cannot be read: an error. No IMDSv1 fallback.
class imds_credentials final : public credentials_provider {
public:
    explicit imds_credentials(std::shared_ptr<http::transport> transport, environment env = process_environment(),
                              imds_credentials_options o = {})
        : transport_(std::move(transport)), env_(std::move(env)), opts_(o) {
        if (!transport_) throw error("credentials.bad_option", "instance metadata credentials need a transport");
    }

    credentials_lookup lookup() override { return lookup_within(http::clock::time_point::max()); }
    credentials_lookup lookup_within(http::clock::time_point deadline) override {
        credentials_lookup r;
        if (const std::optional<std::string> off = detail::env_value(env_, "AWS_EC2_METADATA_DISABLED");
            off && detail::iequals(detail::trim(*off), "true")) {
            r.tried = "EC2 instance metadata (disabled by AWS_EC2_METADATA_DISABLED)";
            return r;
        }
        const std::string base = endpoint();
        const std::string where = "EC2 instance metadata at " + base;

        http::request put{"PUT", base + "/latest/api/token",
                          {{"X-aws-ec2-metadata-token-ttl-seconds", std::to_string(opts_.token_ttl.count())}},
                          {}};
        const http::result t = detail::fetch(*transport_, put, opts_.timeout, opts_.attempts, deadline);
        if (!t) return not_found(r, where + " (token request failed: " + t.message + ")");
        if (t.res.status != 200) return not_found(r, where + " (token request answered HTTP " + std::to_string(t.res.status) + ")");
        const std::string token(detail::trim(t.res.body));
        if (token.empty() || token.find_first_of("\r\n") != std::string::npos)
            return not_found(r, where + " (token request returned no usable token)");

        http::request get{"GET", base + "/latest/meta-data/iam/security-credentials/",
                          {{"X-aws-ec2-metadata-token", token}}, {}};
        const http::result roles = detail::fetch(*transport_, get, opts_.timeout, opts_.attempts, deadline);
        if (!roles) return not_found(r, where + " (role request failed: " + roles.message + ")");
        if (roles.res.status == 404) return not_found(r, where + " (no IAM role attached to the instance)");
        if (roles.res.status != 200)
            return not_found(r, where + " (role request answered HTTP " + std::to_string(roles.res.status) + ")");
        const std::string_view list = roles.res.body;
        const std::string role(detail::trim(list.substr(0, list.find('\n'))));
        if (role.empty()) return not_found(r, where + " (no IAM role attached to the instance)");
        // IAM role names: letters, digits and +=,.@_- (anything else would change the path).
        const bool valid = std::all_of(role.begin(), role.end(), [](char c) {
            return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   std::string_view("+=,.@_-").find(c) != std::string_view::npos;
        });
        if (!valid) throw error("credentials.bad_response", where + " returned a role name that is not an IAM name");

        const std::string what = where + " for role \"" + role + "\"";
        get.target += role;
        const http::result c = detail::fetch(*transport_, get, opts_.timeout, opts_.attempts, deadline);
        if (!c) throw error("credentials.unreachable", what + " failed: " + c.message);
        if (c.res.status != 200) throw error("credentials.refused", what + " answered HTTP " + std::to_string(c.res.status));
        r.found = detail::parse_credentials_document(c.res.body, what);
        return r;
    }

    // The base URL used, without a trailing '/'. Throws credentials.bad_imds_mode.
    std::string endpoint() const {
        if (std::optional<std::string> e = detail::env_value(env_, "AWS_EC2_METADATA_SERVICE_ENDPOINT")) {
            while (!e->empty() && e->back() == '/') e->pop_back();
            return *e;
        }
        const std::optional<std::string> mode = detail::env_value(env_, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
        if (!mode || detail::iequals(*mode, "IPv4")) return "http://169.254.169.254";
        if (detail::iequals(*mode, "IPv6")) return "http://[fd00:ec2::254]";
        throw error("credentials.bad_imds_mode", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE is neither IPv4 nor IPv6");
    }

private:
    static credentials_lookup& not_found(credentials_lookup& r, std::string why) {
        r.tried = std::move(why);
        return r;
    }

    std::shared_ptr<http::transport> transport_;
    environment env_;
    imds_credentials_options opts_;
};

// Caches what `source` finds. Credentials with an Expiration are refreshed `refresh_before` it;
// if the refresh fails, the cached ones are used while they still work, and the source is asked
// again at most every `retry_interval`. Credentials the source gives already past their Expiration
// (a clock that is wrong, a stale endpoint) are refused, as botocore refuses them: credentials.expired,
// thrown again without asking until `retry_interval` has passed (each signature asked the source
// again). Once the cached ones have expired, a failing source is asked at every lookup: a passing
// fault must not fail every request for the interval. Static credentials (no Expiration) are kept for good.
// Thread-safe: one thread refreshes; the others use the cached credentials meanwhile while they work,
// else wait for its result (lookup_within: until their deadline).
class refreshing_credentials final : public credentials_provider {
public:
    using time_point = std::chrono::system_clock::time_point;
    using clock_function = std::function<time_point()>;

    explicit refreshing_credentials(std::shared_ptr<credentials_provider> source,
                                    std::chrono::seconds refresh_before = std::chrono::minutes(5),
                                    clock_function now = {}, std::chrono::seconds retry_interval = std::chrono::seconds(30))
        : source_(std::move(source)),
          refresh_before_(refresh_before),
          retry_interval_(retry_interval),
          now_(now ? std::move(now) : clock_function([] { return std::chrono::system_clock::now(); })) {
        if (!source_) throw error("credentials.bad_option", "refreshing credentials need a source");
    }

    credentials_lookup lookup() override { return lookup_within(http::clock::time_point::max()); }
    // A thread that finds another fetching uses the cached credentials while they work, else waits
    // for its result until its own deadline only.
    credentials_lookup lookup_within(http::clock::time_point deadline) override {
        std::unique_lock<std::timed_mutex> lock(mutex_, std::try_to_lock);
        if (!lock.owns_lock()) {
            // Another thread is asking the source (a fetch can take seconds): the credentials cached
            // serve while they work, as botocore's do in its early-refresh window, instead of every
            // other request waiting for the fetch (and failing at its deadline while they worked).
            // Not in their last minute (or refresh_before, if shorter): a request signed with them could
            // expire on its way (a 5 MiB body), so the others wait for the fetch then.
            {
                const std::lock_guard<std::mutex> g(snapshot_mutex_);
                const std::chrono::seconds margin = std::min<std::chrono::seconds>(refresh_before_, std::chrono::seconds(60));
                if (snapshot_ && (!snapshot_->expiration() || now_() < *snapshot_->expiration() - margin))
                    return credentials_lookup{snapshot_, {}};
            }
            if (deadline == http::clock::time_point::max())
                lock.lock();
            else if (!lock.try_lock_until(deadline))
                throw error("credentials.unreachable", "the deadline passed while another thread was fetching the credentials");
        }
        const time_point t = now_();
        if (cached_) {
            const std::optional<time_point>& exp = cached_->expiration();
            if (!exp || t < *exp - refresh_before_) return hit();
            if (attempted_ && t < *attempted_ + retry_interval_ && t >= *attempted_) {
                if (t < *exp) return hit();
                if (failure_) throw *failure_;
            }
        }
        attempted_ = t;
        failure_.reset();
        ++refreshes_;
        credentials_lookup r;
        try {
            r = source_->lookup_within(deadline);
        } catch (const error&) {
            if (usable(t)) return hit();
            throw;
        }
        if (r.found) {
            const std::optional<time_point> exp = r.found->expiration();
            if (!exp || t < *exp) {
                set_cached(r.found);
                return r;
            }
            failure_ = error("credentials.expired",
                             "the credentials found expired at " + detail::iso8601_utc(*exp) +
                                 ", before they were fetched (this machine's clock says " + detail::iso8601_utc(t) +
                                 "): asked again after " + std::to_string(retry_interval_.count()) + " s");
            if (usable(t)) return hit();  // the cached ones still work: kept until then
            set_cached(r.found);
            throw *failure_;
        }
        if (usable(t)) return hit();
        set_cached(std::nullopt);
        return r;
    }

    // Drops the cache: the next lookup asks the source (after a server said "expired token").
    void invalidate() override {
        const std::lock_guard<std::timed_mutex> lock(mutex_);
        set_cached(std::nullopt);
        attempted_.reset();
        failure_.reset();
    }

    // How many times the source was asked.
    std::uint64_t refreshes() const {
        const std::lock_guard<std::timed_mutex> lock(mutex_);
        return refreshes_;
    }

private:
    credentials_lookup hit() const { return credentials_lookup{cached_, {}}; }
    // cached_ and the copy other threads read while one asks the source (mutex_ held).
    void set_cached(std::optional<credentials> c) {
        cached_ = std::move(c);
        const std::lock_guard<std::mutex> g(snapshot_mutex_);
        snapshot_ = cached_;
    }
    bool usable(time_point t) const { return cached_ && (!cached_->expiration() || t < *cached_->expiration()); }

    std::shared_ptr<credentials_provider> source_;
    std::chrono::seconds refresh_before_;
    std::chrono::seconds retry_interval_;
    clock_function now_;
    mutable std::timed_mutex mutex_;
    std::optional<credentials> cached_;
    mutable std::mutex snapshot_mutex_;
    std::optional<credentials> snapshot_;
    std::optional<time_point> attempted_;
    std::optional<error> failure_;  // credentials.expired, thrown again until retry_interval has passed
    std::uint64_t refreshes_ = 0;
};

// The AWS SDKs' order: environment, shared credentials and config files, container endpoint,
// EC2 instance metadata. `metadata` carries the last two (no endpoint, no authentication).
inline credentials_chain default_credentials_chain(std::shared_ptr<http::transport> metadata,
                                                   const environment& env = process_environment()) {
    credentials_chain chain = default_credentials_chain(env);
    chain.add(std::make_unique<container_credentials>(metadata, env));
    chain.add(std::make_unique<imds_credentials>(std::move(metadata), env));
    return chain;
}

// That chain behind a refreshing_credentials: what a long-lived process (a Lambda container)
// gives a SigV4 transport.
inline std::shared_ptr<credentials_provider> default_credentials_provider(std::shared_ptr<http::transport> metadata,
                                                                          const environment& env = process_environment()) {
    return std::make_shared<refreshing_credentials>(
        std::make_shared<credentials_chain>(default_credentials_chain(std::move(metadata), env)));
}

DDB2OS_END_NAMESPACE
