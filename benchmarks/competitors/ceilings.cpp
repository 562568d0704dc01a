// Ceilings for the transform benchmark: what no transform of the same bytes can beat.
//
//   ceilings MODE EVENT.json ITERATIONS [--warmup N]
//   MODE: memcpy | nlohmann | simdjson | stage1 | ondemand
//
// memcpy    copies the event's bytes into another buffer (the floor of any pass over the input)
// nlohmann  nlohmann::json::parse of the bytes into a DOM (what the core's nlohmann adapter starts from)
// simdjson  simdjson DOM parse (the fastest full parse there is)
// stage1    simdjson's stage 1 alone (ondemand::parser::iterate): the structural index and UTF-8 check
// ondemand  a bound on any one-pass transform: simdjson On Demand (stage 1, then a walk that validates
//           only what it reads) writing each record's bulk lines, with the checks and rewriting a real
//           transform needs left out (see ondemand_bulk below)
//
// Prints one JSON line like node_ref/transform.js: records/s and input MB/s (1 MB = 1e6 bytes) from the median
// iteration (wall clock), and the median/min wall and process CPU seconds per iteration. Built by
// benchmarks/run_transform.py with g++ -O3 -DNDEBUG (-lsimdjson when available).
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

#ifdef HAVE_SIMDJSON
// The "ondemand" bound. Each record becomes its action line and, for INSERT and MODIFY, NewImage as a
// plain document: S, B and BOOL values and SS and BS elements are copied as their raw tokens, N values
// and NS elements as the raw text inside their quotes, NULL as null, M and L recursively; the _id joins
// the Keys' raw values with '|'; the version is SequenceNumber's text; OldImage and every other member
// are skipped unread. Left out, so that any real transform is slower: validating escapes and numbers,
// canonical numbers, mixed lists, escaping '|' in ids, superseded records, the 32-level limit, messages
// naming where input is bad, the action line before the document (a one-pass writer meets
// SequenceNumber after NewImage; here the action line follows it).
struct bound_writer {
    char* p;
    void put(char c) { *p++ = c; }
    void put(std::string_view v) {
        std::memcpy(p, v.data(), v.size());
        p += v.size();
    }
};

std::string_view token(std::string_view raw) {  // raw_json_token() runs on to the next token
    while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' || raw.back() == '\t'))
        raw.remove_suffix(1);
    return raw;
}

std::string_view inside(std::string_view quoted) { return quoted.substr(1, quoted.size() - 2); }

void bound_attribute(simdjson::ondemand::value v, bound_writer& w);

void bound_map(simdjson::ondemand::object o, bound_writer& w) {
    w.put('{');
    bool first = true;
    for (auto field : o) {
        if (!first) w.put(',');
        first = false;
        w.put('"');
        w.put(std::string_view(field.unescaped_key()));
        w.put("\":");
        bound_attribute(field.value(), w);
    }
    w.put('}');
}

void bound_attribute(simdjson::ondemand::value v, bound_writer& w) {
    for (auto field : v.get_object()) {
        const std::string_view type = field.unescaped_key();
        simdjson::ondemand::value x = field.value();
        if (type == "N") {
            w.put(inside(token(x.raw_json_token())));
        } else if (type == "M") {
            bound_map(x.get_object(), w);
        } else if (type == "L" || type == "SS" || type == "NS" || type == "BS") {
            w.put('[');
            bool first = true;
            for (auto e : x.get_array()) {
                if (!first) w.put(',');
                first = false;
                if (type == "L")
                    bound_attribute(e.value(), w);
                else if (type == "NS")
                    w.put(inside(token(e.raw_json_token())));
                else
                    w.put(token(e.raw_json_token()));
            }
            w.put(']');
        } else if (type == "NULL") {  // its value is skipped unread
            w.put("null");
        } else {  // S, B, BOOL: a container's raw_json_token() would be its bracket only
            w.put(token(x.raw_json_token()));
        }
    }
}

// Writes the event's bulk lines at out; returns the records read and sets *end.
std::size_t ondemand_bulk(simdjson::ondemand::parser& parser, const simdjson::padded_string& json, char* out,
                          char** end) {
    bound_writer w{out};
    std::size_t n = 0;
    std::string id;
    auto doc = parser.iterate(json);
    for (auto rec : doc["Records"].get_array()) {
        std::string_view name, seq;
        bool wrote_document = false;
        id.clear();
        for (auto member : rec.get_object()) {
            const std::string_view key = member.unescaped_key();
            if (key == "eventName") {
                name = member.value().get_string();
            } else if (key == "dynamodb") {
                for (auto d : member.value().get_object()) {
                    const std::string_view dk = d.unescaped_key();
                    if (dk == "Keys") {
                        for (auto k : d.value().get_object()) {
                            if (!id.empty()) id += '|';
                            for (auto typed : k.value().get_object())
                                id += inside(token(typed.value().raw_json_token()));
                        }
                    } else if (dk == "NewImage" && name != "REMOVE") {
                        bound_map(d.value().get_object(), w);
                        w.put('\n');
                        wrote_document = true;
                    } else if (dk == "SequenceNumber") {
                        seq = inside(token(d.value().raw_json_token()));
                    }
                }
            }
        }
        w.put(wrote_document ? "{\"index\":{\"_index\":\"bound\",\"_id\":\""
                             : "{\"delete\":{\"_index\":\"bound\",\"_id\":\"");
        w.put(id);
        w.put("\",\"version\":");
        w.put(seq);
        w.put(",\"version_type\":\"external\"}}\n");
        ++n;
    }
    *end = w.p;
    return n;
}
#endif

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s memcpy|nlohmann|simdjson|stage1|ondemand EVENT.json ITERATIONS [--warmup N]\n",
                     argv[0]);
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
    std::size_t output_bytes = 0;

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
        if (mode == "stage1") {
            static simdjson::ondemand::parser parser;
            simdjson::padded_string padded(data);
            auto doc = parser.iterate(padded);
            if (doc.error()) {
                std::fprintf(stderr, "stage 1: %s\n", simdjson::error_message(doc.error()));
                std::exit(4);
            }
            return padded.size();
        }
        if (mode == "ondemand") {
            static simdjson::ondemand::parser parser;
            simdjson::padded_string padded(data);
            // A record's lines are never longer than its bytes plus the action line's 90 and its id.
            if (dst.size() < 2 * data.size() + 4096) dst.resize(2 * data.size() + 4096);
            char* end = nullptr;
            const std::size_t n = ondemand_bulk(parser, padded, dst.data(), &end);
            if (n != records) {
                std::fprintf(stderr, "ondemand read %zu records of %zu\n", n, records);
                std::exit(4);
            }
            output_bytes = static_cast<std::size_t>(end - dst.data());
            return n;
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
        "{\"competitor\":\"%s\",\"file\":\"%s\",\"records\":%zu,\"input_bytes\":%zu,\"output_bytes\":%zu,"
        "\"iterations\":%d,\"seconds_median\":%.9g,\"seconds_min\":%.9g,\"cpu_seconds_median\":%.9g,"
        "\"cpu_seconds_min\":%.9g,\"records_per_s\":%.6g,\"mb_per_s\":%.6g,\"sha256\":null}\n",
        mode.c_str(), file, records, data.size(), output_bytes, iterations, median,
        *std::min_element(times.begin(), times.end()), cpu_median,
        *std::min_element(cpu_times.begin(), cpu_times.end()),
        static_cast<double>(records) / median, static_cast<double>(data.size()) / 1e6 / median);
    return 0;
}
