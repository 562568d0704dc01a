// SigV4 (sigv4.hpp, detail/uri.hpp): the AWS test suite in header and query mode, each stage on
// its own, the options, the signing-key cache, and every error with its exact message.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <ddb2os/detail/uri.hpp>
#include <ddb2os/sigv4.hpp>

#include "test_support.hpp"

namespace sigv4 = ddb2os::sigv4;
namespace fs = std::filesystem;

namespace {

using test::error_of;

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    REQUIRE_MESSAGE(in, "cannot open " << p.string());
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::chrono::system_clock::time_point at(std::int64_t seconds) {
    return std::chrono::system_clock::time_point(std::chrono::seconds(seconds));
}

// "2015-08-30T12:36:00Z"
std::chrono::system_clock::time_point parse_iso8601(const std::string& s) {
    REQUIRE(s.size() == 20);
    const auto num = [&](std::size_t at, std::size_t n) { return std::stoi(s.substr(at, n)); };
    const std::int64_t days = sigv4::detail::days_from_civil(num(0, 4), static_cast<unsigned>(num(5, 2)),
                                                             static_cast<unsigned>(num(8, 2)));
    return at(days * 86400 + num(11, 2) * 3600 + num(14, 2) * 60 + num(17, 2));
}

// request.txt: "METHOD TARGET HTTP/1.1", header lines ("Name:value", continued by indented
// lines), then optionally a blank line and the body. The target is raw and may hold spaces.
struct raw_request {
    std::string method, target, request_line;
    std::vector<std::string> header_lines;  // as written, continuation lines included
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

raw_request parse_request(const std::string& text) {
    raw_request r;
    std::size_t at = 0;
    const auto next_line = [&]() -> std::string {
        const std::size_t nl = text.find('\n', at);
        std::string line = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
        at = nl == std::string::npos ? text.size() : nl + 1;
        return line;
    };
    r.request_line = next_line();
    const std::size_t sp1 = r.request_line.find(' ');
    const std::size_t sp2 = r.request_line.rfind(' ');
    REQUIRE(sp1 != std::string::npos);
    REQUIRE(sp2 > sp1);
    r.method = r.request_line.substr(0, sp1);
    r.target = r.request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    while (at < text.size()) {
        std::string line = next_line();
        if (line.empty()) {
            r.body = text.substr(at);
            break;
        }
        r.header_lines.push_back(line);
        if (line[0] == ' ' || line[0] == '\t') {
            REQUIRE(!r.headers.empty());
            r.headers.back().second += "\n" + line;
        } else {
            const std::size_t colon = line.find(':');
            REQUIRE(colon != std::string::npos);
            r.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
        }
    }
    return r;
}

struct conformance_case {
    std::string name;
    fs::path dir;
};

std::vector<conformance_case> conformance_cases() {
    const fs::path dir = fs::path(DDB2OS_CONFORMANCE_DIR) / "sigv4" / "v4";
    REQUIRE_MESSAGE(fs::is_directory(dir), "conformance suite missing: " << dir.string());
    std::vector<conformance_case> cases;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_directory()) cases.push_back({e.path().filename().string(), e.path()});
    std::sort(cases.begin(), cases.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    REQUIRE(cases.size() == 38);
    return cases;
}

const ddb2os::credentials example_creds("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");

}  // namespace

TEST_CASE("sigv4: every case of the AWS test suite, in header and in query mode") {
    std::size_t checked = 0;
    for (const conformance_case& c : conformance_cases()) {
        CAPTURE(c.name);
        const nlohmann::json ctx = nlohmann::json::parse(read_file(c.dir / "context.json"));
        const raw_request raw = parse_request(read_file(c.dir / "request.txt"));
        const auto& cj = ctx.at("credentials");
        const ddb2os::credentials creds(cj.at("access_key_id").get<std::string>(),
                                        cj.at("secret_access_key").get<std::string>(),
                                        cj.value("token", std::string()));
        const bool sign_body = ctx.at("sign_body").get<bool>();

        sigv4::request req;
        req.method = raw.method;
        req.url = raw.target;
        for (const auto& h : raw.headers) req.headers.push_back({h.first, h.second});
        req.body = sigv4::payload::bytes(sign_body ? std::string_view(raw.body) : std::string_view());

        const std::string region = ctx.at("region").get<std::string>();
        const std::string service = ctx.at("service").get<std::string>();
        sigv4::signing_params params{region, service, parse_iso8601(ctx.at("timestamp").get<std::string>())};
        params.opts.normalize_path = ctx.at("normalize").get<bool>();
        params.opts.double_encode_path = true;
        if (ctx.value("omit_session_token", false)) params.opts.session_token = sigv4::session_token_mode::add_after_signing;
        if (sign_body) params.opts.checksum = sigv4::payload_checksum::x_amz_content_sha256;
        params.opts.expires = std::chrono::seconds(ctx.at("expiration_in_seconds").get<long>());

        for (const char* mode : {"header", "query"}) {
            CAPTURE(mode);
            const std::string m = mode;
            params.opts.location = m == "header" ? sigv4::signature_location::headers
                                                 : sigv4::signature_location::query_string;
            const std::string want_creq = read_file(c.dir / (m + "-canonical-request.txt"));
            const std::string want_sts = read_file(c.dir / (m + "-string-to-sign.txt"));
            const std::string want_sig = read_file(c.dir / (m + "-signature.txt"));
            const std::string want_signed = read_file(c.dir / (m + "-signed-request.txt"));

            // Stage by stage, each from the previous stage's expected output.
            const sigv4::canonical_request cr = sigv4::make_canonical_request(req, creds, params);
            CHECK(cr.text == want_creq);
            CHECK(sigv4::make_string_to_sign(cr.amz_date, cr.scope, want_creq) == want_sts);
            const sigv4::signing_key key =
                sigv4::derive_signing_key(creds.secret_access_key(), cr.amz_date.substr(0, 8), region, service);
            CHECK(sigv4::make_signature(key, want_sts) == want_sig);

            // All at once, and the request as it goes on the wire.
            const sigv4::signing_result r = sigv4::sign(req, creds, params);
            CHECK(r.canonical_request == want_creq);
            CHECK(r.string_to_sign == want_sts);
            CHECK(r.signature == want_sig);
            std::string wire;
            if (m == "header") {
                CHECK(r.query.empty());
                wire = raw.request_line + "\n";
                for (const auto& l : raw.header_lines) wire += l + "\n";
                for (const auto& f : r.headers) wire += f.name + ":" + f.value + "\n";
            } else {
                CHECK(r.headers.empty());
                const char sep = raw.target.find('?') == std::string::npos ? '?' : '&';
                wire = raw.method + " " + raw.target + sep + r.query_string() + " HTTP/1.1\n";
                for (const auto& l : raw.header_lines) wire += l + "\n";
            }
            wire += "\n" + raw.body;
            CHECK(wire == want_signed);
            ++checked;

            // A signer gives the same headers, and again when it is reused.
            if (m == "header") {
                sigv4::signer s(creds, region, service, params.opts);
                for (int round = 0; round < 2; ++round) {
                    const sigv4::signed_headers& h = s.sign(req, params.time);
                    CHECK(s.last_canonical_request().text == want_creq);
                    CHECK(s.last_string_to_sign() == want_sts);
                    std::string signer_wire = raw.request_line + "\n";
                    for (const auto& l : raw.header_lines) signer_wire += l + "\n";
                    if (!h.security_token.empty()) signer_wire += "X-Amz-Security-Token:" + std::string(h.security_token) + "\n";
                    signer_wire += "X-Amz-Date:" + std::string(h.amz_date) + "\n";
                    if (!h.content_sha256.empty()) signer_wire += "x-amz-content-sha256:" + std::string(h.content_sha256) + "\n";
                    signer_wire += "Authorization:" + std::string(h.authorization) + "\n\n" + raw.body;
                    CHECK(signer_wire == want_signed);
                }
            }
        }
    }
    CHECK(checked == 76);
}

TEST_CASE("sigv4: a reused signer signs each request as sign() does, across seconds and days") {
    // Requests of different shapes one after another: no state of one may leak into the next.
    const std::string body(70000, 'x');
    std::vector<sigv4::request> requests = {
        {"GET", "https://search-x.eu-west-1.es.amazonaws.com/", {}, {}},
        {"POST", "https://search-x.eu-west-1.es.amazonaws.com/_bulk?refresh=wait_for&timeout=5s",
         {{"Content-Type", "application/x-ndjson"}, {"X-Extra", "  a   b "}, {"x-extra", "c"}},
         sigv4::payload::bytes(body)},
        {"GET", "https://search-x.eu-west-1.es.amazonaws.com:8443/a/./b//c%20d?z=1&a=2&a=1", {}, {}},
        {"PUT", "/idx/_doc/1", {{"Host", "Example.COM"}}, sigv4::payload::bytes("{}")},
        {"HEAD", "https://search-x.eu-west-1.es.amazonaws.com/", {}, sigv4::payload::unsigned_payload()},
    };
    const std::int64_t day = 1440938160;  // 2015-08-30T12:36:00Z
    const std::vector<std::int64_t> times = {day, day, day + 1, day + 86400, day + 86400, day - 86400, day + 3};
    for (const ddb2os::credentials& creds :
         {example_creds, ddb2os::credentials("ASIAEXAMPLE", "secret/with+chars", "TOKEN==")}) {
        for (const char* service : {"es", "aoss"}) {
            CAPTURE(service);
            sigv4::signer s(creds, "eu-west-1", service);
            // Each request after a different one, then each request several times in a row (its
            // canonical request's first block the same, the date after it changing).
            for (std::size_t i = 0; i < 2 * times.size() * requests.size(); ++i) {
                CAPTURE(i);
                const std::size_t k = i % (times.size() * requests.size());
                const bool in_a_row = i >= times.size() * requests.size();
                const sigv4::request& req = requests[in_a_row ? k / times.size() : k % requests.size()];
                const sigv4::signing_params params{"eu-west-1", service, at(times[k % times.size()]),
                                                   sigv4::options::for_service(service)};
                const sigv4::signing_result want = sigv4::sign(req, creds, params);
                const sigv4::signed_headers& got = s.sign(req, params.time);
                std::vector<std::pair<std::string, std::string>> got_fields, want_fields;
                for (const auto& f : want.headers) want_fields.emplace_back(f.name, f.value);
                if (!got.security_token.empty()) got_fields.emplace_back("X-Amz-Security-Token", std::string(got.security_token));
                got_fields.emplace_back("X-Amz-Date", std::string(got.amz_date));
                if (!got.content_sha256.empty()) got_fields.emplace_back("x-amz-content-sha256", std::string(got.content_sha256));
                got_fields.emplace_back("Authorization", std::string(got.authorization));
                CHECK(got_fields == want_fields);
                CHECK(s.last_canonical_request().text == want.canonical_request);
            }
        }
    }

    // Its errors: a bad request as sign() reports it (and the signer still works afterwards);
    // a scope or a mode it cannot sign in, when it is made.
    sigv4::signer s(example_creds, "us-east-1", "es");
    CHECK(error_of([&] { s.sign({"GE T", "https://h/", {}, {}}, at(day)); }) ==
          "[ddb2os.sigv4.bad_method] HTTP method \"GE T\" is not an HTTP token");
    CHECK(error_of([&] { s.sign({"GET", "https://h/", {}, {}}, at(-1)); }) ==
          "[ddb2os.sigv4.bad_time] signing time is outside the years 1970 to 9999");
    // A new signer's first second is -1 too (1969-12-31T23:59:59): it took that second for its own,
    // signed with a key it did not have, and crashed.
    sigv4::signer fresh(example_creds, "us-east-1", "es");
    CHECK(error_of([&] { fresh.sign({"GET", "https://h/", {}, {}}, at(-1)); }) ==
          "[ddb2os.sigv4.bad_time] signing time is outside the years 1970 to 9999");
    CHECK(error_of([&] { fresh.sign({"GET", "https://h/", {}, {}}, at(-1)); }) ==
          "[ddb2os.sigv4.bad_time] signing time is outside the years 1970 to 9999");
    const sigv4::signing_params params{"us-east-1", "es", at(day)};
    CHECK(std::string(fresh.sign({"GET", "https://h/", {}, {}}, at(day)).authorization) ==
          sigv4::sign({"GET", "https://h/", {}, {}}, example_creds, params).headers.back().value);
    CHECK(std::string(s.sign({"GET", "https://h/", {}, {}}, at(day)).authorization) ==
          sigv4::sign({"GET", "https://h/", {}, {}}, example_creds, params).headers.back().value);
    CHECK(error_of([] { sigv4::signer(example_creds, "", "es"); }) == "[ddb2os.sigv4.bad_scope] region is empty");
    CHECK(error_of([] { sigv4::signer(example_creds, "us-east-1", ""); }) == "[ddb2os.sigv4.bad_scope] service is empty");
    sigv4::options presign;
    presign.location = sigv4::signature_location::query_string;
    CHECK(error_of([&] { sigv4::signer(example_creds, "us-east-1", "es", presign); }) ==
          "[ddb2os.sigv4.bad_option] a signer signs in headers; presign with sign() and signature_location::query_string");
}

TEST_CASE("sigv4: a signer keeps the last URL split, and signs a changed or new one as sign() does") {
    // The cache compares the URL's text: the same buffer changed in place, another URL, a bad URL
    // (rejected, the cache kept), a Host header given for the cached URL and not, an origin-form
    // target after an absolute one.
    const std::int64_t t = 1440938160;
    const sigv4::signing_params params{"eu-west-1", "es", at(t)};
    sigv4::signer s(example_creds, "eu-west-1", "es");
    const auto same = [&](const sigv4::request& req) {
        const sigv4::signing_result want = sigv4::sign(req, example_creds, params);
        const std::string got(s.sign(req, at(t)).authorization);
        CHECK(s.last_canonical_request().text == want.canonical_request);
        return got == want.headers.back().value;
    };
    std::string url = "https://search-x.eu-west-1.es.amazonaws.com:8443/a/b?z=1";
    CHECK(same({"GET", url, {}, {}}));
    CHECK(same({"GET", url, {}, {}}));
    url[15] = 'y';  // search-y: the same size, at the same address
    CHECK(same({"GET", url, {}, {}}));
    CHECK(s.last_canonical_request().text.find("host:search-y.eu-west-1.es.amazonaws.com:8443\n") != std::string::npos);
    url[url.size() - 1] = '2';  // the query
    CHECK(same({"GET", url, {}, {}}));
    url[url.find("/a/b") + 3] = 'c';  // the path
    CHECK(same({"GET", url, {}, {}}));
    CHECK(error_of([&] { s.sign({"GET", "https://:80/", {}, {}}, at(t)); }) == "[ddb2os.sigv4.bad_url] URL has an empty host");
    CHECK(same({"GET", url, {}, {}}));
    CHECK(same({"GET", url, {{"Host", "given.example"}}, {}}));
    CHECK(s.last_canonical_request().text.find("host:given.example\n") != std::string::npos);
    CHECK(same({"GET", url, {}, {}}));
    CHECK(same({"GET", "/a/c?z=2", {{"Host", "search-y.eu-west-1.es.amazonaws.com:8443"}}, {}}));
    CHECK(error_of([&] { s.sign({"GET", "/a/c?z=2", {}, {}}, at(t)); }) ==
          "[ddb2os.sigv4.no_host] request has no Host header and its URL has no host");
    CHECK(same({"GET", "HTTPS://User@Search-Z.example:443#frag", {}, {}}));
    CHECK(s.last_canonical_request().text.find("host:search-z.example\n") != std::string::npos);
}

TEST_CASE("sigv4: the signing key of the AWS documentation's example") {
    const sigv4::signing_key k =
        sigv4::derive_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam");
    CHECK(ddb2os::detail::hex(k) == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
    // "AWS4" and a 60-byte secret are an HMAC key of exactly one block; with 100 bytes, a longer key,
    // which HMAC hashes first (expected values from Python's hmac). Then RFC 4231's test case 6.
    CHECK(ddb2os::detail::hex(sigv4::derive_signing_key(std::string(60, 'S'), "20150830", "us-east-1", "es")) ==
          "b27cdf983307cacb217cc3665fe8acbe4fc1e373d32a990df201016fcb746867");
    CHECK(ddb2os::detail::hex(sigv4::derive_signing_key(std::string(100, 'S'), "20150830", "us-east-1", "es")) ==
          "b660f75666249e0f477c08f70e12465f90505e781f63b765b1f0f1c03c38db02");
    CHECK(ddb2os::detail::hex(ddb2os::detail::hmac_sha256(std::string(131, '\xaa'),
                                                         "Test Using Larger Than Block-Size Key - Hash Key First")) ==
          "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST_CASE("sigv4: hex of every byte value, at every position and length around the 16-byte blocks") {
    // append_hex writes 16 bytes at a time (SSE2), the rest byte by byte, in chunks of 64 bytes.
    std::vector<unsigned char> bytes(300);
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<unsigned char>(i * 7 + 3);
    const auto expected = [](const unsigned char* p, std::size_t n) {
        static constexpr char d[] = "0123456789abcdef";
        std::string s;
        for (std::size_t i = 0; i < n; ++i) s.append({d[p[i] >> 4], d[p[i] & 15]});
        return s;
    };
    std::size_t mismatches = 0;  // bytes[] holds every byte value (7 is odd): all reach both paths
    for (std::size_t start = 0; start < 17; ++start)
        for (std::size_t n = 0; start + n <= bytes.size(); n += n < 70 ? 1 : 29) {
            std::string out = "x";  // appended after what is there
            ddb2os::detail::append_hex(out, bytes.data() + start, n);
            mismatches += out != "x" + expected(bytes.data() + start, n);
        }
    CHECK(mismatches == 0);
    std::string all;
    for (int b = 0; b < 256; ++b) {
        const unsigned char c = static_cast<unsigned char>(b);
        std::string one;
        ddb2os::detail::append_hex(one, &c, 1);
        all += one;
    }
    std::vector<unsigned char> every(256);
    for (int b = 0; b < 256; ++b) every[static_cast<std::size_t>(b)] = static_cast<unsigned char>(b);
    std::string at_once;
    ddb2os::detail::append_hex(at_once, every.data(), every.size());
    CHECK(at_once == all);
    CHECK(all.substr(0, 8) == "00010203");
    CHECK(all.substr(all.size() - 8) == "fcfdfeff");
}

TEST_CASE("sigv4: time is an argument, formatted in UTC to the second") {
    using sigv4::detail::format_amz_date;
    CHECK(format_amz_date(std::int64_t{0}) == "19700101T000000Z");
    CHECK(format_amz_date(std::int64_t{1440938160}) == "20150830T123600Z");
    CHECK(format_amz_date(std::int64_t{1709164799}) == "20240228T235959Z");
    CHECK(format_amz_date(std::int64_t{1709164800}) == "20240229T000000Z");
    CHECK(format_amz_date(std::int64_t{4107542400}) == "21000301T000000Z");
    CHECK(format_amz_date(std::int64_t{253402300799}) == "99991231T235959Z");
    CHECK(format_amz_date(at(1440938160) + std::chrono::milliseconds(999)) == "20150830T123600Z");
    CHECK(sigv4::detail::days_from_civil(2015, 8, 30) == 16677);
    const auto c = sigv4::detail::civil_from_days(16677);
    CHECK(c.year == 2015);
    CHECK(c.month == 8);
    CHECK(c.day == 30);
    // Every day from 1970 to 9999 there and back (parse_iso8601 reads Expiration times with days_from_civil).
    std::int64_t mismatches = 0;
    for (std::int64_t z = 0; z <= 2932896; ++z) {
        const auto d = sigv4::detail::civil_from_days(z);
        mismatches += sigv4::detail::days_from_civil(d.year, d.month, d.day) != z;
    }
    CHECK(mismatches == 0);
    CHECK(sigv4::detail::days_from_civil(2024, 2, 29) == 19782);
}

TEST_CASE("sigv4: paths are normalized as the AWS SDKs do, then encoded again") {
    using ddb2os::detail::normalize_uri_path;
    CHECK(normalize_uri_path("") == "/");
    CHECK(normalize_uri_path("/") == "/");
    CHECK(normalize_uri_path("//") == "/");
    CHECK(normalize_uri_path("/a//b///c") == "/a/b/c");
    CHECK(normalize_uri_path("/a/./b/../c/") == "/a/c/");
    CHECK(normalize_uri_path("/../../a") == "/a");
    CHECK(normalize_uri_path("/a/b/..") == "/a");
    CHECK(normalize_uri_path("/a/.") == "/a");
    CHECK(normalize_uri_path("/a/..") == "/");
    CHECK(normalize_uri_path("/.../a") == "/.../a");
    CHECK(normalize_uri_path("/a%2F..%2Fb") == "/a%2F..%2Fb");

    std::string out;
    ddb2os::detail::append_uri_encoded(out, "/my index/ሴ%2F~-._*+", true);
    CHECK(out == "/my%20index/%E1%88%B4%252F~-._%2A%2B");
    out.clear();
    ddb2os::detail::append_uri_encoded(out, "a/b", false);
    CHECK(out == "a%2Fb");

    const sigv4::signing_params params{"us-east-1", "es", at(1440938160)};
    const auto path_of = [&](const char* url, const sigv4::options& o) {
        sigv4::signing_params p = params;
        p.opts = o;
        const std::string text = sigv4::make_canonical_request({"GET", url, {}, {}}, example_creds, p).text;
        const std::size_t a = text.find('\n') + 1;
        return text.substr(a, text.find('\n', a) - a);
    };
    CHECK(path_of("https://h/idx/_doc/a%2Fb/../c", {}) == "/idx/_doc/c");
    CHECK(path_of("https://h/idx/_doc/a%2Fb", {}) == "/idx/_doc/a%252Fb");
    CHECK(path_of("https://h", {}) == "/");
    CHECK(path_of("https://h?x=1", {}) == "/");
    CHECK(path_of("https://h/a#frag/ment", {}) == "/a");
    const sigv4::options s3 = sigv4::options::for_service("s3");
    CHECK(path_of("https://h//a/./b%2Fc", s3) == "//a/./b%2Fc");
}

TEST_CASE("sigv4: query strings are decoded, encoded and sorted by key then value") {
    const auto canon = [](std::string_view q) {
        std::vector<ddb2os::detail::query_param> params;
        ddb2os::detail::parse_query_canonical(q, params);
        std::string out;
        ddb2os::detail::append_sorted_query(out, params);
        return out;
    };
    CHECK(canon("") == "");
    CHECK(canon("b=2&a=1") == "a=1&b=2");
    CHECK(canon("a=2&a=10&a=1&a") == "a=&a=1&a=10&a=2");
    CHECK(canon("k=&k2") == "k=&k2=");
    CHECK(canon("a=1&&b=2&") == "a=1&b=2");
    CHECK(canon("q=a b+c/d") == "q=a%20b%2Bc%2Fd");
    CHECK(canon("q=a%20b%2bc%2Fd%41") == "q=a%20b%2Bc%2FdA");
    CHECK(canon("q=100%&r=%zz&s=%4") == "q=100%25&r=%25zz&s=%254");
    CHECK(canon("%E1%88%B4=1&ሴ=0&Z=2&a=3") == "%E1%88%B4=0&%E1%88%B4=1&Z=2&a=3");
    CHECK(canon("x=a=b") == "x=a%3Db");
}

TEST_CASE("sigv4: names are lower-cased eight bytes at a time, ASCII letters only") {
    // Every byte value at every position of a window longer than two words.
    for (int b = 0; b < 256; ++b) {
        for (std::size_t pos = 0; pos < 19; ++pos) {
            std::string in(19, 'Q');
            in[pos] = static_cast<char>(b);
            std::string out(19, '\0');
            ddb2os::detail::copy_ascii_lower(&out[0], in);
            std::string want = in;
            for (char& c : want)
                if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
            CAPTURE(b);
            CAPTURE(pos);
            REQUIRE(out == want);
        }
    }
}

TEST_CASE("sigv4: the host header is derived from the URL as an HTTP client sends it") {
    const auto host = [](std::string_view url) {
        return ddb2os::detail::host_header_value(ddb2os::detail::split_url(url));
    };
    CHECK(host("https://Search-Domain.US-East-1.es.amazonaws.com/") == "search-domain.us-east-1.es.amazonaws.com");
    CHECK(host("https://h:443/") == "h");
    CHECK(host("http://h:80") == "h");
    CHECK(host("http://h:443/") == "h:443");
    CHECK(host("https://h:9200/x") == "h:9200");
    CHECK(host("https://h:00443/x") == "h");
    CHECK(host("https://user:pass@h:8443/x") == "h:8443");
    CHECK(host("https://[::1]:9200/x") == "[::1]:9200");
    CHECK(host("https://[::1]/x") == "[::1]");
    CHECK(host("HTTPS://h:443?q") == "h");
    CHECK(host("https://h:65535/x") == "h:65535");
    CHECK(host("https://user:p@ss@h:8443/x") == "h:8443");  // userinfo runs to the last '@'

    // Signed when there is no Host header; a given Host header wins.
    const sigv4::signing_params params{"us-east-1", "es", at(1440938160)};
    sigv4::request req{"GET", "https://H:9200/", {}, {}};
    CHECK(sigv4::make_canonical_request(req, example_creds, params).text.find("\nhost:h:9200\n") != std::string::npos);
    req.headers = {{"HOST", "Other:1"}};
    const std::string text = sigv4::make_canonical_request(req, example_creds, params).text;
    CHECK(text.find("\nhost:Other:1\n") != std::string::npos);
    CHECK(text.find("h:9200") == std::string::npos);
}

TEST_CASE("sigv4: header values are trimmed, folds joined, repeated names merged in order") {
    const sigv4::signing_params params{"us-east-1", "dynamodb", at(1440938160)};
    const sigv4::request req{"POST",
                             "/",
                             {{"Host", "dynamodb.us-east-1.amazonaws.com"},
                              {"X-Amz-Target", "DynamoDB_20120810.Query"},
                              {"My-Header", "  a   b\t\tc  "},
                              {"my-header", "second\r\n   folded \n\tline "},
                              {"MY-HEADER", ""},
                              {"Content-Type", "application/x-amz-json-1.0"}},
                             sigv4::payload::bytes("{}")};
    const sigv4::canonical_request cr = sigv4::make_canonical_request(req, example_creds, params);
    CHECK(cr.text ==
          "POST\n/\n\n"
          "content-type:application/x-amz-json-1.0\n"
          "host:dynamodb.us-east-1.amazonaws.com\n"
          "my-header:a b c,second folded line,\n"
          "x-amz-date:20150830T123600Z\n"
          "x-amz-target:DynamoDB_20120810.Query\n\n"
          "content-type;host;my-header;x-amz-date;x-amz-target\n"
          "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
    CHECK(cr.signed_headers == "content-type;host;my-header;x-amz-date;x-amz-target");
    CHECK(cr.payload_hash == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
    CHECK(cr.amz_date == "20150830T123600Z");
    CHECK(cr.scope == "20150830/us-east-1/dynamodb/aws4_request");
}

TEST_CASE("sigv4: trimming takes a value without space or control bytes whole, any other byte by byte") {
    // append_trimmed looks for a byte at most 0x20 16 bytes at a time (the last block overlapping),
    // then trims as the reference below does: one such byte at every position of values 0-70 long,
    // beside bytes that are neither (0x7f, 0x80, 0xff), and values of random bytes from both kinds.
    const auto reference = [](std::string_view v) {
        std::string out;
        std::size_t i = 0;
        while (i < v.size()) {
            while (i < v.size() && sigv4::detail::is_header_space(v[i])) ++i;
            const std::size_t word = i;
            while (i < v.size() && !sigv4::detail::is_header_space(v[i])) ++i;
            if (i == word) break;
            if (!out.empty()) out.push_back(' ');
            out.append(v.substr(word, i - word));
        }
        return out;
    };
    const std::string others = "aZ~\x7f\x80\xff";
    const std::string lows = std::string(" \t\r\n\v\f\x01\x1f", 8) + std::string(1, '\0');
    std::size_t mismatches = 0, whole = 0, trimmed = 0;
    const auto check = [&](const std::string& v) {
        std::string out = "x:";  // appended after what is there
        sigv4::detail::append_trimmed(out, v);
        const std::string want = "x:" + reference(v);
        mismatches += out != want;
        (sigv4::detail::has_no_space_or_control(v) ? whole : trimmed) += 1;
        if (sigv4::detail::has_no_space_or_control(v)) mismatches += out != "x:" + v;
    };
    for (std::size_t n = 0; n <= 70; ++n) {
        std::string v(n, 'q');
        for (std::size_t k = 0; k < n; ++k) v[k] = others[k % others.size()];
        check(v);
        for (std::size_t at = 0; at < n; ++at)
            for (const char low : lows) {
                std::string w = v;
                w[at] = low;
                check(w);
                mismatches += sigv4::detail::has_no_space_or_control(w);  // every such byte is seen
            }
    }
    std::uint32_t seed = 12345;
    const auto next = [&seed] { return seed = seed * 1664525u + 1013904223u; };
    const std::string pool = others + lows;
    for (int round = 0; round < 20000; ++round) {
        std::string v(next() % 60, ' ');
        for (char& c : v) c = pool[(next() >> 8) % pool.size()];
        check(v);
    }
    CHECK(mismatches == 0);
    CHECK(whole > 100);  // both paths are reached
    CHECK(trimmed > 10000);
}

TEST_CASE("sigv4: headers clients change, and headers the signer sets, are not signed from the input") {
    const ddb2os::credentials temp("AKID", "SECRET", "TOKEN");
    const sigv4::signing_params params{"eu-west-1", "es", at(1440938160)};
    const sigv4::request req{"GET",
                             "https://h/",
                             {{"User-Agent", "x"},
                              {"Connection", "keep-alive"},
                              {"Keep-Alive", "timeout=5"},
                              {"Proxy-Authenticate", "Basic"},
                              {"Proxy-Authorization", "Basic eDp5"},
                              {"TE", "trailers"},
                              {"Trailer", "Expires"},
                              {"Upgrade", "h2c"},
                              {"Expect", "100-continue"},
                              {"Transfer-Encoding", "chunked"},
                              {"X-Amzn-Trace-Id", "Root=1"},
                              {"Authorization", "stale"},
                              {"X-Amz-Date", "19990101T000000Z"},
                              {"X-Amz-Security-Token", "stale"},
                              {"Content-Length", "0"}},
                             {}};
    const sigv4::signing_result r = sigv4::sign(req, temp, params);
    CHECK(r.canonical_request ==
          "GET\n/\n\ncontent-length:0\nhost:h\nx-amz-date:20150830T123600Z\nx-amz-security-token:TOKEN\n\n"
          "content-length;host;x-amz-date;x-amz-security-token\n"
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    REQUIRE(r.headers.size() == 3);
    CHECK(r.headers[0].name == "X-Amz-Security-Token");
    CHECK(r.headers[0].value == "TOKEN");
    CHECK(r.headers[1].name == "X-Amz-Date");
    CHECK(r.headers[1].value == "20150830T123600Z");
    CHECK(r.headers[2].name == "Authorization");
    CHECK(r.headers[2].value ==
          "AWS4-HMAC-SHA256 Credential=AKID/20150830/eu-west-1/es/aws4_request, "
          "SignedHeaders=content-length;host;x-amz-date;x-amz-security-token, Signature=" +
              r.signature);

    // Without a session token, an input X-Amz-Security-Token is an ordinary header.
    const sigv4::signing_result r2 = sigv4::sign(req, ddb2os::credentials("AKID", "SECRET"), params);
    CHECK(r2.canonical_request.find("x-amz-security-token:stale\n") != std::string::npos);
    CHECK(r2.headers.size() == 2);
}

TEST_CASE("sigv4: aoss signs x-amz-content-sha256 and never content-length") {
    const sigv4::options o = sigv4::options::for_service("aoss");
    CHECK(o.checksum == sigv4::payload_checksum::x_amz_content_sha256);
    CHECK_FALSE(o.sign_content_length);
    CHECK(o.normalize_path);
    CHECK(o.double_encode_path);
    const sigv4::signing_params params{"us-east-1", "aoss", at(1440938160), o};
    const std::string body = "{\"index\":{}}\n{\"a\":1}\n";
    const sigv4::request req{"POST",
                             "https://abc.us-east-1.aoss.amazonaws.com/_bulk",
                             {{"Content-Type", "application/x-ndjson"}, {"Content-Length", "21"}},
                             sigv4::payload::bytes(body)};
    const sigv4::signing_result r = sigv4::sign(req, example_creds, params);
    const std::string hash = ddb2os::detail::hex(ddb2os::detail::sha256(body));
    CHECK(r.canonical_request == "POST\n/_bulk\n\ncontent-type:application/x-ndjson\n"
                                 "host:abc.us-east-1.aoss.amazonaws.com\n"
                                 "x-amz-content-sha256:" + hash + "\nx-amz-date:20150830T123600Z\n\n"
                                 "content-type;host;x-amz-content-sha256;x-amz-date\n" + hash);
    REQUIRE(r.headers.size() == 3);
    CHECK(r.headers[1].name == "x-amz-content-sha256");
    CHECK(r.headers[1].value == hash);

    // The other services keep the defaults; s3 has its own path rules.
    for (const char* s : {"es", "dynamodb", "execute-api"}) {
        const sigv4::options d = sigv4::options::for_service(s);
        CHECK(d.checksum == sigv4::payload_checksum::none);
        CHECK(d.sign_content_length);
        CHECK(d.normalize_path);
        CHECK(d.double_encode_path);
    }
    const sigv4::options s3 = sigv4::options::for_service("s3");
    CHECK_FALSE(s3.normalize_path);
    CHECK_FALSE(s3.double_encode_path);
    CHECK(s3.checksum == sigv4::payload_checksum::x_amz_content_sha256);
}

TEST_CASE("sigv4: a payload is bytes, a precomputed hash, or UNSIGNED-PAYLOAD") {
    const std::string body(100000, 'x');
    const std::string hash = ddb2os::detail::hex(ddb2os::detail::sha256(body));
    CHECK(sigv4::payload().hash() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sigv4::payload::bytes(body).hash() == hash);
    ddb2os::detail::sha256_stream stream;
    stream.update(std::string_view(body).substr(0, 12345));
    stream.update(std::string_view(body).substr(12345));
    CHECK(sigv4::payload::sha256(stream.finish()).hash() == hash);
    CHECK(sigv4::payload::sha256_hex(hash).hash() == hash);
    CHECK(sigv4::payload::unsigned_payload().hash() == "UNSIGNED-PAYLOAD");

    // All three forms of the same body sign the same.
    const sigv4::signing_params params{"us-east-1", "es", at(1440938160)};
    const auto sig = [&](sigv4::payload p) {
        return sigv4::sign({"PUT", "https://h/i/_doc/1", {}, p}, example_creds, params).signature;
    };
    CHECK(sig(sigv4::payload::bytes(body)) == sig(sigv4::payload::sha256_hex(hash)));
    CHECK(sig(sigv4::payload::bytes(body)) != sig(sigv4::payload::bytes("y")));

    sigv4::signing_params with_header = params;
    with_header.opts.checksum = sigv4::payload_checksum::x_amz_content_sha256;
    const sigv4::signing_result r =
        sigv4::sign({"PUT", "https://h/k", {}, sigv4::payload::unsigned_payload()}, example_creds, with_header);
    CHECK(r.canonical_request.find("\nx-amz-content-sha256:UNSIGNED-PAYLOAD\n") != std::string::npos);
    CHECK(r.canonical_request.substr(r.canonical_request.size() - 17) == "\nUNSIGNED-PAYLOAD");
}

TEST_CASE("sigv4: presigned URLs carry the token, signed or added after signing") {
    const ddb2os::credentials temp("AKID", "SECRET", "tok/en+=");
    sigv4::signing_params params{"us-east-1", "es", at(1440938160)};
    params.opts.location = sigv4::signature_location::query_string;
    params.opts.expires = std::chrono::seconds(604800);
    const sigv4::request req{"GET", "https://h/p?b=1&a", {{"X-Custom", "v"}}, {}};
    const sigv4::signing_result r = sigv4::sign(req, temp, params);
    CHECK(r.canonical_request ==
          "GET\n/p\nX-Amz-Algorithm=AWS4-HMAC-SHA256"
          "&X-Amz-Credential=AKID%2F20150830%2Fus-east-1%2Fes%2Faws4_request&X-Amz-Date=20150830T123600Z"
          "&X-Amz-Expires=604800&X-Amz-Security-Token=tok%2Fen%2B%3D&X-Amz-SignedHeaders=host%3Bx-custom&a=&b=1\n"
          "host:h\nx-custom:v\n\nhost;x-custom\n"
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(r.query_string() ==
          "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20150830%2Fus-east-1%2Fes%2Faws4_request"
          "&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host%3Bx-custom&X-Amz-Expires=604800"
          "&X-Amz-Security-Token=tok%2Fen%2B%3D&X-Amz-Signature=" + r.signature);

    params.opts.session_token = sigv4::session_token_mode::add_after_signing;
    const sigv4::signing_result after = sigv4::sign(req, temp, params);
    CHECK(after.canonical_request.find("X-Amz-Security-Token") == std::string::npos);
    CHECK(after.query_string().find("&X-Amz-Security-Token=tok%2Fen%2B%3D&X-Amz-Signature=") != std::string::npos);
    CHECK(after.signature != r.signature);

    // In query mode the date is a parameter: an X-Amz-Date header the caller sends is signed like any other (as botocore does).
    const sigv4::signing_result dated = sigv4::sign({"GET", "https://h/p", {{"X-Amz-Date", "19990101T000000Z"}}, {}}, temp, params);
    CHECK(dated.canonical_request.find("\nx-amz-date:19990101T000000Z\n\nhost;x-amz-date\n") != std::string::npos);
}

TEST_CASE("sigv4: the signing-key cache skips the derivation, per key id, secret, date, region and service") {
    sigv4::signing_key_cache cache(3);
    const ddb2os::credentials a("AKIDA", "secret-a");
    const auto expect = [](const ddb2os::credentials& c, const char* d, const char* r, const char* s) {
        return sigv4::derive_signing_key(c.secret_access_key(), d, r, s);
    };
    CHECK(cache.get(a, "20150830", "us-east-1", "es") == expect(a, "20150830", "us-east-1", "es"));
    CHECK(cache.get(a, "20150830", "us-east-1", "es") == expect(a, "20150830", "us-east-1", "es"));
    CHECK(cache.hits() == 1);
    CHECK(cache.misses() == 1);
    CHECK(cache.get(a, "20150831", "us-east-1", "es") == expect(a, "20150831", "us-east-1", "es"));
    CHECK(cache.get(a, "20150830", "us-west-2", "es") == expect(a, "20150830", "us-west-2", "es"));
    CHECK(cache.misses() == 3);
    CHECK(cache.size() == 3);
    // Full: the least recently used entry (day 31) goes.
    CHECK(cache.get(a, "20150830", "us-east-1", "es") == expect(a, "20150830", "us-east-1", "es"));
    CHECK(cache.get(a, "20150830", "us-east-1", "aoss") == expect(a, "20150830", "us-east-1", "aoss"));
    CHECK(cache.size() == 3);
    CHECK(cache.hits() == 2);
    CHECK(cache.get(a, "20150830", "us-west-2", "es") == expect(a, "20150830", "us-west-2", "es"));
    CHECK(cache.hits() == 3);
    CHECK(cache.get(a, "20150831", "us-east-1", "es") == expect(a, "20150831", "us-east-1", "es"));
    CHECK(cache.hits() == 3);
    // Same key id, rotated secret: a new key.
    const ddb2os::credentials rotated("AKIDA", "secret-b");
    CHECK(cache.get(rotated, "20150831", "us-east-1", "es") == expect(rotated, "20150831", "us-east-1", "es"));
    CHECK(cache.hits() == 3);

    // sign() with a cache gives what sign() without one gives.
    const sigv4::signing_params params{"us-east-1", "es", at(1440938160)};
    const sigv4::request req{"GET", "https://h/", {}, {}};
    CHECK(sigv4::sign(req, a, params, &cache).signature == sigv4::sign(req, a, params).signature);
}

TEST_CASE("sigv4: one cache shared by threads") {
    sigv4::signing_key_cache cache;
    const sigv4::request req{"POST", "https://h/_bulk", {{"Content-Type", "application/json"}},
                             sigv4::payload::bytes("{}\n")};
    const char* regions[] = {"us-east-1", "eu-west-1", "ap-south-1", "us-west-2"};
    std::vector<std::string> expected;
    for (const char* region : regions)
        expected.push_back(sigv4::sign(req, example_creds, {region, "es", at(1440938160)}).signature);
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    constexpr int per_thread = 500;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                const std::size_t k = static_cast<std::size_t>(i + t) % 4;
                if (sigv4::sign(req, example_creds, {regions[k], "es", at(1440938160)}, &cache).signature != expected[k])
                    ++mismatches;
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(mismatches == 0);
    CHECK(cache.hits() + cache.misses() == 4 * per_thread);
    CHECK(cache.size() == 4);
    CHECK(cache.misses() >= 4);
}

TEST_CASE("sigv4: errors, with their exact messages") {
    const sigv4::signing_params ok{"us-east-1", "es", at(1440938160)};
    const auto sign_error = [&](const sigv4::request& req, sigv4::signing_params p) {
        return error_of([&] { sigv4::sign(req, example_creds, p); });
    };
    const auto url_error = [&](std::string_view url) { return sign_error({"GET", url, {}, {}}, ok); };
    CHECK(url_error("") == "[ddb2os.sigv4.bad_url] URL is neither absolute (scheme://host/path) nor a path starting with '/'");
    CHECK(url_error("h/p") == "[ddb2os.sigv4.bad_url] URL is neither absolute (scheme://host/path) nor a path starting with '/'");
    CHECK(url_error("://h/p") == "[ddb2os.sigv4.bad_url] URL is neither absolute (scheme://host/path) nor a path starting with '/'");
    CHECK(url_error("https:///p") == "[ddb2os.sigv4.bad_url] URL has an empty host");
    CHECK(url_error("https://user:pw@/p") == "[ddb2os.sigv4.bad_url] URL has an empty host");
    CHECK(url_error("https://h:/p") == "[ddb2os.sigv4.bad_url] URL port is not a number from 0 to 65535");
    CHECK(url_error("https://h:65536/p") == "[ddb2os.sigv4.bad_url] URL port is not a number from 0 to 65535");
    CHECK(url_error("https://user:secretpw/p") == "[ddb2os.sigv4.bad_url] URL port is not a number from 0 to 65535");
    CHECK(url_error("https://[::1/p") == "[ddb2os.sigv4.bad_url] URL has an IPv6 host without its closing ']'");
    CHECK(url_error("https://[::1]x/p") == "[ddb2os.sigv4.bad_url] URL has characters after its IPv6 host");
    CHECK(url_error("/p?q=1") == "[ddb2os.sigv4.no_host] request has no Host header and its URL has no host");

    CHECK(sign_error({"", "https://h/", {}, {}}, ok) == "[ddb2os.sigv4.bad_method] HTTP method is empty");
    CHECK(sign_error({"GE T", "https://h/", {}, {}}, ok) == "[ddb2os.sigv4.bad_method] HTTP method \"GE T\" is not an HTTP token");
    CHECK(sign_error({"GET", "https://h/", {{"", "v"}}, {}}, ok) == "[ddb2os.sigv4.bad_header] header name is empty");
    CHECK(sign_error({"GET", "https://h/", {{"My Header", "v"}}, {}}, ok) ==
          "[ddb2os.sigv4.bad_header] header name \"My Header\" is not an HTTP token");
    CHECK(sign_error({"GET", "https://h/", {{"Host:", "v"}}, {}}, ok) ==
          "[ddb2os.sigv4.bad_header] header name \"Host:\" is not an HTTP token");
    // Bytes that are not UTF-8 (a name given as Python bytes) are quoted as U+FFFD: a message is valid UTF-8.
    CHECK(sign_error({"GET", "https://h/", {{"X-\xff\xc3", "v"}}, {}}, ok) ==
          "[ddb2os.sigv4.bad_header] header name \"X-\xEF\xBF\xBD\xEF\xBF\xBD\" is not an HTTP token");
    CHECK(sign_error({"GET", "https://h/", {{"X-\xc3\xa9", "v"}}, {}}, ok) ==
          "[ddb2os.sigv4.bad_header] header name \"X-\xc3\xa9\" is not an HTTP token");
    for (const char* bad : {"", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
                            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8550", "UNSIGNED-PAYLOAD"}) {
        CAPTURE(bad);
        CHECK(sign_error({"GET", "https://h/", {}, sigv4::payload::sha256_hex(bad)}, ok) ==
              "[ddb2os.sigv4.bad_payload_hash] precomputed payload hash is not 64 lower-case hex digits");
    }
    CHECK(sign_error({"GET", "https://h/", {}, {}}, {"", "es", at(0)}) == "[ddb2os.sigv4.bad_scope] region is empty");
    CHECK(sign_error({"GET", "https://h/", {}, {}}, {"us-east-1", "", at(0)}) == "[ddb2os.sigv4.bad_scope] service is empty");
    sigv4::signing_params presign = ok;
    presign.opts.location = sigv4::signature_location::query_string;
    presign.opts.expires = std::chrono::seconds(0);
    CHECK(sign_error({"GET", "https://h/", {}, {}}, presign) ==
          "[ddb2os.sigv4.bad_expiry] presigned URL expiry must be 1 to 604800 seconds, not 0");
    presign.opts.expires = std::chrono::seconds(604801);
    CHECK(sign_error({"GET", "https://h/", {}, {}}, presign) ==
          "[ddb2os.sigv4.bad_expiry] presigned URL expiry must be 1 to 604800 seconds, not 604801");
    sigv4::signing_params headers_only = ok;
    headers_only.opts.expires = std::chrono::seconds(0);  // ignored outside query mode
    CHECK(sign_error({"GET", "https://h/", {}, {}}, headers_only) == "no error");
    CHECK(sign_error({"GET", "https://h/", {}, {}}, {"us-east-1", "es", at(-1)}) ==
          "[ddb2os.sigv4.bad_time] signing time is outside the years 1970 to 9999");
    // (A time_point of nanoseconds ends in 2262: the upper bound is reachable in seconds only.)
    CHECK(error_of([] { sigv4::detail::format_amz_date(std::int64_t{253402300800}); }) ==
          "[ddb2os.sigv4.bad_time] signing time is outside the years 1970 to 9999");

    try {
        sigv4::sign({"GET", "/", {}, {}}, example_creds, ok);
        FAIL("no error");
    } catch (const ddb2os::error& e) {
        CHECK(e.id() == "sigv4.no_host");
        CHECK(e.message() == "request has no Host header and its URL has no host");
    }
}
