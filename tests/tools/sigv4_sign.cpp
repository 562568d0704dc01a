// sigv4_sign: signs requests read as JSON lines on stdin, one JSON line out per request, for the
// differential test against botocore (tests/python/test_sigv4_botocore.py).
//
// In:  {"id": any, "method": "GET", "url": "https://host/path?q", "headers": [["Name", "value"], ...],
//       "body_b64": "..." | "body_gen": {"size": N, "seed": S},
//       "payload_hash": "UNSIGNED-PAYLOAD" | "<64 hex>"          (optional: else the body is hashed)
//       "region": "us-east-1", "service": "es",
//       "credentials": {"access_key_id": "...", "secret_access_key": "...", "session_token": "..."},
//       "timestamp": 1440938160 | "20150830T123600Z" | "2015-08-30T12:36:00Z",
//       "options": {"location": "headers" | "query", "expires": 3600, "normalize_path": true,
//                   "double_encode_path": true, "session_token": "sign" | "add_after_signing",
//                   "checksum": "none" | "x-amz-content-sha256", "sign_content_length": true}}
//      (options default to sigv4::options::for_service(service))
// Out: {"id": ..., "headers": [[n, v], ...], "query": [[k, v], ...], "canonical_request": "...",
//       "string_to_sign": "...", "signature": "..."}  or  {"id": ..., "error": "..."}
// body_gen is SHA-256("<seed>:0") || SHA-256("<seed>:1") || ... cut to N bytes, so large bodies
// need not cross the pipe.
#include <cstdint>
#include <iostream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include <ddb2os/detail/crypto.hpp>
#include <ddb2os/sigv4.hpp>

namespace sigv4 = ddb2os::sigv4;
using nlohmann::json;

namespace {

std::string base64_decode(const std::string& in) {
    std::string out;
    out.reserve(in.size() / 4 * 3);
    unsigned buffer = 0;
    int bits = 0;
    for (const char c : in) {
        int v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+') v = 62;
        else if (c == '/') v = 63;
        else if (c == '=') break;
        else throw std::runtime_error("bad base64");
        buffer = (buffer << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
        }
    }
    return out;
}

std::string generated_body(std::size_t size, std::uint64_t seed) {
    std::string out;
    out.reserve(size + 32);
    const std::string prefix = std::to_string(seed) + ":";
    for (std::uint64_t i = 0; out.size() < size; ++i) {
        const auto d = ddb2os::detail::sha256(prefix + std::to_string(i));
        out.append(ddb2os::detail::as_view(d));
    }
    out.resize(size);
    return out;
}

std::chrono::system_clock::time_point parse_time(const json& t) {
    using clock = std::chrono::system_clock;
    if (t.is_number_integer()) return clock::time_point(std::chrono::seconds(t.get<std::int64_t>()));
    std::string s = t.get<std::string>();
    std::string digits;
    for (const char c : s)
        if (c >= '0' && c <= '9') digits.push_back(c);
    if (digits.size() != 14) throw std::runtime_error("timestamp must be YYYYMMDDTHHMMSSZ or ISO 8601");
    const auto num = [&](std::size_t at, std::size_t n) { return std::stoll(digits.substr(at, n)); };
    const std::int64_t days = sigv4::detail::days_from_civil(num(0, 4), static_cast<unsigned>(num(4, 2)),
                                                             static_cast<unsigned>(num(6, 2)));
    return clock::time_point(std::chrono::seconds(days * 86400 + num(8, 2) * 3600 + num(10, 2) * 60 + num(12, 2)));
}

sigv4::options parse_options(const json& in, std::string_view service) {
    sigv4::options o = sigv4::options::for_service(service);
    if (!in.is_object()) return o;
    if (in.contains("location"))
        o.location = in["location"] == "query" ? sigv4::signature_location::query_string
                                               : sigv4::signature_location::headers;
    if (in.contains("expires")) o.expires = std::chrono::seconds(in["expires"].get<long long>());
    if (in.contains("normalize_path")) o.normalize_path = in["normalize_path"].get<bool>();
    if (in.contains("double_encode_path")) o.double_encode_path = in["double_encode_path"].get<bool>();
    if (in.contains("session_token"))
        o.session_token = in["session_token"] == "add_after_signing" ? sigv4::session_token_mode::add_after_signing
                                                                     : sigv4::session_token_mode::sign;
    if (in.contains("checksum"))
        o.checksum = in["checksum"] == "x-amz-content-sha256" ? sigv4::payload_checksum::x_amz_content_sha256
                                                              : sigv4::payload_checksum::none;
    if (in.contains("sign_content_length")) o.sign_content_length = in["sign_content_length"].get<bool>();
    return o;
}

json sign_one(const json& in) {
    const std::string method = in.at("method").get<std::string>();
    const std::string url = in.at("url").get<std::string>();
    std::vector<std::pair<std::string, std::string>> headers;
    for (const json& h : in.value("headers", json::array()))
        headers.emplace_back(h.at(0).get<std::string>(), h.at(1).get<std::string>());
    std::string body;
    if (in.contains("body_b64")) body = base64_decode(in["body_b64"].get<std::string>());
    if (in.contains("body_gen"))
        body = generated_body(in["body_gen"].at("size").get<std::size_t>(), in["body_gen"].at("seed").get<std::uint64_t>());
    const std::string payload_hash = in.value("payload_hash", std::string());
    const std::string region = in.at("region").get<std::string>();
    const std::string service = in.at("service").get<std::string>();
    const json& c = in.at("credentials");
    const ddb2os::credentials creds(c.at("access_key_id").get<std::string>(), c.at("secret_access_key").get<std::string>(),
                                    c.value("session_token", std::string()));

    sigv4::request req;
    req.method = method;
    req.url = url;
    for (const auto& h : headers) req.headers.push_back({h.first, h.second});
    if (payload_hash == "UNSIGNED-PAYLOAD")
        req.body = sigv4::payload::unsigned_payload();
    else if (!payload_hash.empty())
        req.body = sigv4::payload::sha256_hex(payload_hash);
    else
        req.body = sigv4::payload::bytes(body);
    const sigv4::signing_params params{region, service, parse_time(in.at("timestamp")),
                                       parse_options(in.value("options", json::object()), service)};
    const sigv4::signing_result r = sigv4::sign(req, creds, params);

    json out = json::object();
    out["headers"] = json::array();
    for (const auto& f : r.headers) out["headers"].push_back({f.name, f.value});
    out["query"] = json::array();
    for (const auto& f : r.query) out["query"].push_back({f.name, f.value});
    out["canonical_request"] = r.canonical_request;
    out["string_to_sign"] = r.string_to_sign;
    out["signature"] = r.signature;
    return out;
}

}  // namespace

int main() {
    std::ios::sync_with_stdio(false);
    std::string line;
    while (std::getline(std::cin, line)) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        json out;
        json id;
        try {
            const json in = json::parse(line);
            id = in.value("id", json());
            out = sign_one(in);
        } catch (const ddb2os::error& e) {
            out = {{"error", e.what()}};
        } catch (const std::exception& e) {
            out = {{"error", std::string("bad input: ") + e.what()}};
        }
        out["id"] = id;
        std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
    }
    return 0;
}
