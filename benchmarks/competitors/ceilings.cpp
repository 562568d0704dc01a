// Ceilings for the transform benchmark: what no transform of the same bytes can beat.
//
//   ceilings MODE EVENT.json ITERATIONS [--warmup N]
//   MODE: memcpy | nlohmann | simdjson
//
// memcpy    copies the event's bytes into another buffer (the floor of any pass over the input)
// nlohmann  nlohmann::json::parse of the bytes into a DOM (what the core's nlohmann adapter starts from)
// simdjson  simdjson DOM parse (the fastest full parse there is; On-Demand would be lazier)
//
// Prints one JSON line like node_ref/transform.js: records/s and input MB/s (1 MB = 1e6 bytes) from the median
// iteration (wall clock), and the median/min wall and process CPU seconds per iteration. Built by benchmarks/run_transform.py with g++ -O3 -DNDEBUG (-lsimdjson when available).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#if __has_include(<nlohmann/json.hpp>)
#include <nlohmann/json.hpp>
#define HAVE_NLOHMANN 1
#endif
#if defined(WITH_SIMDJSON) && __has_include(<simdjson.h>)
#include <simdjson.h>
#define HAVE_SIMDJSON 1
#endif

namespace {

volatile unsigned long sink;

double cpu_now() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double median_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[(v.size() - 1) / 2];
}

std::string read_file(const char* path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        std::fprintf(stderr, "cannot open %s\n", path);
        std::exit(2);
    }
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Counts records without a parser: occurrences of "eventName" (one per record in a stream event).
std::size_t count_records(const std::string& data) {
    std::size_t n = 0;
    const std::string needle = "\"eventName\"";
    for (std::size_t pos = data.find(needle); pos != std::string::npos; pos = data.find(needle, pos + 1)) ++n;
    return n;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s memcpy|nlohmann|simdjson EVENT.json ITERATIONS [--warmup N]\n", argv[0]);
        return 2;
    }
    const std::string mode = argv[1];
    const char* file = argv[2];
    const int iterations = std::max(1, std::atoi(argv[3]));
    int warmup = 2;
    for (int i = 4; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--warmup") == 0) warmup = std::atoi(argv[i + 1]);

    const std::string data = read_file(file);
    const std::size_t records = count_records(data);
    std::vector<char> dst(data.size());

    auto once = [&]() -> unsigned long {
        if (mode == "memcpy") {
            std::memcpy(dst.data(), data.data(), data.size());
            return static_cast<unsigned char>(dst[dst.size() / 2]);
        }
#ifdef HAVE_NLOHMANN
        if (mode == "nlohmann") {
            auto j = nlohmann::json::parse(data);
            return j["Records"].size();
        }
#endif
#ifdef HAVE_SIMDJSON
        if (mode == "simdjson") {
            static simdjson::dom::parser parser;
            simdjson::padded_string padded(data);
            simdjson::dom::element doc = parser.parse(padded);
            return simdjson::dom::array(doc["Records"]).size();
        }
#endif
        std::fprintf(stderr, "mode %s not available in this build\n", mode.c_str());
        std::exit(3);
    };

    for (int i = 0; i < warmup; ++i) sink = once();
    std::vector<double> times, cpu_times;
    times.reserve(iterations);
    cpu_times.reserve(iterations);
    for (int i = 0; i < iterations; ++i) {
        const double c0 = cpu_now();
        auto t0 = std::chrono::steady_clock::now();
        sink = once();
        auto t1 = std::chrono::steady_clock::now();
        cpu_times.push_back(cpu_now() - c0);
        times.push_back(std::chrono::duration<double>(t1 - t0).count());
    }
    const double median = median_of(times);
    const double cpu_median = median_of(cpu_times);
    std::printf(
        "{\"competitor\":\"%s\",\"file\":\"%s\",\"records\":%zu,\"input_bytes\":%zu,\"output_bytes\":0,"
        "\"iterations\":%d,\"seconds_median\":%.9g,\"seconds_min\":%.9g,\"cpu_seconds_median\":%.9g,"
        "\"cpu_seconds_min\":%.9g,\"records_per_s\":%.6g,\"mb_per_s\":%.6g,\"sha256\":null}\n",
        mode.c_str(), file, records, data.size(), iterations, median,
        *std::min_element(times.begin(), times.end()), cpu_median,
        *std::min_element(cpu_times.begin(), cpu_times.end()),
        static_cast<double>(records) / median, static_cast<double>(data.size()) / 1e6 / median);
    return 0;
}
