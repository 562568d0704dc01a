// ddb2os_post: the end-to-end benchmark's ceiling: POST ddb2os's prebuilt _bulk bodies with one libcurl handle.
//
//   ddb2os_post URL EVENTS.jsonl [--index-template T] [--keys TABLE=PK[,SK]]... [--external-versions]
//               [--limit-events N] [--accept-encoding]   (ask for compressed responses, as ddb2os's transport does)
//               [--first-body-bytes N]   (cut each event's first body at N bytes, as sync_engine does)
//
// EVENTS.jsonl holds one DynamoDB Streams event per line. Each event is turned into bodies with
// ddb2os::build_bulk (not timed), and the bodies are POSTed to URL + ddb2os::bulk_request_target() (as the sync
// engine does: responses filtered to what it reads; timed: wall clock around the POSTs only)
// over one kept-alive connection, as tight a loop as an HTTP client gets. Prints one JSON line: events, bodies,
// actions, the POST seconds, the build seconds, and how many responses were not 200 or had "errors":true.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <curl/curl.h>

#include <ddb2os/ddb2os.hpp>

#include "bench_util.hpp"

namespace {

std::size_t collect(char* p, std::size_t size, std::size_t n, void* user) {
    static_cast<std::string*>(user)->append(p, size * n);
    return size * n;
}


}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr,
                     "usage: %s URL EVENTS.jsonl [--index-template T] [--keys TABLE=PK[,SK]]... [--external-versions] "
                     "[--limit-events N] [--accept-encoding] [--first-body-bytes N]\n",
                     argv[0]);
        return 2;
    }
    const std::string url = std::string(argv[1]) + ddb2os::bulk_request_target();  // the sync engine's target
    const char* events_path = argv[2];
    ddb2os::bulk_options options;
    std::size_t limit_events = 0;
    bool accept_encoding = false;
    for (int i = 3; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--external-versions") {
            options.external_versions = true;
        } else if (a == "--accept-encoding") {
            accept_encoding = true;
        } else if (a == "--first-body-bytes" && i + 1 < argc) {
            options.first_max_bytes = static_cast<std::size_t>(std::atoll(argv[++i]));
        } else if (a == "--limit-events" && i + 1 < argc) {
            limit_events = static_cast<std::size_t>(std::atoll(argv[++i]));
        } else if (a == "--index-template" && i + 1 < argc) {
            options.index = argv[++i];
        } else if (a == "--keys" && i + 1 < argc && bench::parse_keys(argv[i + 1], options)) {
            ++i;
        } else {
            std::fprintf(stderr, "bad argument %s\n", a.c_str());
            return 2;
        }
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL* h = curl_easy_init();
    if (h == nullptr) return 3;
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/x-ndjson");
    headers = curl_slist_append(headers, "Expect:");
    std::string response;
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &response);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    if (accept_encoding) curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");

    std::ifstream in(events_path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "cannot open %s\n", events_path);
        return 2;
    }
    std::string line;
    std::size_t events = 0, bodies = 0, actions = 0, failed_requests = 0, failed_bodies = 0, record_errors = 0;
    double post_seconds = 0, build_seconds = 0, post_cpu_seconds = 0;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        if (limit_events != 0 && events == limit_events) break;
        ++events;
        const double b0 = bench::cpu_now();
        const ddb2os::bulk_result r = ddb2os::build_bulk(line, options);
        build_seconds += bench::cpu_now() - b0;
        record_errors += r.errors.size();
        for (const auto& body : r.bodies) {
            ++bodies;
            actions += body.records.size();
            response.clear();
            const double c0 = bench::cpu_now();
            const double t0 = bench::wall_now();
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data.data());
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.data.size()));
            const CURLcode rc = curl_easy_perform(h);
            post_seconds += bench::wall_now() - t0;
            post_cpu_seconds += bench::cpu_now() - c0;
            long status = 0;
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
            if (rc != CURLE_OK || status != 200) {
                ++failed_requests;
                std::fprintf(stderr, "POST failed: %s, HTTP %ld: %.300s\n", curl_easy_strerror(rc), status,
                             response.c_str());
            } else if (response.find("\"errors\":false") == std::string::npos) {
                ++failed_bodies;
            }
        }
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    std::printf("{\"competitor\":\"ceiling libcurl\",\"events\":%zu,\"bodies\":%zu,\"actions\":%zu,"
                "\"post_seconds\":%.6f,\"post_cpu_seconds\":%.6f,\"build_cpu_seconds\":%.6f,\"failed_requests\":%zu,"
                "\"bodies_with_errors\":%zu,\"record_errors\":%zu}\n",
                events, bodies, actions, post_seconds, post_cpu_seconds, build_seconds, failed_requests,
                failed_bodies, record_errors);
    return failed_requests == 0 ? 0 : 1;
}
