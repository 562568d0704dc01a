// ddb2os: the command-line tool.
//   ddb2os convert [options] < event.json   bulk bodies (NDJSON) on stdout, bad records on stderr
// Exit status: 0 every record converted, 1 some records failed, 2 usage or input-framing error.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include <ddb2os/ddb2os.hpp>

namespace {

constexpr const char* usage_text =
    "usage: ddb2os convert [--index NAME | --index-template T] [--keys TABLE=PK[,SK]]...\n"
    "                      [--numbers exact|string|double] [--lists stringify|keep]\n"
    "                      [--max-bytes N] [--max-actions N] [--skip-ttl-deletes] < event.json\n"
    "       ddb2os --version\n"
    "\n"
    "Reads a DynamoDB Streams event as Lambda delivers it ({\"Records\": [...]}) on stdin and\n"
    "writes OpenSearch _bulk bodies (NDJSON) to stdout, and one JSON line per bad record to\n"
    "stderr. Exit status: 0 all records converted, 1 some failed, 2 usage or input error.\n";

[[noreturn]] void usage_error(const std::string& message) {
    std::cerr << "ddb2os: " << message << "\n" << usage_text;
    std::exit(2);
}

std::size_t parse_size(std::string_view flag, const std::string& text) {
    std::size_t pos = 0;
    unsigned long long v = 0;
    try {
        v = std::stoull(text, &pos);
    } catch (...) {
        pos = 0;
    }
    if (pos != text.size() || text.empty() || text[0] == '-')
        usage_error(std::string(flag) + " needs a whole number, not \"" + text + "\"");
    return static_cast<std::size_t>(v);
}

int convert(int argc, char** argv) {
    ddb2os::bulk_options opt;
    bool index_set = false;
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage_error(std::string(arg) + " needs a value");
            return argv[++i];
        };
        if (arg == "--index" || arg == "--index-template") {
            if (index_set) usage_error("give one of --index and --index-template");
            index_set = true;
            opt.index = value();
            if (arg == "--index-template" && opt.index.find("{table}") == std::string::npos)
                usage_error("--index-template needs {table} in it");
            if (arg == "--index" && opt.index.find("{table}") != std::string::npos)
                usage_error("--index takes a fixed name; use --index-template for {table}");
        } else if (arg == "--keys") {
            const std::string spec = value();
            std::string table;
            ddb2os::key_schema schema;
            if (!ddb2os::parse_key_schema_spec(spec, table, schema))
                usage_error("--keys takes TABLE=PK or TABLE=PK,SK, not \"" + spec + "\"");
            opt.key_schemas[table] = std::move(schema);
        } else if (arg == "--numbers") {
            const std::string v = value();
            if (!ddb2os::parse_number_mode(v, opt.numbers)) usage_error("--numbers is exact, string or double, not \"" + v + "\"");
        } else if (arg == "--lists") {
            const std::string v = value();
            if (!ddb2os::parse_list_policy(v, opt.lists)) usage_error("--lists is stringify or keep, not \"" + v + "\"");
        } else if (arg == "--max-bytes") {
            opt.max_bytes = parse_size(arg, value());
        } else if (arg == "--max-actions") {
            opt.max_actions = parse_size(arg, value());
        } else if (arg == "--skip-ttl-deletes") {
            opt.skip_ttl_deletes = true;
        } else if (arg == "-h" || arg == "--help") {
            std::cout << usage_text;
            return 0;
        } else {
            usage_error("unknown option \"" + std::string(arg) + "\"");
        }
    }
    try {
        ddb2os::validate(opt);
    } catch (const ddb2os::error& e) {
        usage_error(e.what());
    }

    std::string input;
    {
        char buf[1 << 16];
        std::size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) input.append(buf, n);
        if (std::ferror(stdin)) {
            std::cerr << "ddb2os: cannot read standard input\n";
            return 2;
        }
    }
    ddb2os::bulk_result result;
    try {
        result = ddb2os::build_bulk(input, opt);
    } catch (const ddb2os::error& e) {
        std::cerr << "ddb2os: " << e.what() << "\n";
        return 2;
    }
    for (const auto& body : result.bodies) std::fwrite(body.data.data(), 1, body.data.size(), stdout);
    std::fflush(stdout);
    for (const auto& e : result.errors) std::cerr << e.to_json() << "\n";
    return result.errors.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 2 && std::string_view(argv[1]) == "--version") {
        std::cout << "ddb2os " << ddb2os::version_string << "\n";
        return 0;
    }
    if (argc >= 2 && (std::string_view(argv[1]) == "-h" || std::string_view(argv[1]) == "--help")) {
        std::cout << usage_text;
        return 0;
    }
    if (argc < 2 || std::string_view(argv[1]) != "convert") usage_error(argc < 2 ? "no command given" : "unknown command \"" + std::string(argv[1]) + "\"");
    return convert(argc, argv);
}
