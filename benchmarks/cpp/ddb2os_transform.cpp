// ddb2os_transform: the transform benchmark's C++ competitor (benchmarks/run_transform.py's hook).
//
//   ddb2os_transform FILE ITERATIONS [--warmup N] [--out PATH] [--keys TABLE=PK[,SK]]...
//
// Reads FILE (a DynamoDB Streams event as Lambda delivers it) into memory, then times ITERATIONS calls of
// ddb2os::build_bulk on those raw bytes (process start-up and file reading excluded). Prints one JSON line
// like node_ref/transform.js: records, the median and minimum wall and process-CPU seconds per iteration,
// records/s and input MB/s (1 MB = 1e6 bytes) from the median wall time, and the SHA-256 of the output (every
// body concatenated), which --out writes for benchmarks/check.py.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <ddb2os/ddb2os.hpp>

#include "bench_util.hpp"

namespace {

volatile std::size_t sink;


}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s FILE ITERATIONS [--warmup N] [--out PATH] [--keys TABLE=PK[,SK]]...\n", argv[0]);
        return 2;
    }
    const char* file = argv[1];
    const int iterations = std::max(1, std::atoi(argv[2]));
    int warmup = 3;
    const char* out_path = nullptr;
    ddb2os::bulk_options options;
    for (int i = 3; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) {
            std::fprintf(stderr, "%s needs a value\n", a.c_str());
            return 2;
        }
        if (a == "--warmup") {
            warmup = std::atoi(argv[++i]);
        } else if (a == "--out") {
            out_path = argv[++i];
        } else if (a == "--keys") {
            if (!bench::parse_keys(argv[++i], options)) {
                std::fprintf(stderr, "--keys wants TABLE=PK[,SK], not %s\n", argv[i]);
                return 2;
            }
        } else {
            std::fprintf(stderr, "unknown argument %s\n", a.c_str());
            return 2;
        }
    }

    const std::string data = bench::read_file(file);

    // One untimed run for the output, the counts and the check.
    const ddb2os::bulk_result first = ddb2os::build_bulk(data, options);
    std::string output;
    for (const auto& body : first.bodies) output += body.data;
    for (const auto& e : first.errors) std::fprintf(stderr, "%s\n", e.to_json().c_str());
    if (out_path != nullptr) {
        std::FILE* f = std::fopen(out_path, "wb");
        if (f == nullptr || std::fwrite(output.data(), 1, output.size(), f) != output.size() || std::fclose(f) != 0) {
            std::fprintf(stderr, "cannot write %s\n", out_path);
            return 2;
        }
    }
    const std::string digest = ddb2os::detail::hex(ddb2os::detail::sha256(output));

    std::vector<double> wall, cpu;
    bench::time_runs(
        [&] {
            const ddb2os::bulk_result r = ddb2os::build_bulk(data, options);
            sink = r.bodies.size() + r.actions;
        },
        warmup, iterations, wall, cpu);

    const double median = bench::median_of(wall);
    const double records = static_cast<double>(first.records.size());
    std::printf(
        "{\"competitor\":\"ddb2os C++ bytes\",\"file\":\"%s\",\"records\":%zu,\"input_bytes\":%zu,"
        "\"output_bytes\":%zu,\"actions\":%zu,\"superseded\":%zu,\"errors\":%zu,\"iterations\":%d,"
        "\"seconds_median\":%.9g,\"seconds_min\":%.9g,\"cpu_seconds_median\":%.9g,\"cpu_seconds_min\":%.9g,"
        "\"records_per_s\":%.6g,\"mb_per_s\":%.6g,\"sha256\":\"%s\"}\n",
        file, first.records.size(), data.size(), output.size(), first.actions, first.superseded, first.errors.size(),
        iterations, median, bench::min_of(wall), bench::median_of(cpu), bench::min_of(cpu), records / median,
        static_cast<double>(data.size()) / 1e6 / median, digest.c_str());
    return 0;
}
