// bench_util.hpp: what the benchmark programs share: clocks, medians, file reading, one JSON line.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <ddb2os/bulk.hpp>

namespace bench {

inline double cpu_now() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

inline double wall_now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double median_of(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[(v.size() - 1) / 2];
}

inline double min_of(const std::vector<double>& v) { return v.empty() ? 0 : *std::min_element(v.begin(), v.end()); }

// --keys TABLE=PK[,SK], through the core's own parser.
inline bool parse_keys(const std::string& arg, ddb2os::bulk_options& options) {
    std::string table;
    ddb2os::key_schema schema;
    if (!ddb2os::parse_key_schema_spec(arg, table, schema)) return false;
    options.key_schemas[table] = std::move(schema);
    return true;
}

inline std::string read_file(const char* path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        std::fprintf(stderr, "cannot open %s\n", path);
        std::exit(2);
    }
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Per-iteration wall and process-CPU seconds of `fn`, after `warmup` untimed calls.
template <class F>
void time_runs(F&& fn, int warmup, int iterations, std::vector<double>& wall, std::vector<double>& cpu) {
    for (int i = 0; i < warmup; ++i) fn();
    wall.clear();
    cpu.clear();
    wall.reserve(static_cast<std::size_t>(iterations));
    cpu.reserve(static_cast<std::size_t>(iterations));
    for (int i = 0; i < iterations; ++i) {
        const double c0 = cpu_now();
        const double t0 = wall_now();
        fn();
        const double t1 = wall_now();
        cpu.push_back(cpu_now() - c0);
        wall.push_back(t1 - t0);
    }
}

}  // namespace bench
