// libFuzzer target: the sync engine (sync.hpp) reading whatever OpenSearch, or a proxy in front of
// it, answers. A fixed batch of five records (three index actions, a delete, one record that
// cannot be converted) is sent; the first answer comes from the input (its first byte picks the
// status and Retry-After, the rest is the body), every later request is answered as a cluster that
// creates every document would (the dead-letter index's creation, a PUT, is acknowledged). Whatever
// the first answer, every action must end counted once: indexed, deleted, a version conflict, a dead
// letter or a reported failure; and nothing throws.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <ddb2os/sync.hpp>

namespace {

[[noreturn]] void fail(const char* what, std::size_t a = 0, std::size_t b = 0) {
    std::fprintf(stderr, "fuzz_sync_answer: %s (%zu, %zu)\n", what, a, b);
    std::abort();
}

struct scripted : ddb2os::http::transport {
    std::string first_body;
    long first_status = 200;
    std::string retry_after;
    std::size_t sent = 0;
    ddb2os::http::result send(const ddb2os::http::request& req, ddb2os::http::clock::time_point) override {
        ddb2os::http::result r;
        if (req.method == "PUT") {  // the dead-letter index's creation
            r.res.status = 200;
            r.res.body = "{\"acknowledged\":true}";
            return r;
        }
        if (sent++ == 0) {
            r.res.status = first_status;
            r.res.body = first_body;
            if (!retry_after.empty()) r.res.headers.push_back({"Retry-After", retry_after});
            return r;
        }
        r.res.status = 200;
        r.res.body = "{\"errors\":false,\"items\":[";
        bool first = true;
        for (std::size_t at = 0; at < req.body.size(); at = req.body.find('\n', at) + 1) {  // bodies end with a newline
            const bool index = req.body.compare(at, 9, "{\"index\":") == 0;
            if (!index && req.body.compare(at, 10, "{\"delete\":") != 0) continue;  // a document line
            r.res.body += first ? "" : ",";
            r.res.body += index ? "{\"index\":{\"status\":201}}" : "{\"delete\":{\"status\":200}}";
            first = false;
        }
        r.res.body += "]}";
        return r;
    }
};

std::string rec(int seq, const char* name, const char* id, const char* image) {
    std::string s = "{\"eventID\":\"e" + std::to_string(seq) + "\",\"eventName\":\"" + name +
                    "\",\"eventSourceARN\":\"arn:aws:dynamodb:us-east-1:123456789012:table/Books/stream/2024-01-01T00:00:00.000\","
                    "\"dynamodb\":{\"ApproximateCreationDateTime\":1700000000,\"Keys\":{\"id\":{\"S\":\"" + id + "\"}}";
    if (image != nullptr) s += std::string(",\"NewImage\":") + image;
    return s + ",\"SequenceNumber\":\"" + std::to_string(seq) + "\"}}";
}

const std::string& batch() {
    static const std::string event = "{\"Records\":[" + rec(1, "INSERT", "a", "{\"id\":{\"S\":\"a\"}}") + "," +
                                     rec(2, "MODIFY", "b", "{\"n\":{\"N\":\"1\"}}") + "," + rec(3, "REMOVE", "c", nullptr) +
                                     "," + rec(4, "INSERT", "d", "{\"bad\":{\"N\":\"x\"}}") + "," +
                                     rec(5, "INSERT", "e", "{\"s\":{\"SS\":[\"x\"]}}") + "]}";
    return event;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    static const long statuses[] = {200, 200, 200, 200, 201, 400, 413, 429, 500, 502, 503, 504, 401, 403, 404, 0};
    static const char* const retry_afters[] = {"", "", "0", "100000", "Wed, 21 Oct 2015 07:28:00 GMT", "-1", "x", "1e3"};
    scripted t;
    t.first_status = statuses[data[0] & 15];
    t.retry_after = retry_afters[(data[0] >> 4) & 7];
    t.first_body.assign(reinterpret_cast<const char*>(data) + 1, size - 1);

    ddb2os::sync_options o;
    o.bulk.key_schemas["Books"] = {"id"};
    o.retry.base = std::chrono::milliseconds(1);
    o.retry.cap = std::chrono::milliseconds(2);
    if (data[0] & 128) o.dlq_index.clear();  // no dead letters: such records are reported
    ddb2os::sync_engine engine(o, t);
    const auto rep = engine.process(batch(), ddb2os::http::clock::now() + std::chrono::milliseconds(200));

    if (rep.records != 5 || rep.actions != 4) fail("records or actions", rep.records, rep.actions);
    // The unconvertible record is a dead letter or a failure too; each failure is listed once.
    const std::size_t ended = rep.indexed + rep.deleted + rep.version_conflicts + rep.dead_lettered + rep.failed;
    if (ended != 5) fail("records counted other than once", ended, 5);
    for (std::size_t i = 1; i < rep.failures.size(); ++i)
        if (rep.failures[i].record <= rep.failures[i - 1].record) fail("failures out of order or repeated", i);
    for (const auto& f : rep.failures)
        if (f.reason.empty() || f.sequence_number.empty()) fail("a failure without its reason or sequence number", f.record);
    return 0;
}
