// ddb2os: the command-line tool.
//   ddb2os convert [options] [event.json]   bulk bodies (NDJSON) on stdout, bad records on stderr
// Exit status: 0 every record converted, 1 some records failed, 2 usage, input or output error.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <sys/stat.h>
#include <exception>
#include <iostream>
#include <limits>
#include <new>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <ddb2os/ddb2os.hpp>

namespace {

constexpr const char* usage_text =
    "usage: ddb2os convert [--index NAME | --index-template T] [--keys TABLE=PK[,SK]]...\n"
    "                      [--numbers exact|string|double] [--lists stringify|keep]\n"
    "                      [--max-bytes N] [--max-actions N] [--skip-ttl-deletes]\n"
    "                      [--include NAME[,NAME]...]... [--exclude NAME[,NAME]...]...\n"
    "                      [--versions] [--out PREFIX] [--] [EVENT_FILE | -]\n"
    "       ddb2os --version\n"
    "\n"
    "Reads a DynamoDB Streams event as Lambda delivers it ({\"Records\": [...]}, or a bare array of\n"
    "records) from EVENT_FILE or stdin and writes OpenSearch _bulk bodies (NDJSON) to stdout, one\n"
    "after another, or with --out each body (cut at --max-bytes and --max-actions) to its own file\n"
    "PREFIX-1.ndjson, PREFIX-2.ndjson, ... (their names on stdout); one JSON line per bad record\n"
    "goes to stderr. -- ends the options (a file named -x).\n"
    "--include: the only top-level attributes documents keep; --exclude: top-level attributes left\n"
    "out of every document (both by exact name).\n"
    "--versions: each action carries version_type=external_gte from ApproximateCreationDateTime,\n"
    "as the Lambda handler's do. Exit status: 0 all records converted, 1 some failed, 2 usage,\n"
    "input or output error.\n";

[[noreturn]] void usage_error(const std::string& message) {
    std::cerr << "ddb2os: " << message << "\n" << usage_text;
    std::exit(2);
}

std::size_t parse_size(std::string_view flag, const std::string& text) {
    std::size_t pos = 0;
    unsigned long long v = 0;
    bool too_large = false;
    try {
        v = std::stoull(text, &pos);
    } catch (const std::out_of_range&) {
        too_large = true;
    } catch (...) {
        pos = 0;
    }
    if (!too_large && (pos != text.size() || text.empty() || text[0] < '0' || text[0] > '9'))
        usage_error(std::string(flag) + " needs a whole number, not \"" + text + "\"");
    if (too_large || v > std::numeric_limits<std::size_t>::max())
        usage_error(std::string(flag) + " is too large: \"" + text + "\"");
    return static_cast<std::size_t>(v);
}

std::string out_name(const std::string& prefix, std::size_t n) { return prefix + "-" + std::to_string(n) + ".ndjson"; }

int convert(int argc, char** argv) {
    ddb2os::bulk_options opt;
    bool index_set = false;
    std::string input_path, out_prefix;
    bool input_given = false;
    bool options_done = false;
    std::set<std::string_view> given_once;
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--" && !options_done) {
            options_done = true;  // what follows is the event file, even if it starts with '-'
            continue;
        }
        // The event file: "-" (stdin), anything not starting with '-', or anything after "--".
        if (options_done || arg.empty() || arg == "-" || arg[0] != '-') {
            if (arg.empty()) usage_error("an event file name is empty");
            if (input_given) usage_error("one event file only, not also \"" + std::string(arg) + "\"");
            input_path = std::string(arg);
            input_given = true;
            continue;
        }
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage_error(std::string(arg) + " needs a value");
            // "--out --versions" is a forgotten value, not a file named --versions.
            if (std::string_view(argv[i + 1]).substr(0, 2) == "--")
                usage_error(std::string(arg) + " needs a value, not the option \"" + argv[i + 1] + "\"");
            return argv[++i];
        };
        // A single-valued option given twice: which one was meant cannot be known (the last won).
        for (const std::string_view once : {"--numbers", "--lists", "--max-bytes", "--max-actions", "--out"})
            if (arg == once && !given_once.insert(once).second) usage_error(std::string(arg) + " is given twice");
        if (arg == "--index" || arg == "--index-template") {
            if (index_set) usage_error("give one of --index and --index-template");
            index_set = true;
            opt.index = value();
            if (opt.index.empty()) usage_error(std::string(arg) + " needs a name, not an empty value");
            if (arg == "--index-template" && opt.index.find("{table}") == std::string::npos)
                usage_error("--index-template needs {table} in it");
            if (arg == "--index" && opt.index.find("{table}") != std::string::npos)
                usage_error("--index takes a fixed name; use --index-template for {table}");
        } else if (arg == "--keys") {
            const std::string spec = value();
            std::string table;
            ddb2os::key_schema schema;
            if (spec.find(';') != std::string::npos)
                usage_error("--keys takes one table (TABLE=PK or TABLE=PK,SK), not \"" + spec + "\": give --keys once per table");
            if (!ddb2os::parse_key_schema_spec(spec, table, schema))
                usage_error("--keys takes TABLE=PK or TABLE=PK,SK, not \"" + spec + "\"");
            if (opt.key_schemas.count(table) != 0) usage_error("--keys gives table \"" + table + "\" twice");
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
        } else if (arg == "--exclude" || arg == "--include") {
            const std::string v = value();
            std::vector<std::string>& into = arg == "--exclude" ? opt.exclude_attributes : opt.include_attributes;
            for (std::size_t at = 0;;) {
                const std::size_t comma = v.find(',', at);
                // Trimmed, as the handler's EXCLUDE_ATTRIBUTES is: "ssn, card" is two names.
                const std::string name(ddb2os::detail::trim_ascii_space(
                    std::string_view(v).substr(at, comma == std::string::npos ? std::string::npos : comma - at)));
                if (name.empty())
                    usage_error(std::string(arg) + " takes attribute names separated by commas, not \"" + v + "\"");
                into.push_back(name);
                if (comma == std::string::npos) break;
                at = comma + 1;
            }
        } else if (arg == "--skip-ttl-deletes") {
            opt.skip_ttl_deletes = true;
        } else if (arg == "--versions") {
            opt.external_versions = true;
        } else if (arg == "--out") {
            out_prefix = value();
            if (out_prefix.empty()) usage_error("--out needs a file name prefix");
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

    // The bodies of an earlier run with the same prefix from number `k` on: older images of the same
    // documents, which a PREFIX-*.ndjson glob would otherwise send after these (after a failed write,
    // or no body at all, too: the files left are this run's and nothing else).
    // Regular files only, up to the first number missing.
    const auto remove_if_regular = [&](std::size_t k) {
        struct stat st {};
        const std::string old = out_name(out_prefix, k);
        return ::lstat(old.c_str(), &st) == 0 && S_ISREG(st.st_mode) && std::remove(old.c_str()) == 0;
    };
    const auto remove_earlier_from = [&](std::size_t k) {
        while (!out_prefix.empty() && remove_if_regular(k)) ++k;
    };
    // Where this run's bodies stop at number `k` (a failed write; no body at all, when the input
    // cannot be read, is not an event, or no memory is left): the earlier run's from `k` on go, a
    // PREFIX-k in the way as something else (a directory) skipped.
    const auto remove_earlier_after_failure = [&](std::size_t k) {
        if (out_prefix.empty()) return;  // no --out: "-1.ndjson" is nobody's body
        remove_if_regular(k);
        remove_earlier_from(k + 1);
    };
    std::string input;
    {
        const bool from_file = !input_path.empty() && input_path != "-";
        std::FILE* in = from_file ? std::fopen(input_path.c_str(), "rb") : stdin;
        const std::string what = from_file ? "\"" + input_path + "\"" : std::string("standard input");
        if (in == nullptr) {
            std::cerr << "ddb2os: cannot open " << what << ": " << std::strerror(errno) << "\n";
            remove_earlier_after_failure(1);
            return 2;
        }
        char buf[1 << 16];
        std::size_t n;
        errno = 0;
        while ((n = std::fread(buf, 1, sizeof buf, in)) > 0) input.append(buf, n);
        const int read_errno = errno;
        const bool failed = std::ferror(in) != 0;
        if (from_file) std::fclose(in);
        if (failed) {
            std::cerr << "ddb2os: cannot read " << what << ": " << std::strerror(read_errno) << "\n";
            remove_earlier_after_failure(1);
            return 2;
        }
    }
    ddb2os::bulk_result result;
    try {
        result = ddb2os::build_bulk(input, opt);
    } catch (const ddb2os::error& e) {
        std::cerr << "ddb2os: " << e.what() << "\n";
        remove_earlier_after_failure(1);
        return 2;
    } catch (const std::bad_alloc&) {
        std::cerr << "ddb2os: out of memory\n";
        remove_earlier_after_failure(1);
        return 2;
    }
    for (const auto& e : result.errors) std::cerr << e.to_json() << "\n";
    for (std::size_t i = 0; i < result.bodies.size(); ++i) {
        const std::string& data = result.bodies[i].data;
        if (out_prefix.empty()) {
            std::fwrite(data.data(), 1, data.size(), stdout);
            continue;
        }
        // Written whole or not at all: a file cut short would be a body ending mid-line.
        const std::string path = out_name(out_prefix, i + 1), part = path + ".part";
        errno = 0;
        std::FILE* f = std::fopen(part.c_str(), "wb");
        bool ok = f != nullptr && std::fwrite(data.data(), 1, data.size(), f) == data.size();
        const int write_errno = errno;
        ok = f != nullptr && std::fclose(f) == 0 && ok && std::rename(part.c_str(), path.c_str()) == 0;
        if (!ok) {
            std::cerr << "ddb2os: cannot write \"" << path << "\": " << std::strerror(write_errno ? write_errno : errno) << "\n";
            std::remove(part.c_str());
            remove_earlier_after_failure(i + 1);
            return 2;
        }
        std::printf("%s\n", path.c_str());
    }
    remove_earlier_from(result.bodies.size() + 1);
    // Output that could not be written (a full disk, a closed pipe) is an error, not a success.
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
        std::cerr << "ddb2os: cannot write standard output: " << std::strerror(errno) << "\n";
        return 2;
    }
    // Records' reports that could not be written: those records would be lost without a word.
    if (!result.errors.empty() && !std::cerr.flush()) return 2;
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
    try {
        return convert(argc, argv);
    } catch (const std::bad_alloc&) {
        std::cerr << "ddb2os: out of memory\n";
    } catch (const std::exception& e) {  // anything else: said, with the documented exit code, not an abort
        std::cerr << "ddb2os: " << e.what() << "\n";
    }
    return 2;
}
