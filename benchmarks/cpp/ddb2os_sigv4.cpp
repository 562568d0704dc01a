// ddb2os_sigv4: SigV4 signing throughput of ddb2os::sigv4, and OpenSSL's SHA-256 as the ceiling.
//
//   ddb2os_sigv4 [--seconds S] [--body-bytes N] [--only CASE]
//
// Cases (the same requests benchmarks/run_all.py signs with botocore, requests-aws4auth and ddb2os.sign):
//   signer_get   GET https://search-bench.us-east-1.es.amazonaws.com/ , empty body, with a sigv4::signer
//                (bound to credentials, region and service like botocore's SigV4Auth; the clock read per call)
//   signer_bulk  POST .../_bulk, Content-Type application/x-ndjson, an N-byte body (default 5 MiB), signer
//   get          the GET with sigv4::sign() and a signing_key_cache
//   get_nocache  the same without a cache (the four HMACs of the key derivation every time)
//   bulk         the POST with sigv4::sign() and the cache
//   sha256       OpenSSL SHA-256 of the same N bytes (the ceiling of the bulk cases)
// Prints one JSON line: per case, the median wall and CPU seconds per operation and operations/s (from the
// median CPU time), plus the Authorization header of each request signed at 2024-01-02T03:04:05Z, which the
// harness checks against botocore's.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <ddb2os/ddb2os.hpp>

#include "bench_util.hpp"

namespace {

namespace sigv4 = ddb2os::sigv4;

volatile std::size_t sink;

const char* const host_url = "https://search-bench.us-east-1.es.amazonaws.com";

// b'{"index":{}}\n{"field":"value"}\n' repeated, cut to n bytes (run_all.py builds the same bytes).
std::string make_body(std::size_t n) {
    const std::string unit = "{\"index\":{}}\n{\"field\":\"value\"}\n";
    std::string s;
    s.reserve(n + unit.size());
    while (s.size() < n) s += unit;
    s.resize(n);
    return s;
}

struct result {
    const char* name;
    double wall_median, cpu_median, cpu_min;
    long batches;
    int batch;
    std::string authorization;
};

// Runs `fn` in batches of `batch` calls until `seconds` of CPU time have passed (at least 5 batches).
template <class F>
result measure(const char* name, int batch, double seconds, F&& fn) {
    for (int i = 0; i < batch; ++i) fn();  // warm-up
    std::vector<double> wall, cpu;
    const double start = bench::cpu_now();
    while (wall.size() < 5 || bench::cpu_now() - start < seconds) {
        const double c0 = bench::cpu_now();
        const double t0 = bench::wall_now();
        for (int i = 0; i < batch; ++i) fn();
        const double t1 = bench::wall_now();
        cpu.push_back((bench::cpu_now() - c0) / batch);
        wall.push_back((t1 - t0) / batch);
    }
    return {name, bench::median_of(wall), bench::median_of(cpu), bench::min_of(cpu), static_cast<long>(wall.size()),
            batch, {}};
}

std::string authorization_of(const sigv4::signing_result& r) {
    for (const auto& f : r.headers)
        if (f.name == "Authorization") return f.value;
    return {};
}

}  // namespace

int main(int argc, char** argv) {
    double seconds = 1.0;
    std::size_t body_bytes = 5u << 20;
    std::string only;  // one case (for a profiler)
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--seconds") == 0) {
            seconds = std::atof(argv[i + 1]);
        } else if (std::strcmp(argv[i], "--only") == 0) {
            only = argv[i + 1];
        } else if (std::strcmp(argv[i], "--body-bytes") == 0) {
            body_bytes = static_cast<std::size_t>(std::atoll(argv[i + 1]));
        } else {
            std::fprintf(stderr, "usage: %s [--seconds S] [--body-bytes N] [--only CASE]\n", argv[0]);
            return 2;
        }
    }

    const ddb2os::credentials creds("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    const std::string body = make_body(body_bytes);
    const std::string get_url = std::string(host_url) + "/";
    const std::string bulk_url = std::string(host_url) + "/_bulk";

    sigv4::signing_params params;
    params.region = "us-east-1";
    params.service = "es";
    params.time = std::chrono::system_clock::time_point(std::chrono::seconds(1704164645));  // 2024-01-02T03:04:05Z
    params.opts = sigv4::options::for_service("es");

    sigv4::request get_req;
    get_req.method = "GET";
    get_req.url = get_url;

    sigv4::request bulk_req;
    bulk_req.method = "POST";
    bulk_req.url = bulk_url;
    bulk_req.headers.push_back({"Content-Type", "application/x-ndjson"});
    bulk_req.body = sigv4::payload::bytes(body);

    sigv4::signing_key_cache cache;
    std::vector<result> results;

    const auto wanted = [&](const char* name) { return only.empty() || only == name; };
    const auto sign_case = [&](const char* name, int batch, const sigv4::request& req, sigv4::signing_key_cache* c) {
        if (!wanted(name)) return;
        results.push_back(measure(name, batch, seconds, [&] {
            const sigv4::signing_result r = sigv4::sign(req, creds, params, c);
            sink = r.signature.size();
        }));
        results.back().authorization = authorization_of(sigv4::sign(req, creds, params, c));
    };
    sigv4::signer signer(creds, "us-east-1", "es");
    const auto signer_case = [&](const char* name, int batch, const sigv4::request& req) {
        if (!wanted(name)) return;
        results.push_back(measure(name, batch, seconds, [&] {
            sink = signer.sign(req, std::chrono::system_clock::now()).authorization.size();
        }));
        results.back().authorization = std::string(signer.sign(req, params.time).authorization);
    };
    signer_case("signer_get", 2000, get_req);
    signer_case("signer_bulk", 1, bulk_req);
    sign_case("get", 2000, get_req, &cache);
    sign_case("get_nocache", 1000, get_req, nullptr);
    sign_case("bulk", 1, bulk_req, &cache);
    if (wanted("sha256"))
        results.push_back(measure("sha256", 1, seconds, [&] {
            const auto d = ddb2os::detail::sha256(body);
            sink = d[0];
        }));

    std::printf("{\"competitor\":\"ddb2os C++\",\"body_bytes\":%zu,\"cases\":{", body.size());
    for (std::size_t i = 0; i < results.size(); ++i) {
        const result& r = results[i];
        std::printf("%s\"%s\":{\"seconds_median\":%.9g,\"cpu_seconds_median\":%.9g,\"cpu_seconds_min\":%.9g,"
                    "\"per_s\":%.6g,\"batches\":%ld,\"batch\":%d,\"authorization\":\"%s\"}",
                    i ? "," : "", r.name, r.wall_median, r.cpu_median, r.cpu_min, 1.0 / r.cpu_median, r.batches,
                    r.batch, r.authorization.c_str());
    }
    std::printf("}}\n");
    return 0;
}
