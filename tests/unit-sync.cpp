// The sync engine (sync.hpp) over a scripted transport: item outcomes, retries of only the failed
// items, dead letters, deadlines, and the report. (The real stack is in tests/python/test_e2e.py.)
#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_support.hpp"
#include <ddb2os/sync.hpp>

namespace {

using ddb2os::http::clock;

// Answers each _bulk request from a script; records what it was sent. The dead-letter index's
// creation (a PUT before the first letters) is kept apart, in `puts`, answered by `put_answer`
// (created, unless a test says otherwise), so the scripts count bulk requests only.
struct scripted_transport : ddb2os::http::transport {
    std::vector<ddb2os::http::request> sent, puts;
    std::function<ddb2os::http::result(const ddb2os::http::request&, std::size_t n)> answer;
    std::function<ddb2os::http::result(const ddb2os::http::request&)> put_answer;
    ddb2os::http::result send(const ddb2os::http::request& req, clock::time_point) override {
        if (req.method == "PUT") {
            puts.push_back(req);
            if (put_answer) return put_answer(req);
            ddb2os::http::result r;
            r.res.status = 200;
            r.res.body = R"({"acknowledged":true,"shards_acknowledged":true,"index":"x"})";
            return r;
        }
        sent.push_back(req);
        return answer(req, sent.size() - 1);
    }
};

ddb2os::http::result ok(std::string body, long status = 200) {
    ddb2os::http::result r;
    r.res.status = status;
    r.res.body = std::move(body);
    return r;
}

// The answer of a cluster that creates every document of an index-only body (two lines an action).
ddb2os::http::result all_created(const ddb2os::http::request& req) {
    std::size_t lines = 0;
    for (char c : req.body) lines += c == '\n';
    std::string s = R"({"errors":false,"items":[)";
    for (std::size_t i = 0; i < lines / 2; ++i) s += std::string(i ? "," : "") + R"({"index":{"status":201}})";
    return ok(s + "]}");
}

std::string arn(std::string_view table) {
    return "arn:aws:dynamodb:us-east-1:123456789012:table/" + std::string(table) + "/stream/2024-01-01T00:00:00.000";
}

std::string rec(int seq, std::string_view name, std::string_view id, std::string_view image = {}, std::string_view table = "Books") {
    std::string s = R"({"eventID":"ev)" + std::to_string(seq) + R"(","eventName":")" + std::string(name) +
                    R"(","eventSourceARN":")" + arn(table) + R"(","dynamodb":{"ApproximateCreationDateTime":1700000000.25,"Keys":{"id":{"S":")" +
                    std::string(id) + "\"}}";
    if (!image.empty()) s += ",\"NewImage\":" + std::string(image);
    return s + R"(,"SequenceNumber":")" + std::to_string(seq) + R"(","StreamViewType":"NEW_AND_OLD_IMAGES"}})";
}

std::string event(const std::vector<std::string>& records) {
    std::string s = "{\"Records\":[";
    for (std::size_t i = 0; i < records.size(); ++i) s += (i ? "," : "") + records[i];
    return s + "]}";
}

std::string item(const char* op, int status, const char* type = nullptr) {
    std::string s = std::string("{\"") + op + "\":{\"_index\":\"books\",\"_id\":\"x\",\"status\":" + std::to_string(status);
    if (type) s += std::string(",\"error\":{\"type\":\"") + type + "\",\"reason\":\"because \\\"" + type + "\\\"\"}";
    return s + "}}";
}

std::string items(const std::vector<std::string>& list) {
    std::string s = "{\"took\":3,\"errors\":true,\"items\":[";
    for (std::size_t i = 0; i < list.size(); ++i) s += (i ? "," : "") + list[i];
    return s + "]}";
}

ddb2os::sync_options fast_options() {
    ddb2os::sync_options o;
    o.retry.base = std::chrono::milliseconds(1);
    o.retry.cap = std::chrono::milliseconds(4);
    return o;
}

const std::string img = R"({"id":{"S":"x"},"n":{"N":"1"}})";
clock::time_point soon() { return clock::now() + std::chrono::seconds(10); }

}  // namespace

TEST_CASE("sync: a clean batch is one request, versioned, and nothing fails") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request&, std::size_t) {
        return ok(R"({"took":1,"errors":false,"items":[{"index":{"status":201}},{"delete":{"status":200}}]})");
    };
    auto o = fast_options();
    o.refresh = "wait_for";
    ddb2os::sync_engine engine(o, t);
    const auto rep = engine.process(event({rec(1, "INSERT", "a", img), rec(2, "REMOVE", "b")}), soon());
    REQUIRE(t.sent.size() == 1);
    CHECK(t.sent[0].method == "POST");
    CHECK(t.sent[0].target == "/_bulk?filter_path=errors,items.*.status,items.*.error&refresh=wait_for");
    CHECK(t.sent[0].headers[0].value == "application/x-ndjson");
    CHECK(t.sent[0].body.find(R"("version":1700000000250000,"version_type":"external_gte")") != std::string::npos);
    CHECK(rep.failures.empty());
    CHECK((rep.records == 2 && rep.actions == 2 && rep.indexed == 1 && rep.deleted == 1 && rep.requests == 1));
    CHECK(rep.bytes == t.sent[0].body.size());
    const auto log = nlohmann::json::parse(rep.log_line());
    CHECK(log["Records"] == 2);
    CHECK(log["Failed"] == 0);
    CHECK(log["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ddb2os");
    CHECK(log["_aws"]["CloudWatchMetrics"][0]["Metrics"].size() == 14);
}

TEST_CASE("sync: TTL deletes are counted in the report and the log line, written or skipped") {
    // A REMOVE by DynamoDB's TTL process names the service in userIdentity.
    std::string ttl = rec(2, "REMOVE", "b");
    ttl.insert(ttl.size() - 1, R"(,"userIdentity":{"type":"Service","principalId":"dynamodb.amazonaws.com"})");
    for (const bool skip : {false, true}) {
        scripted_transport t;
        t.answer = [](const ddb2os::http::request& req, std::size_t) {  // one delete line an action
            std::string s = R"({"errors":false,"items":[)";
            for (std::size_t at = 0; (at = req.body.find('\n', at)) != std::string::npos; ++at)
                s += std::string(s.back() == '[' ? "" : ",") + R"({"delete":{"status":200}})";
            return ok(s + "]}");
        };
        auto o = fast_options();
        o.bulk.skip_ttl_deletes = skip;
        ddb2os::sync_engine engine(o, t);
        const auto rep = engine.process(event({rec(1, "REMOVE", "a"), ttl}), soon());
        CHECK(rep.failures.empty());
        CHECK(rep.ttl_deletes == 1);
        CHECK(rep.skipped_ttl == (skip ? 1u : 0u));
        CHECK(rep.deleted == (skip ? 1u : 2u));
        const auto log = nlohmann::json::parse(rep.log_line());
        CHECK(log.at("TTLDeletes") == 1);
        CHECK(log.at("SkippedTTL") == (skip ? 1 : 0));
        bool named = false;
        for (const auto& m : log["_aws"]["CloudWatchMetrics"][0]["Metrics"]) named = named || m["Name"] == "TTLDeletes";
        CHECK(named);
    }
}

TEST_CASE("sync: per-item outcomes; only the retriable items are sent again") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request&, std::size_t n) {
        if (n == 0)
            return ok(items({item("index", 201), item("index", 429, "es_rejected_execution_exception"),
                             item("delete", 404), item("index", 409, "version_conflict_engine_exception"),
                             item("index", 503, "unavailable_shards_exception"), item("index", 400, "mapper_parsing_exception")}));
        if (n == 1) return ok(items({item("index", 201), item("index", 201)}));  // the two retried
        return ok(R"({"errors":false,"items":[{"index":{"status":201}}]})");      // the dead letter
    };
    auto o = fast_options();
    o.refresh = "true";
    ddb2os::sync_engine engine(o, t);
    const auto rep = engine.process(event({rec(1, "INSERT", "a", img), rec(2, "INSERT", "b", img), rec(3, "REMOVE", "c"),
                                           rec(4, "INSERT", "d", img), rec(5, "INSERT", "e", img), rec(6, "INSERT", "f", img)}),
                                    soon());
    REQUIRE(t.sent.size() == 3);
    CHECK(t.sent[1].target == "/_bulk?filter_path=errors,items.*.status,items.*.error&refresh=true");
    // The retry holds exactly the actions of records 2 and 5.
    const std::string& retry = t.sent[1].body;
    CHECK(test::check_ndjson(retry) == 4);
    CHECK(retry.find(R"("_id":"b")") != std::string::npos);
    CHECK(retry.find(R"("_id":"e")") != std::string::npos);
    CHECK(retry.find(R"("_id":"a")") == std::string::npos);
    // The dead letter: raw record, error, into books-dlq, keyed by eventID.
    const std::string& dlq = t.sent[2].body;
    CHECK(t.sent[2].target == "/_bulk?filter_path=errors,items.*.status,items.*.error");  // dead letters: no refresh
    REQUIRE(test::check_ndjson(dlq) == 2);
    const auto action = nlohmann::json::parse(dlq.substr(0, dlq.find('\n')));
    CHECK(action["index"]["_index"] == "books-dlq");
    CHECK(action["index"]["_id"] == "ev6");
    const auto doc = nlohmann::json::parse(dlq.substr(dlq.find('\n') + 1));
    CHECK(doc["sequence_number"] == "6");
    CHECK(doc["id"] == "f");
    CHECK(doc["index"] == "books");
    CHECK(doc["error"]["type"] == "mapper_parsing_exception");
    CHECK(doc["error"]["reason"] == "because \"mapper_parsing_exception\"");
    CHECK(doc["error"]["status"] == 400);
    CHECK(nlohmann::json::parse(doc["record"].get<std::string>()) == nlohmann::json::parse(rec(6, "INSERT", "f", img)));
    CHECK(rep.failures.empty());
    CHECK(rep.retries == 2);
    CHECK(rep.bytes == t.sent[0].body.size() + t.sent[1].body.size() + t.sent[2].body.size());
    CHECK(rep.version_conflicts == 1);
    CHECK(rep.dead_lettered == 1);
    CHECK(rep.deleted == 1);
    CHECK(rep.indexed == 3);
}

TEST_CASE("sync: a filtered _bulk response as OpenSearch 2.19 writes it") {
    // OpenSearch 2.19.6's answer to bulk_request_target() (index, ids and field renamed to this
    // test's): created, a delete of a missing document, an older external version, a value the
    // mapping refuses.
    const std::string answer =
        R"({"errors":true,"items":[{"index":{"status":201}},{"delete":{"status":404}},{"index":{"status":409,"error":)"
        R"({"type":"version_conflict_engine_exception","reason":"[c]: version conflict, current version [5] is higher )"
        R"(than the one provided [3]","index":"books","shard":"0","index_uuid":"B7mzis_ORHW8ohyxrhY2rA"}}},{"index":)"
        R"({"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [n] of type [long] )"
        R"(in document with id 'd'. Preview of field's value: 'x'","caused_by":{"type":"illegal_argument_exception",)"
        R"("reason":"For input string: \"x\""}}}}]})";
    scripted_transport t;
    t.answer = [&](const ddb2os::http::request&, std::size_t n) {
        return ok(n == 0 ? answer : R"({"errors":false,"items":[{"index":{"status":201}}]})");
    };
    ddb2os::sync_engine engine(fast_options(), t);
    const auto rep = engine.process(
        event({rec(1, "INSERT", "a", img), rec(2, "REMOVE", "b"), rec(3, "MODIFY", "c", img), rec(4, "INSERT", "d", img)}), soon());
    REQUIRE(t.sent.size() == 2);
    CHECK((rep.indexed == 1 && rep.deleted == 1 && rep.version_conflicts == 1 && rep.dead_lettered == 1));
    CHECK((rep.retries == 0 && rep.failures.empty()));
    const std::string& dlq = t.sent[1].body;
    const auto doc = nlohmann::json::parse(dlq.substr(dlq.find('\n') + 1));
    CHECK(doc["id"] == "d");
    CHECK(doc["error"]["type"] == "mapper_parsing_exception");
    CHECK(doc["error"]["reason"] ==
          "failed to parse field [n] of type [long] in document with id 'd'. Preview of field's value: 'x'");
    CHECK(doc["error"]["status"] == 400);
}

TEST_CASE("sync: whole-request failures are retried until the deadline, then reported") {
    scripted_transport t;
    int calls = 0;
    t.answer = [&](const ddb2os::http::request&, std::size_t) {
        ++calls;
        ddb2os::http::result r;
        r.error = ddb2os::http::error_kind::connect;
        r.message = "connection refused";
        return r;
    };
    ddb2os::sync_engine engine(fast_options(), t);
    const auto start = clock::now();
    const auto rep = engine.process(event({rec(7, "INSERT", "a", img), rec(8, "INSERT", "b", img)}),
                                    clock::now() + std::chrono::milliseconds(150));
    CHECK(clock::now() - start < std::chrono::milliseconds(1500));  // not a retry past it (the default would be 10 s)
    CHECK(calls > 3);
    CHECK(rep.batch_item_failures() == std::vector<std::string>{"7", "8"});
    CHECK(rep.failures[0].reason.find("still failing at the deadline after") == 0);
    CHECK(rep.failures[0].reason.find("request failed: connection refused") != std::string::npos);

    // 503 for the whole request, then success.
    scripted_transport u;
    u.answer = [](const ddb2os::http::request&, std::size_t n) {
        return n < 2 ? ok("{}", 503) : ok(R"({"errors":false,"items":[{"index":{"status":201}}]})");
    };
    ddb2os::sync_engine e2(fast_options(), u);
    const auto rep2 = e2.process(event({rec(1, "INSERT", "a", img)}), soon());
    CHECK(rep2.failures.empty());
    CHECK(u.sent.size() == 3);
    CHECK(rep2.retries == 2);
}

TEST_CASE("http: an answer's header is its first of that name, whatever the case, even when empty") {
    ddb2os::http::response r;
    r.headers = {{"retry-after", ""}, {"Retry-After", "30"}, {"X-Reply", "yes"}, {"x-reply", "no"}};
    CHECK(r.header_value("Retry-After").empty());  // the first is empty: not the second's 30 s
    CHECK(r.header_value("RETRY-AFTER").data() == r.headers[0].value.data());
    CHECK(r.header_value("x-REPLY") == "yes");
    CHECK(r.header_value("X-Repl").empty());
    CHECK(r.header_value("Content-Length").empty());
}

TEST_CASE("sync: a whole-request refusal's Retry-After is waited out, or reported when past the deadline") {
    using ddb2os::detail::retry_after_ms;
    CHECK(retry_after_ms("2") == 2000);
    CHECK(retry_after_ms(" 0\t") == 0);
    CHECK(retry_after_ms("99999999999999999999999") == 86400 * 1000);  // saturates, never wraps
    for (const char* not_seconds : {"", " ", "-1", "1.5", "1s", "Wed, 21 Oct 2015 07:28:00 GMT"}) {
        CAPTURE(not_seconds);
        CHECK(retry_after_ms(not_seconds) == -1);
    }

    // 429 with Retry-After: 1, then success: the retry waits the second (the backoff alone is 1-4 ms).
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t n) {
        if (n == 0) {
            ddb2os::http::result r = ok("{}", 429);
            r.res.headers = {{"retry-after", "1"}};
            return r;
        }
        return all_created(req);
    };
    ddb2os::sync_engine engine(fast_options(), t);
    const auto start = clock::now();
    const auto rep = engine.process(event({rec(1, "INSERT", "a", img)}), soon());
    CHECK(clock::now() - start >= std::chrono::milliseconds(1000));
    CHECK(rep.failures.empty());
    CHECK(t.sent.size() == 2);

    // A Retry-After past the deadline: reported at once, saying why, not retried before it.
    scripted_transport u;
    u.answer = [](const ddb2os::http::request&, std::size_t) {
        ddb2os::http::result r = ok("{}", 503);
        r.res.headers = {{"Retry-After", "30"}};
        return r;
    };
    ddb2os::sync_engine e2(fast_options(), u);
    const auto start2 = clock::now();
    const auto rep2 = e2.process(event({rec(2, "INSERT", "b", img)}), clock::now() + std::chrono::seconds(2));
    CHECK(clock::now() - start2 < std::chrono::milliseconds(1000));
    CHECK(u.sent.size() == 1);
    REQUIRE(rep2.failures.size() == 1);
    CHECK(rep2.failures[0].reason ==
          "not retried, the answer's Retry-After being past the deadline, after 1 attempt: HTTP 503 for the whole "
          "request (Retry-After: 30 s)");
}

TEST_CASE("sync: a 200 answer not shaped as _bulk's is unreadable: retried, then reported, never a crash") {
    // Valid JSON from a proxy or gateway: an item with no operation (read a null tape: a crash), items
    // or operations that are not objects, a root that is not one (members read past the tape), and
    // "errors":false with fewer items than actions (the missing one passed for a success).
    for (const char* answer : {R"({"errors":true,"items":[{}]})", R"({"errors":true,"items":[12345]})",
                               R"({"errors":true,"items":[{"index":5}]})", R"({"errors":true,"items":["abcdefghijklmnopqrstuvwxyz"]})",
                               R"({"errors":true,"items":[{"index":{"status":201},"delete":{"status":200}}]})",
                               R"(["abcdefghijklmnopqrstuvwxyz",1,2,3])", R"("items")",
                               R"({"errors":false,"items":[{"index":{"status":201}}]})",
                               // An item without a status: dead-lettered with no error before.
                               R"({"errors":false,"items":[{"index":{"status":201}},{"index":{}}]})",
                               R"({"errors":true,"items":[{"index":{"status":201}},{"index":{}}]})",
                               R"({"errors":true,"items":[{"index":{"status":201}},{"index":{"status":"201"}}]})",
                               // Items naming an operation other than the one sent: the deletes were counted
                               // from the answer, more of them than actions when it held extra ones.
                               R"({"errors":false,"items":[{"delete":{"delete":{"delete":{"status":201}}}},{"index":{"status":201}}]})",
                               R"({"errors":false,"items":[{"delete":{"status":201}},{"delete":{"status":201}}]})",
                               R"({"errors":true,"items":[{"index":{"status":201}},{"delete":{"status":404}}]})"}) {
        CAPTURE(answer);
        scripted_transport t;
        t.answer = [&](const ddb2os::http::request&, std::size_t) { return ok(answer); };
        ddb2os::sync_engine engine(fast_options(), t);
        const auto rep = engine.process(event({rec(1, "INSERT", "a", img), rec(2, "INSERT", "b", img)}),
                                        clock::now() + std::chrono::milliseconds(50));
        CHECK(rep.batch_item_failures() == std::vector<std::string>{"1", "2"});
        REQUIRE(rep.failures.size() == 2);
        CHECK(rep.failures[0].reason.find("an unreadable _bulk response") != std::string::npos);
        CHECK(rep.indexed == 0);
        CHECK(rep.deleted == 0);
    }
}

TEST_CASE("sync: DescribeTable's answer with a Table that is not an object gives a reason") {
    for (const char* answer : {R"({"Table":"abcdefghijklmnopqrstuvwxyz"})", R"({"Table":12345})", R"(["Table"])",
                               R"("abcdefghijklmnopqrstuvwxyz")"}) {
        CAPTURE(answer);
        scripted_transport t;
        t.answer = [&](const ddb2os::http::request&, std::size_t) { return ok(answer); };
        ddb2os::key_schema schema;
        std::string reason;
        CHECK_FALSE(ddb2os::describe_table_key_schema(t, "Books", schema, reason, soon()));
        CHECK(reason == "DescribeTable Books: no Table.KeySchema in the answer");
    }
}

TEST_CASE("sync: an eventSourceARN with escaped slashes names its table to the key-schema resolver") {
    std::string r = rec(1, "INSERT", "a", img);
    const std::string plain = arn("Books"), escaped = "arn:aws:dynamodb:us-east-1:123456789012:table\\/Books\\/stream\\/2024-01-01T00:00:00.000";
    r.replace(r.find(plain), plain.size(), escaped);
    const std::string composite = R"({"author":{"S":"A"},"title":{"S":"T"}})";
    const std::string keys = R"({"id":{"S":"a"}})";
    r.replace(r.find(keys), keys.size(), composite);

    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t) { return all_created(req); };
    auto o = fast_options();
    int asked = 0;
    o.resolve_key_schema = [&](const std::string& table, const std::string& table_arn, ddb2os::key_schema& schema,
                               std::string&, clock::time_point) {
        ++asked;
        CHECK(table == "Books");
        CHECK(table_arn == "arn:aws:dynamodb:us-east-1:123456789012:table/Books");  // decoded too
        schema = {"author", "title"};
        return true;
    };
    ddb2os::sync_engine engine(o, t);
    const auto rep = engine.process(event({r}), soon());
    CHECK(asked == 1);
    CHECK(rep.indexed == 1);
    CHECK(rep.dead_lettered == 0);

    // Not resolved: the record is reported (Lambda retries it), not dead-lettered as key.no_schema.
    auto o2 = fast_options();
    o2.resolve_key_schema = [](const std::string&, const std::string&, ddb2os::key_schema&, std::string& reason,
                                clock::time_point) {
        reason = "DescribeTable Books: HTTP 400 ThrottlingException";
        return false;
    };
    scripted_transport u;
    u.answer = [](const ddb2os::http::request& req, std::size_t) { return all_created(req); };
    ddb2os::sync_engine e2(o2, u);
    const auto rep2 = e2.process(event({r}), soon());
    CHECK(rep2.batch_item_failures() == std::vector<std::string>{"1"});
    CHECK(rep2.dead_lettered == 0);
}

TEST_CASE("sync: a batch is sent while it is written: a small first body, then the rest, in order") {
    // 400 records, ~300 bytes of document each; bulk.first_max_bytes 8 KiB, max_bytes 64 KiB. The sender
    // thread answers each body from its actions: record 5 is throttled once (retried alone), record 9
    // is refused (a dead letter), a bad record is a dead letter too, everything else is indexed.
    scripted_transport t;
    int throttled = 0;
    t.answer = [&throttled](const ddb2os::http::request& req, std::size_t) {
        std::vector<std::string> list;
        if (req.body.find("\"_index\":\"books-dlq\"") != std::string::npos)
            return ok(R"({"errors":false,"items":[{"index":{"status":201}},{"index":{"status":201}}]})");
        for (std::size_t at = 0; at < req.body.size();) {
            const std::size_t eol = req.body.find('\n', at);
            const std::string line = req.body.substr(at, eol - at);
            at = req.body.find('\n', eol + 1) + 1;  // skip the document line
            if (line.find(R"("_id":"k5")") != std::string::npos && throttled++ == 0)
                list.push_back(item("index", 429, "es_rejected_execution_exception"));
            else if (line.find(R"("_id":"k9")") != std::string::npos)
                list.push_back(item("index", 400, "mapper_parsing_exception"));
            else
                list.push_back(item("index", 201));
        }
        return ok(items(list));
    };
    auto o = fast_options();
    o.bulk.first_max_bytes = 8 * 1024;
    o.bulk.max_bytes = 64 * 1024;
    std::vector<std::string> records;
    const std::string pad(250, 'p');
    for (int i = 0; i < 400; ++i)
        records.push_back(i == 200 ? rec(i, "INSERT", "k200", R"({"n":{"N":"1.2.3"}})")
                                   : rec(i, "INSERT", "k" + std::to_string(i), R"({"t":{"S":")" + pad + R"("}})"));
    ddb2os::sync_engine engine(o, t);
    const auto rep = engine.process(event(records), soon());
    CHECK(rep.failures.empty());
    CHECK(rep.actions == 399);
    CHECK(rep.indexed == 398);  // 399 written, one dead-lettered (k9)
    CHECK(rep.dead_lettered == 2);  // k9 refused, record 200 unconvertible
    CHECK(rep.retries == 1);
    // The first body stays under first_max_bytes (but for its last record), the others under max_bytes;
    // every action is sent once (plus the one retry), in stream order.
    REQUIRE(t.sent.size() >= 6);
    CHECK(t.sent[0].body.size() <= 8 * 1024 + 400);
    CHECK(t.sent[0].body.size() > 4 * 1024);
    std::vector<std::string> order;
    std::size_t total = 0;
    for (const auto& req : t.sent) {
        CHECK(req.body.size() <= 64 * 1024);
        if (req.body.find("books-dlq") != std::string::npos) continue;
        total += req.body.size();
        for (std::size_t at = req.body.find(R"("_id":")"); at != std::string::npos; at = req.body.find(R"("_id":")", at + 1))
            order.push_back(req.body.substr(at + 7, req.body.find('"', at + 7) - at - 7));
    }
    std::vector<std::string> expected;
    for (int i = 0; i < 400; ++i)
        if (i != 200) expected.push_back("k" + std::to_string(i));
    const std::size_t first = test::check_ndjson(t.sent[0].body) / 2;  // actions in the first body
    CHECK(first > 6);
    // The throttled action is sent again right after the first body's answer, before the second body.
    expected.insert(expected.begin() + static_cast<std::ptrdiff_t>(first), "k5");
    REQUIRE(order.size() == expected.size());
    CHECK(order == expected);
    CHECK(rep.bytes == total + t.sent.back().body.size());
}

TEST_CASE("sync: a process that can start no thread sends each body from the calling thread, in order") {
    // At a thread limit (Lambda's, a cgroup's pids.max) std::thread throws std::system_error, which
    // escaped process() with no body sent and nothing reported. Run in a child process that can start
    // none: RLIMIT_NPROC 0, as a user other than root (whom the limit does not hold), so nobody.
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {  // the child: doctest's checks would not reach the parent, so an exit status says what failed
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(10);
        const rlimit none{0, 0};
        if (setrlimit(RLIMIT_NPROC, &none) != 0) _exit(11);
        try {
            std::thread([] {}).join();
            _exit(12);
        } catch (const std::system_error&) {
        }
        scripted_transport t;
        t.answer = [](const ddb2os::http::request& req, std::size_t) { return all_created(req); };
        auto o = fast_options();
        o.bulk.first_max_bytes = 1024;
        o.bulk.max_bytes = 4096;
        std::vector<std::string> records;
        for (int i = 0; i < 60; ++i)
            records.push_back(rec(i, "INSERT", "k" + std::to_string(i), R"({"t":{"S":")" + std::string(100, 'p') + R"("}})"));
        ddb2os::sync_report rep;
        try {
            ddb2os::sync_engine engine(o, t);
            rep = engine.process(event(records), soon());
        } catch (...) {
            _exit(13);
        }
        if (!rep.failures.empty() || rep.indexed != 60) _exit(14);
        if (t.sent.size() < 4) _exit(15);  // the first body cut at 1 KiB, the others at 4 KiB
        int next = 0;
        for (const auto& req : t.sent)
            for (std::size_t at = req.body.find(R"("_id":")"); at != std::string::npos; at = req.body.find(R"("_id":")", at + 1))
                if (req.body.compare(at + 7, req.body.find('"', at + 7) - at - 7, "k" + std::to_string(next++)) != 0) _exit(16);
        _exit(next == 60 ? 0 : 17);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    const int code = WEXITSTATUS(status);
    CAPTURE(code);  // 10-12: the set-up (no user to become, no limit set, a thread started anyway); 13: process() threw;
                    // 14: not all indexed; 15: too few requests; 16, 17: not each record once, in order
    CHECK(code == 0);
}

TEST_CASE("sync: a refused request that no retry fixes is reported at once") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request&, std::size_t) { return ok(R"({"message":"forbidden"})", 403); };
    ddb2os::sync_engine engine(fast_options(), t);
    const auto rep = engine.process(event({rec(1, "INSERT", "a", img)}), soon());
    CHECK(t.sent.size() == 1);
    REQUIRE(rep.failures.size() == 1);
    CHECK(rep.failures[0].reason == R"(HTTP 403: {"message":"forbidden"})");
}

TEST_CASE("sync: a failure that waiting seldom fixes (TLS, credentials) is tried three times, not until the deadline") {
    for (auto kind : {ddb2os::http::error_kind::tls, ddb2os::http::error_kind::credentials, ddb2os::http::error_kind::other}) {
        scripted_transport t;
        t.answer = [&](const ddb2os::http::request&, std::size_t) {
            ddb2os::http::result r;
            r.error = kind;
            r.message = "SSL certificate problem: unable to get local issuer certificate";
            return r;
        };
        ddb2os::sync_engine engine(fast_options(), t);
        const auto start = clock::now();
        const auto rep = engine.process(event({rec(1, "INSERT", "a", img), rec(2, "INSERT", "b", img)}), soon());
        CHECK(clock::now() - start < std::chrono::seconds(2));
        CHECK(t.sent.size() == 3);
        REQUIRE(rep.batch_item_failures() == std::vector<std::string>{"1", "2"});
        CHECK(rep.failures[0].reason ==
              "failed 3 times: request failed: SSL certificate problem: unable to get local issuer certificate");
    }
    // A connection refused or reset is waited out: retried until it answers.
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t n) {
        if (n < 5) {
            ddb2os::http::result r;
            r.error = n % 2 ? ddb2os::http::error_kind::connect : ddb2os::http::error_kind::tls;
            r.message = "refused";
            return r;
        }
        return all_created(req);
    };
    ddb2os::sync_engine engine(fast_options(), t);
    const auto rep = engine.process(event({rec(1, "INSERT", "a", img)}), soon());
    CHECK(rep.failures.empty());
    CHECK(t.sent.size() == 6);
}

TEST_CASE("sync: a refused request's reason quotes its answer as valid UTF-8, cut before a character") {
    // 299 ASCII bytes, then "é" (2 bytes) across the 300-byte cut, and a byte that is not UTF-8 at all.
    const std::string body = std::string(298, 'x') + "\xFF" + "\xC3\xA9" + "tail";
    scripted_transport t;
    t.answer = [&](const ddb2os::http::request&, std::size_t) { return ok(body, 400); };
    ddb2os::sync_engine engine(fast_options(), t);
    const auto rep = engine.process(event({rec(1, "INSERT", "a", img)}), soon());
    REQUIRE(rep.failures.size() == 1);
    CHECK(rep.failures[0].reason == "HTTP 400: " + std::string(298, 'x') + "\xEF\xBF\xBD");
    CHECK(ddb2os::detail::is_valid_utf8(rep.failures[0].reason.data(), rep.failures[0].reason.size()));

    t.answer = [&](const ddb2os::http::request&, std::size_t) { return ok(std::string(299, 'y') + "\xC3\xA9", 400); };
    ddb2os::key_schema s;
    std::string reason;
    CHECK_FALSE(ddb2os::describe_table_key_schema(t, "books", s, reason, soon()));
    CHECK(reason == "DescribeTable books: HTTP 400 " + std::string(299, 'y'));
    std::string all;
    ddb2os::detail::append_sanitized_utf8(all, "a\xC3\xA9\xED\xA0\x80z");  // a UTF-16 surrogate's 3 bytes
    CHECK(all == "a\xC3\xA9\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDz");
}

TEST_CASE("sync: records that cannot be converted become dead letters; without a dead-letter index they fail") {
    const std::string ev = event({rec(1, "INSERT", "a", img), rec(2, "INSERT", "b", R"({"n":{"N":"x"}})")});
    scripted_transport t;
    t.answer = [](const ddb2os::http::request&, std::size_t) {
        return ok(R"({"errors":false,"items":[{"index":{"status":201}}]})");
    };
    ddb2os::sync_engine engine(fast_options(), t);
    auto rep = engine.process(ev, soon());
    REQUIRE(t.sent.size() == 2);
    const auto doc = nlohmann::json::parse(t.sent[1].body.substr(t.sent[1].body.find('\n') + 1));
    CHECK(doc["error"]["type"] == "ddb2os.number.invalid");
    CHECK(doc["error"]["reason"] == "dynamodb.NewImage.n.N: \"x\" is not a number");
    CHECK(rep.dead_lettered == 1);
    CHECK(rep.failures.empty());

    auto o = fast_options();
    o.dlq_index = "";
    scripted_transport u;
    u.answer = t.answer;
    ddb2os::sync_engine off(o, u);
    rep = off.process(ev, soon());
    CHECK(u.sent.size() == 1);
    CHECK(rep.batch_item_failures() == std::vector<std::string>{"2"});
    CHECK(rep.failures[0].reason == "ddb2os.number.invalid: dynamodb.NewImage.n.N: \"x\" is not a number");

    // The dead-letter write itself refused: the record is reported.
    scripted_transport w;
    w.answer = [](const ddb2os::http::request&, std::size_t n) {
        return n == 0 ? ok(R"({"errors":false,"items":[{"index":{"status":201}}]})")
                      : ok(items({item("index", 400, "illegal_argument_exception")}));
    };
    ddb2os::sync_engine refused(fast_options(), w);
    rep = refused.process(ev, soon());
    CHECK(rep.batch_item_failures() == std::vector<std::string>{"2"});
    CHECK(rep.failures[0].reason.find("dead letter refused: illegal_argument_exception") == 0);
    CHECK(rep.dead_lettered == 0);

    // The dead-letter write throttled until the deadline: the reason says it was the dead letter's
    // write, and the record's own error (it read as the batch's write being throttled).
    scripted_transport x;
    x.answer = [](const ddb2os::http::request&, std::size_t n) {
        return n == 0 ? ok(R"({"errors":false,"items":[{"index":{"status":201}}]})")
                      : ok(items({item("index", 429, "es_rejected_execution_exception")}));
    };
    ddb2os::sync_engine throttled(fast_options(), x);
    rep = throttled.process(ev, clock::now() + std::chrono::milliseconds(100));
    CHECK(rep.batch_item_failures() == std::vector<std::string>{"2"});
    CHECK(rep.failures[0].reason.find("dead letter not written (the record's error: ddb2os.number.invalid: "
                                      "dynamodb.NewImage.n.N: \"x\" is not a number): still failing at the deadline") == 0);
    CHECK(rep.dead_lettered == 0);
}

TEST_CASE("sync: a dead-letter index is created with date detection off before its first letter") {
    // A date-keyed table: made by the letter's dynamic mapping, "id" would be mapped as a date.
    const std::string bad = R"({"n":{"N":"x"}})";
    const std::string ev = event({rec(1, "INSERT", "2024-05-01", bad), rec(2, "INSERT", "user-7", bad)});
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t) { return all_created(req); };
    ddb2os::sync_engine engine(fast_options(), t);
    auto rep = engine.process(ev, soon());
    REQUIRE(t.puts.size() == 1);  // one index for both letters, asked before them
    CHECK(t.puts[0].target == "/books-dlq");
    REQUIRE(t.puts[0].headers.size() == 1);
    CHECK((t.puts[0].headers[0].name == "Content-Type" && t.puts[0].headers[0].value == "application/json"));
    const auto body = nlohmann::json::parse(t.puts[0].body);
    CHECK(body["mappings"]["date_detection"] == false);
    CHECK(body["mappings"]["properties"]["time"]["type"] == "date");
    REQUIRE(t.sent.size() == 1);
    CHECK(t.sent[0].body.find("\"_index\":\"books-dlq\"") != std::string::npos);
    CHECK(rep.dead_lettered == 2);
    CHECK(rep.requests == 2);
    // Created: not asked again by this engine within dlq_recheck (5 minutes by default).
    rep = engine.process(ev, soon());
    CHECK(t.puts.size() == 1);
    CHECK(rep.dead_lettered == 2);

    // Asked again once dlq_recheck has passed since it was found (made again if deleted meanwhile),
    // and each time after that one, not before.
    scripted_transport again;
    again.answer = t.answer;
    auto recheck = fast_options();
    recheck.dlq_recheck = std::chrono::milliseconds(300);
    ddb2os::sync_engine rechecking(recheck, again);
    // Each pair of batches within 300 ms of the first's check (a machine too busy for that cannot
    // tell, and says so instead of failing).
    auto within = [&](clock::time_point before, std::size_t puts) {
        rechecking.process(ev, soon());
        rechecking.process(ev, soon());
        if (clock::now() - before < recheck.dlq_recheck) CHECK(again.puts.size() == puts);
        else MESSAGE("two batches took 300 ms: not checked");
    };
    within(clock::now(), 1);
    CHECK(again.puts.size() >= 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(350));
    const std::size_t before_recheck = again.puts.size();
    within(clock::now(), before_recheck + 1);  // asked again; then not, the time found being the new one
    CHECK(again.puts.size() > before_recheck);
    CHECK(again.sent.size() == 4);
    recheck.dlq_recheck = std::chrono::milliseconds(0);
    ddb2os::sync_engine every_time(recheck, again);
    const std::size_t before_every_time = again.puts.size();
    every_time.process(ev, soon());
    every_time.process(ev, soon());
    CHECK(again.puts.size() == before_every_time + 2);

    // An index that exists already is left as it is, and not asked for again either.
    scripted_transport u;
    u.answer = t.answer;
    u.put_answer = [](const ddb2os::http::request&) {
        return ok(R"({"error":{"type":"resource_already_exists_exception","reason":"index [books-dlq/x] already exists"},"status":400})", 400);
    };
    ddb2os::sync_engine existing(fast_options(), u);
    existing.process(ev, soon());
    existing.process(ev, soon());
    CHECK(u.puts.size() == 1);
    CHECK(u.sent.size() == 2);

    // Not allowed to create one: the letters are still sent (the bulk request may auto-create it,
    // as before), and the next letters ask again.
    scripted_transport w;
    w.answer = t.answer;
    w.put_answer = [](const ddb2os::http::request&) {
        return ok(R"({"error":{"type":"security_exception","reason":"no permissions"},"status":403})", 403);
    };
    ddb2os::sync_engine forbidden(fast_options(), w);
    rep = forbidden.process(ev, soon());
    CHECK(rep.dead_lettered == 2);
    forbidden.process(ev, soon());
    CHECK(w.puts.size() == 2);
    CHECK(w.sent.size() == 2);

    // Unauthenticated for PUT, or a front that implements no PUT (501): refused for good too, the letters sent.
    for (long status : {401L, 501L}) {
        CAPTURE(status);
        scripted_transport v;
        v.answer = t.answer;
        v.put_answer = [status](const ddb2os::http::request&) { return ok(R"({"error":"no"})", status); };
        ddb2os::sync_engine refused(fast_options(), v);
        rep = refused.process(ev, soon());
        CHECK(v.puts.size() == 1);
        CHECK(v.sent.size() == 1);
        CHECK(rep.dead_lettered == 2);
        CHECK(rep.failures.empty());
    }

    // No answer, throttled, or the cluster's fault: the letters are not sent (they would create the index
    // by dynamic mapping), their records are reported with why, and the retry creates it and writes them.
    for (long status : {503L, 429L, 0L}) {
        scripted_transport x;
        x.answer = t.answer;
        x.put_answer = [&](const ddb2os::http::request&) {
            if (x.puts.size() > 1) return ok(R"({"acknowledged":true})");
            if (status == 0) {
                ddb2os::http::result r;
                r.error = ddb2os::http::error_kind::connect;
                r.message = "PUT http://127.0.0.1:9/books-dlq: Couldn't connect to server";
                return r;
            }
            return ok(R"({"error":{"type":"es_rejected_execution_exception"}})", status);
        };
        ddb2os::sync_engine busy(fast_options(), x);
        rep = busy.process(ev, soon());
        CHECK(x.sent.empty());
        CHECK(rep.dead_lettered == 0);
        REQUIRE(rep.batch_item_failures() == std::vector<std::string>{"1", "2"});
        const std::string why = status == 0 ? "PUT http://127.0.0.1:9/books-dlq: Couldn't connect to server"
                                            : "HTTP " + std::to_string(status);
        CHECK(rep.failures[0].reason == "ddb2os.number.invalid: dynamodb.NewImage.n.N: \"x\" is not a number "
                                        "(not dead-lettered: the dead-letter index \"books-dlq\" could not be created: " +
                                            why + ")");
        rep = busy.process(ev, soon());
        CHECK(x.puts.size() == 2);
        CHECK(x.sent.size() == 1);
        CHECK(rep.dead_lettered == 2);
        CHECK(rep.failures.empty());
    }
}

TEST_CASE("sync: a dead letter's _id is its eventID, else its sequence number, else the record's hash") {
    // Records no DynamoDB stream sends: one not an object, one without eventID or SequenceNumber.
    const std::string nameless = R"({"eventName":"UPSERT","dynamodb":{"Keys":{"id":{"S":"a"}}}})";
    const std::string ev = event({"5", nameless, rec(3, "UPSERT", "c")});
    std::vector<std::string> ids_of_runs[2];
    for (auto& ids : ids_of_runs) {
        scripted_transport t;
        t.answer = [](const ddb2os::http::request&, std::size_t) {
            const std::string created = R"({"index":{"status":201}})";
            return ok(R"({"errors":false,"items":[)" + created + "," + created + "," + created + "]}");
        };
        ddb2os::sync_engine engine(fast_options(), t);
        const auto rep = engine.process(ev, soon());
        CHECK(rep.dead_lettered == 3);
        REQUIRE(t.sent.size() == 1);
        std::size_t at = 0;
        for (int line = 0; (at = t.sent[0].body.find('\n', at)) != std::string::npos; ++line, ++at) {
            if (line % 2 != 0) continue;
            const std::size_t begin = line == 0 ? 0 : t.sent[0].body.rfind('\n', at - 1) + 1;
            const auto action = nlohmann::json::parse(t.sent[0].body.substr(begin, at - begin));
            CHECK(action["index"]["_index"] == "ddb2os-dlq");  // no index known for any of them
            ids.push_back(action["index"]["_id"]);
        }
    }
    REQUIRE(ids_of_runs[0].size() == 3);
    CHECK(ids_of_runs[0] == ids_of_runs[1]);  // the same letters again at a retry, not new ones
    CHECK((ids_of_runs[0][0].size() == 71 && ids_of_runs[0][0].rfind("sha256-", 0) == 0));
    CHECK(ids_of_runs[0][0] == "sha256-" + ddb2os::detail::hex(ddb2os::detail::sha256("5")));
    CHECK((ids_of_runs[0][1].rfind("sha256-", 0) == 0 && ids_of_runs[0][1] != ids_of_runs[0][0]));
    CHECK(ids_of_runs[0][2] == "ev3");
}

TEST_CASE("sync: key schemas are resolved once per table and engine") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request&, std::size_t) {
        return ok(R"({"errors":false,"items":[{"index":{"status":201}}]})");
    };
    auto o = fast_options();
    int asked = 0;
    const auto deadline = soon();
    o.resolve_key_schema = [&](const std::string& table, const std::string&, ddb2os::key_schema& s, std::string&,
                               clock::time_point d) {
        ++asked;
        CHECK(d == deadline);  // the batch's own deadline bounds DescribeTable
        CHECK(table == "Pairs");
        s = {"pk", "sk"};
        return true;
    };
    ddb2os::sync_engine engine(o, t);
    const std::string r = R"({"eventID":"1","eventName":"INSERT","eventSourceARN":")" + arn("Pairs") +
                          R"(","dynamodb":{"ApproximateCreationDateTime":1700000000,"Keys":{"sk":{"N":"2"},"pk":{"S":"p"}},)"
                          R"("NewImage":{"pk":{"S":"p"}},"SequenceNumber":"1"}})";
    for (int i = 0; i < 3; ++i) CHECK(engine.process(event({r}), deadline).failures.empty());
    CHECK(asked == 1);
    CHECK(t.sent.back().body.find(R"("_id":"p|2")") != std::string::npos);
}

TEST_CASE("sync: another source's record fails the event before its table is asked for a key schema") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t) { return all_created(req); };
    auto o = fast_options();
    std::vector<std::string> asked;
    o.resolve_key_schema = [&](const std::string& table, const std::string&, ddb2os::key_schema& s, std::string&,
                               clock::time_point) {
        asked.push_back(table);
        s = {"pk", "sk"};
        return true;
    };
    ddb2os::sync_engine engine(o, t);
    const auto record = [](std::string_view source, std::string_view table) {
        return R"({"eventID":"1","eventName":"INSERT","eventSource":")" + std::string(source) + R"(","eventSourceARN":")" +
               arn(table) + R"(","dynamodb":{"ApproximateCreationDateTime":1,"Keys":{"sk":{"N":"2"},"pk":{"S":"p"}},)"
                            R"("NewImage":{"pk":{"S":"p"}},"SequenceNumber":"1"}})";
    };
    CHECK_THROWS_WITH_AS(engine.process(event({record("aws:kinesis", "Other")}), soon()),
                         "[ddb2os.event.shape] Records[0].eventSource: ddb2os reads DynamoDB Streams records; this one's "
                         "eventSource is \"aws:kinesis\" (a Kinesis data stream's: read the table's DynamoDB stream instead)",
                         ddb2os::error);
    CHECK(asked.empty());
    CHECK(t.sent.empty());
    // DynamoDB's, its eventSource written with escapes: asked for as before.
    CHECK(engine.process(event({record("aws:dyn\\u0061modb", "Pairs")}), soon()).failures.empty());
    CHECK(asked == std::vector<std::string>{"Pairs"});
}

TEST_CASE("sync: a table whose records' Keys hold one attribute is not asked for its key schema") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t) { return all_created(req); };
    auto o = fast_options();
    int asked = 0;
    o.resolve_key_schema = [&](const std::string&, const std::string&, ddb2os::key_schema&, std::string& reason,
                               clock::time_point) {
        ++asked;  // as DescribeTable unreachable from a VPC: every batch would wait for it
        reason = "DescribeTable Books: connect timeout";
        return false;
    };
    ddb2os::sync_engine engine(o, t);
    for (int batch = 0; batch < 3; ++batch) {
        const auto rep = engine.process(event({rec(1, "INSERT", "a", img), rec(2, "INSERT", "b", img)}), soon());
        REQUIRE(rep.failures.empty());
        CHECK(rep.indexed == 2);
    }
    CHECK(asked == 0);
}

TEST_CASE("sync: records whose key schema could not be asked for are reported, not dead-lettered") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t) { return all_created(req); };
    auto o = fast_options();
    int asked = 0;
    bool throttled = true;
    o.resolve_key_schema = [&](const std::string& table, const std::string&, ddb2os::key_schema& s, std::string& reason,
                               clock::time_point) {
        ++asked;
        if (throttled) {
            reason = "DescribeTable " + table + ": HTTP 400 ThrottlingException";
            return false;
        }
        s = {"pk", "sk"};
        return true;
    };
    ddb2os::sync_engine engine(o, t);
    auto pair = [](int seq, const char* table) {
        return R"({"eventID":"e)" + std::to_string(seq) + R"(","eventName":"INSERT","eventSourceARN":")" + arn(table) +
               R"(","dynamodb":{"ApproximateCreationDateTime":1700000000,"Keys":{"sk":{"N":"2"},"pk":{"S":"p"}},)"
               R"("NewImage":{"pk":{"S":"p"}},"SequenceNumber":")" +
               std::to_string(seq) + "\"}}";
    };
    // Pairs twice (asked once), and a one-attribute key of the same table that needs no schema.
    auto rep = engine.process(event({pair(1, "Pairs"), rec(2, "INSERT", "a", img, "Pairs"), pair(3, "Pairs")}), soon());
    CHECK(asked == 1);
    CHECK(rep.dead_lettered == 0);
    REQUIRE(rep.batch_item_failures() == std::vector<std::string>{"1", "3"});
    CHECK(rep.failures[0].reason ==
          "dynamodb.Keys: table 'Pairs' has a composite key (Keys holds 2 attributes) and no key schema is known "
          "for it; DescribeTable Pairs: HTTP 400 ThrottlingException");
    REQUIRE(t.sent.size() == 1);  // the one record that needs no schema; no dead letters
    CHECK(t.sent[0].body.find("dlq") == std::string::npos);
    // The next batch asks again, and gets it.
    throttled = false;
    rep = engine.process(event({pair(1, "Pairs")}), soon());
    CHECK(asked == 2);
    CHECK(rep.failures.empty());
    CHECK(t.sent.back().body.find(R"("_id":"p|2")") != std::string::npos);
    // A schema the resolver gives that cannot be used (one name twice) is not kept: reported, asked again.
    auto broken = o;
    int broken_asked = 0;
    broken.resolve_key_schema = [&](const std::string&, const std::string&, ddb2os::key_schema& s, std::string&,
                                    clock::time_point) {
        ++broken_asked;
        s = {"pk", "pk"};
        return true;
    };
    ddb2os::sync_engine misled(broken, t);
    for (int i = 1; i <= 2; ++i) {
        rep = misled.process(event({pair(1, "Pairs")}), soon());
        CHECK(broken_asked == i);
        REQUIRE(rep.batch_item_failures() == std::vector<std::string>{"1"});
        CHECK(rep.failures[0].reason.find("; the key schema given for table 'Pairs' names 'pk' twice") != std::string::npos);
    }
    // Without a resolver, a missing schema is the record's (the options'): a dead letter, as before.
    ddb2os::sync_engine plain(fast_options(), t);
    rep = plain.process(event({pair(1, "Pairs")}), soon());
    CHECK(rep.failures.empty());
    CHECK(rep.dead_lettered == 1);
}

TEST_CASE("sync: a request the cluster finds too large (413) is split in halves, in order") {
    // Five records; the cluster takes at most two actions a request; a record marked "big" never fits.
    const std::string big = R"({"id":{"S":"big"},"n":{"N":"1"}})";
    std::vector<std::string> recs;
    for (int i = 1; i <= 5; ++i) recs.push_back(rec(i, "INSERT", "k" + std::to_string(i), i == 4 ? big : img));
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t) {
        std::size_t lines = 0;
        for (char c : req.body) lines += c == '\n';
        if (req.body.find("-dlq\"") == std::string::npos && req.body.find("\"big\"") != std::string::npos)
            return ok("<html><h1>413 Request Entity Too Large</h1></html>", 413);
        if (lines > 4) return ok("<html><h1>413 Request Entity Too Large</h1></html>", 413);
        return all_created(req);
    };
    auto o = fast_options();
    o.bulk.first_max_bytes = 0;
    ddb2os::sync_engine engine(o, t);
    const auto rep = engine.process(event(recs), soon());
    // 5 (413) -> 2 (ok) + 3 (413) -> 1 (ok) + 2 (413) -> 1 (big alone: 413) + 1 (ok); then the dead letter.
    std::vector<std::string> ids;
    for (const auto& req : t.sent) {
        std::string s;
        for (std::size_t at = 0; (at = req.body.find("\"_id\":\"", at)) != std::string::npos; at += 7)
            s += req.body.substr(at + 7, req.body.find('"', at + 7) - at - 7) + " ";
        ids.push_back(s);
    }
    CHECK(ids == std::vector<std::string>{"k1 k2 k3 k4 k5 ", "k1 k2 ", "k3 k4 k5 ", "k3 ", "k4 k5 ", "k4 ", "k5 ", "ev4 "});
    CHECK(rep.indexed == 4);
    CHECK(rep.dead_lettered == 1);
    CHECK(rep.failures.empty());
    const auto doc = nlohmann::json::parse(t.sent.back().body.substr(t.sent.back().body.find('\n') + 1));
    CHECK(doc["error"]["type"] == "request_entity_too_large");
    CHECK(doc["error"]["status"] == 413);
}

TEST_CASE("sync: a dead letter too large for the cluster is written without its record") {
    // The cluster takes 700 bytes a request; a record with 1,200 bytes of text: its action is refused
    // alone, and so is its letter with the record.
    const std::string text(1200, 'x');
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t) {
        return req.body.size() > 700 ? ok("", 413) : all_created(req);
    };
    ddb2os::sync_engine engine(fast_options(), t);
    const auto rep = engine.process(event({rec(1, "INSERT", "k1", R"({"s":{"S":")" + text + R"("}})")}), soon());
    CHECK(rep.failures.empty());
    CHECK(rep.dead_lettered == 1);
    REQUIRE(t.sent.size() == 3);  // the action, the letter with the record, the letter without it
    CHECK(t.sent[1].body.find("\"record\":") != std::string::npos);
    const std::string& last = t.sent[2].body;
    const auto doc = nlohmann::json::parse(last.substr(last.find('\n') + 1));
    CHECK(doc["error"]["type"] == "request_entity_too_large");
    CHECK(doc["error"]["reason"].get<std::string>().find("HTTP 413: a single action (") == 0);
    CHECK(doc.count("record") == 0);
    CHECK(doc["record_omitted"].get<std::string>().find("is larger than the cluster accepts in a request") != std::string::npos);
    CHECK(doc["sequence_number"] == "1");
    CHECK(doc["keys"] == R"({"id":{"S":"k1"}})");  // as DynamoDB types them: GetItem takes them as they are

    // Refused even without the record: reported, with why.
    t.sent.clear();
    t.answer = [](const ddb2os::http::request&, std::size_t) { return ok("", 413); };
    const auto rep2 = engine.process(event({rec(2, "INSERT", "k2", R"({"s":{"S":")" + text + R"("}})")}), soon());
    CHECK(rep2.dead_lettered == 0);
    CHECK(rep2.batch_item_failures() == std::vector<std::string>{"2"});
    CHECK(rep2.failures[0].reason.find("dead letter refused: request_entity_too_large: HTTP 413") == 0);
}

TEST_CASE("sync: an excluded attribute is left out of the dead letter's record too") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t n) {
        return n == 0 ? ok(items({item("index", 400, "mapper_parsing_exception")})) : all_created(req);
    };
    auto o = fast_options();
    o.bulk.exclude_attributes = {"ssn"};
    ddb2os::sync_engine engine(o, t);
    const auto rep = engine.process(event({rec(1, "INSERT", "a", R"({"id":{"S":"a"},"ssn":{"S":"123-45-6789"},"n":{"S":"x"}})")}), soon());
    CHECK(rep.dead_lettered == 1);
    REQUIRE(t.sent.size() == 2);
    CHECK(t.sent[0].body.find("123-45-6789") == std::string::npos);
    CHECK(t.sent[1].body.find("123-45-6789") == std::string::npos);  // the document said not searchable
    CHECK(t.sent[1].body.find(R"(\"n\":{\"S\":\"x\"})") != std::string::npos);  // the rest of the record is there
}

TEST_CASE("sync: dead letters are cut into bodies as the batch is") {
    std::vector<std::string> recs;
    for (int i = 1; i <= 7; ++i) recs.push_back(rec(i, "INSERT", "k" + std::to_string(i), R"({"n":{"N":"x"}})"));
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t) { return all_created(req); };
    auto o = fast_options();
    o.bulk.max_actions = 3;
    ddb2os::sync_engine engine(o, t);
    auto rep = engine.process(event(recs), soon());
    REQUIRE(t.sent.size() == 3);  // 3 + 3 + 1, nothing else to send
    CHECK(rep.dead_lettered == 7);
    std::string all;
    for (const auto& req : t.sent) {
        CHECK(req.target == ddb2os::bulk_request_target());
        all += req.body;
    }
    for (int i = 1; i <= 7; ++i) CHECK(all.find("\"_id\":\"ev" + std::to_string(i) + "\"") != std::string::npos);
    CHECK(all.find("\"_id\":\"ev1\"") < all.find("\"_id\":\"ev7\""));

    // By bytes: each dead letter alone is larger than max_bytes, so each goes in a request of its own.
    o = fast_options();
    o.bulk.max_bytes = 256;
    t.sent.clear();
    ddb2os::sync_engine small(o, t);
    rep = small.process(event(recs), soon());
    CHECK(t.sent.size() == 7);
    CHECK(rep.dead_lettered == 7);
}

TEST_CASE("sync: a write block (cluster_block_exception) is waited out, not dead-lettered") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request&, std::size_t n) {
        return n < 2 ? ok(items({item("index", 403, "cluster_block_exception")}))
                     : ok(R"({"errors":false,"items":[{"index":{"status":201}}]})");
    };
    ddb2os::sync_engine engine(fast_options(), t);
    const auto rep = engine.process(event({rec(1, "INSERT", "a", img)}), soon());
    CHECK(t.sent.size() == 3);
    CHECK(rep.indexed == 1);
    CHECK(rep.dead_lettered == 0);
    CHECK(rep.failures.empty());
}

TEST_CASE("sync: items refused for the cluster's set-up (permissions, a missing or closed index) are reported, not dead-lettered") {
    // The security plugin refuses items one by one when the role may not write the index; an index
    // that auto-creation will not make, or a closed one, refuses every record alike. Dead-lettering
    // them would let the shard move on while the index falls behind.
    scripted_transport t;
    t.answer = [](const ddb2os::http::request&, std::size_t) {
        return ok(items({item("index", 403, "security_exception"), item("index", 404, "index_not_found_exception"),
                         item("index", 400, "index_closed_exception"), item("delete", 404, "index_not_found_exception"),
                         item("index", 401, "unauthorized")}));
    };
    ddb2os::sync_engine engine(fast_options(), t);
    const auto rep = engine.process(event({rec(1, "INSERT", "a", img), rec(2, "INSERT", "b", img), rec(3, "INSERT", "c", img),
                                           rec(4, "REMOVE", "d"), rec(5, "INSERT", "e", img)}),
                                    soon());
    CHECK(t.sent.size() == 1);  // neither retried here nor written to the dead-letter index
    CHECK(rep.dead_lettered == 0);
    CHECK(rep.deleted == 1);  // a delete in a missing index: already gone
    REQUIRE(rep.failures.size() == 4);
    CHECK(rep.failures[0].sequence_number == "1");
    CHECK(rep.failures[0].reason == R"(HTTP 403 security_exception: because "security_exception")");
    CHECK(rep.failures[1].reason == R"(HTTP 404 index_not_found_exception: because "index_not_found_exception")");
    CHECK(rep.failures[2].reason == R"(HTTP 400 index_closed_exception: because "index_closed_exception")");
    CHECK(rep.failures[3].sequence_number == "5");
    CHECK(rep.failures[3].reason == R"(HTTP 401 unauthorized: because "unauthorized")");
}

TEST_CASE("sync: a dead letter whose index would be the record's own is reported, not written among the documents") {
    // A fixed dead-letter name equal to a table's index (named after the table): the options cannot know it.
    scripted_transport t;
    t.answer = [](const ddb2os::http::request&, std::size_t) { return ok(items({item("index", 400, "mapper_parsing_exception")})); };
    auto o = fast_options();
    o.dlq_index = "books";
    ddb2os::sync_engine engine(o, t);
    const auto rep = engine.process(event({rec(1, "INSERT", "a", img)}), soon());
    CHECK(t.sent.size() == 1);
    CHECK(rep.dead_lettered == 0);
    REQUIRE(rep.failures.size() == 1);
    CHECK(rep.failures[0].reason ==
          R"(mapper_parsing_exception: because "mapper_parsing_exception" (not dead-lettered: the dead-letter index is the record's own index "books"))");
}

TEST_CASE("sync: DescribeTable's answer gives the ordered key schema") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t) {
        CHECK(req.body == R"({"TableName":"books"})");
        return ok(R"({"Table":{"TableName":"books","KeySchema":[{"AttributeName":"bookTitle","KeyType":"RANGE"},{"AttributeName":"author","KeyType":"HASH"}]}})");
    };
    ddb2os::key_schema s;
    std::string reason;
    CHECK(ddb2os::describe_table_key_schema(t, "books", s, reason, soon()));
    CHECK(s == ddb2os::key_schema{"author", "bookTitle"});
    CHECK(t.sent[0].headers[1].value == "DynamoDB_20120810.DescribeTable");
    t.answer = [](const ddb2os::http::request&, std::size_t) { return ok(R"({"__type":"ResourceNotFoundException"})", 400); };
    CHECK_FALSE(ddb2os::describe_table_key_schema(t, "books", s, reason, soon()));
    CHECK(reason == R"(DescribeTable books: HTTP 400 {"__type":"ResourceNotFoundException"})");
}

TEST_CASE("sync: the defaults README gives") {
    const ddb2os::sync_options o;
    CHECK(o.retry.base == std::chrono::milliseconds(50));
    CHECK(o.retry.cap == std::chrono::seconds(5));
    CHECK(o.dlq_recheck == std::chrono::minutes(5));
    CHECK(o.bulk.max_bytes == 5u * 1024u * 1024u);
    CHECK(o.bulk.max_actions == 1000);
}

TEST_CASE("sync: options are checked") {
    scripted_transport t;
    auto o = fast_options();
    o.refresh = "always";
    CHECK_THROWS_WITH_AS(ddb2os::sync_engine(o, t), "[ddb2os.option.invalid] refresh must be true, false or wait_for, not \"always\"",
                         ddb2os::error);
    o = fast_options();
    o.dlq_index = "DLQ";
    CHECK_THROWS_WITH_AS(ddb2os::sync_engine(o, t), "[ddb2os.option.invalid] dead-letter index \"DLQ\" is invalid: it must be lowercase",
                         ddb2os::error);
    for (const char* same : {"{index}", "books"}) {  // letters among the documents
        o = fast_options();
        o.bulk.index = "books";
        o.dlq_index = same;
        CHECK_THROWS_WITH_AS(ddb2os::sync_engine(o, t), ("[ddb2os.option.invalid] dead-letter index \"" + std::string(same) +
                                                         "\" is the data index itself: give the dead letters an index of their own").c_str(),
                             ddb2os::error);
    }
    o = fast_options();
    o.dlq_index = "{index}";  // the index named after each table
    CHECK_THROWS_WITH_AS(ddb2os::sync_engine(o, t),
                         "[ddb2os.option.invalid] dead-letter index \"{index}\" is the data index itself: give the dead "
                         "letters an index of their own",
                         ddb2os::error);
    o.bulk.index = "books";
    o.dlq_index = "books-{index}";
    CHECK_NOTHROW(ddb2os::sync_engine(o, t));
    o = fast_options();
    CHECK(o.bulk.first_max_bytes == 256 * 1024);  // the engine's default
    o.bulk.first_max_bytes = 10;
    CHECK_THROWS_WITH_AS(ddb2os::sync_engine(o, t), "[ddb2os.option.invalid] first_max_bytes must be 0 or at least 64",
                         ddb2os::error);
    o.bulk.first_max_bytes = 0;
    CHECK_NOTHROW(ddb2os::sync_engine(o, t));
}

// ---------------------------------------------------------------- from a mutation run of the C++ core
// Each case below fails for a change to sync.hpp that the other tests let through.

// One item refused once with `status` and `type`, then written: retried once, never dead-lettered.
static void check_retried_once(int status, const char* type) {
    CAPTURE(status);
    scripted_transport t;
    t.answer = [status, type](const ddb2os::http::request& req, std::size_t n) {
        return n == 0 ? ok(items({item("index", status, type)})) : all_created(req);
    };
    ddb2os::sync_engine engine(fast_options(), t);
    const auto rep = engine.process(event({rec(1, "INSERT", "a", img)}), soon());
    CHECK(rep.failures.empty());
    CHECK((rep.indexed == 1 && rep.retries == 1 && rep.dead_lettered == 0));
    CHECK(t.sent.size() == 2);
}

TEST_CASE("sync: an item answered 500 is retried, not dead-lettered") { check_retried_once(500, "exception"); }

TEST_CASE("sync: a 409 that is not a version conflict is the record's error, not a success") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t n) {
        return n == 0 ? ok(items({item("index", 409, "other_exception")})) : all_created(req);
    };
    ddb2os::sync_engine engine(fast_options(), t);
    const auto rep = engine.process(event({rec(1, "INSERT", "a", img)}), soon());
    CHECK(rep.version_conflicts == 0);
    CHECK(rep.dead_lettered == 1);
    CHECK(rep.indexed == 0);
    REQUIRE(t.sent.size() == 2);  // the batch, then its dead letter
    CHECK(t.sent[1].body.find("\"other_exception\"") != std::string::npos);
}

TEST_CASE("sync: failures that waiting seldom fixes are counted in a row: an answer between them starts again") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t n) {
        if (n < 5) {
            if (n % 2) return ok("busy", 503);
            ddb2os::http::result r;
            r.error = ddb2os::http::error_kind::tls;
            r.message = "TLS handshake failed";
            return r;
        }
        return all_created(req);
    };
    ddb2os::sync_engine engine(fast_options(), t);
    const auto rep = engine.process(event({rec(1, "INSERT", "a", img)}), soon());
    CHECK(rep.failures.empty());  // three TLS failures, never three in a row
    CHECK(rep.indexed == 1);
    CHECK(t.sent.size() == 6);
}

// ---------------------------------------------------------------- from a fourth mutation run
// Each case below fails for a change to sync.hpp (or to what it reads) that the other tests let through.

namespace {
// A record of table Pairs, whose Keys hold two attributes (a composite key).
std::string pair_record(int seq) {
    return R"({"eventID":"e)" + std::to_string(seq) + R"(","eventName":"INSERT","eventSourceARN":")" + arn("Pairs") +
           R"(","dynamodb":{"ApproximateCreationDateTime":1700000000,"Keys":{"sk":{"N":"2"},"pk":{"S":"p"}},)"
           R"("NewImage":{"pk":{"S":"p"}},"SequenceNumber":")" + std::to_string(seq) + "\"}}";
}
}  // namespace

TEST_CASE("sync: the options' edges") {
    scripted_transport t;
    SUBCASE("every refresh value the options name is taken") {
        for (const char* refresh : {"", "true", "false", "wait_for"}) {
            CAPTURE(refresh);
            auto o = fast_options();
            o.refresh = refresh;
            CHECK_NOTHROW(ddb2os::sync_engine(o, t));
        }
    }
    SUBCASE("a retry's base may equal its cap, and is never 0 (retries that never wait); its cap is at most a day") {
        auto o = fast_options();
        o.retry.base = o.retry.cap = std::chrono::milliseconds(5);
        CHECK_NOTHROW(ddb2os::sync_engine(o, t));
        for (const long base : {0L, -1L, 6L}) {
            CAPTURE(base);
            o.retry.base = std::chrono::milliseconds(base);
            CHECK_THROWS_WITH_AS(ddb2os::sync_engine(o, t), "[ddb2os.option.invalid] retry needs 0 < base <= cap", ddb2os::error);
        }
        // At most a day: doubled towards milliseconds::max(), a wait overflowed.
        o.retry.base = std::chrono::milliseconds(1);
        o.retry.cap = std::chrono::hours(24);
        CHECK_NOTHROW(ddb2os::sync_engine(o, t));
        for (const auto cap : {std::chrono::hours(24) + std::chrono::milliseconds(1), std::chrono::milliseconds::max()}) {
            o.retry.cap = cap;
            CHECK_THROWS_WITH_AS(ddb2os::sync_engine(o, t), "[ddb2os.option.invalid] retry's cap must be at most 1 day",
                                 ddb2os::error);
        }
    }
    SUBCASE("a dead-letter index's recheck may be 0 (every time), never negative, at most a year") {
        auto o = fast_options();
        o.dlq_recheck = std::chrono::milliseconds(0);
        CHECK_NOTHROW(ddb2os::sync_engine(o, t));
        o.dlq_recheck = std::chrono::milliseconds(-1);
        CHECK_THROWS_WITH_AS(ddb2os::sync_engine(o, t), "[ddb2os.option.invalid] dlq_recheck must not be negative", ddb2os::error);
        // At most a year ("never", in effect): a time found plus milliseconds::max() overflowed.
        o.dlq_recheck = std::chrono::hours(24 * 365);
        CHECK_NOTHROW(ddb2os::sync_engine(o, t));
        o.dlq_recheck = std::chrono::milliseconds::max();
        CHECK_THROWS_WITH_AS(ddb2os::sync_engine(o, t), "[ddb2os.option.invalid] dlq_recheck must be at most 365 days",
                             ddb2os::error);
    }
}

TEST_CASE("sync: the report's records are every record of the batch, whatever became of each") {
    // One written, one superseded by it, one dead-lettered, one not a record at all: four records.
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t) { return all_created(req); };
    ddb2os::sync_engine engine(fast_options(), t);
    const auto rep = engine.process(
        event({rec(1, "INSERT", "a", img), rec(2, "MODIFY", "a", img), rec(3, "INSERT", "b", R"({"n":{"N":"x"}})"), "7"}),
        soon());
    CHECK(rep.failures.empty());
    CHECK(rep.records == 4);
    CHECK((rep.actions == 1 && rep.superseded == 1 && rep.dead_lettered == 2));
    CHECK(nlohmann::json::parse(rep.log_line()).at("Records") == 4);
}

TEST_CASE("sync: only the key schema's absence is reported for an unresolved table; its records' own errors are dead letters") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t) { return all_created(req); };
    auto o = fast_options();
    o.resolve_key_schema = [](const std::string& table, const std::string&, ddb2os::key_schema&, std::string& reason,
                              clock::time_point) {
        reason = "DescribeTable " + table + ": HTTP 400 ThrottlingException";
        return false;
    };
    ddb2os::sync_engine engine(o, t);
    // Record 2 is of the same table, its Keys one attribute, its image a bad number: retrying it
    // when DescribeTable answers would fail it again.
    const auto rep = engine.process(event({pair_record(1), rec(2, "INSERT", "a", R"({"n":{"N":"x"}})", "Pairs")}), soon());
    CHECK(rep.batch_item_failures() == std::vector<std::string>{"1"});
    CHECK(rep.dead_lettered == 1);
    REQUIRE(t.sent.size() == 1);
    CHECK(t.sent[0].body.find(R"("_index":"pairs-dlq","_id":"ev2")") != std::string::npos);
}

TEST_CASE("sync: a dead letter's reason for an error without a path is the message alone") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t) { return all_created(req); };
    ddb2os::sync_engine engine(fast_options(), t);
    const auto rep = engine.process(event({"7"}), soon());
    CHECK(rep.dead_lettered == 1);
    REQUIRE(t.sent.size() == 1);
    const auto doc = nlohmann::json::parse(t.sent[0].body.substr(t.sent[0].body.find('\n') + 1));
    CHECK(doc["error"]["type"] == "ddb2os.record.not_object");
    CHECK(doc["error"]["reason"] == "a record must be an object, not a number");
}

TEST_CASE("sync: failures are reported in stream order, whichever step failed each, and counted") {
    // Without dead letters, records 1 and 3 fail when converted (after the batch is sent), record 2
    // when the cluster refuses it (while it is sent).
    scripted_transport t;
    t.answer = [](const ddb2os::http::request&, std::size_t) { return ok(items({item("index", 403, "security_exception")})); };
    auto o = fast_options();
    o.dlq_index = "";
    ddb2os::sync_engine engine(o, t);
    const std::string bad = R"({"n":{"N":"x"}})";
    const auto rep = engine.process(event({rec(1, "INSERT", "a", bad), rec(2, "INSERT", "b", img), rec(3, "INSERT", "c", bad)}), soon());
    SUBCASE("in stream order: Lambda retries from the lowest") {
        CHECK(rep.batch_item_failures() == std::vector<std::string>{"1", "2", "3"});
    }
    SUBCASE("counted in the report and its log line") {
        CHECK(rep.failed == 3);
        CHECK(nlohmann::json::parse(rep.log_line()).at("Failed") == 3);
    }
}

TEST_CASE("sync: a table whose key schema the options give is never asked for") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t) { return all_created(req); };
    auto o = fast_options();
    o.bulk.key_schemas["Pairs"] = {"pk", "sk"};
    int asked = 0;
    o.resolve_key_schema = [&](const std::string&, const std::string&, ddb2os::key_schema&, std::string& reason,
                               clock::time_point) {
        ++asked;  // as a DescribeTable that times out: every batch would wait for it
        reason = "DescribeTable Pairs: connect timeout";
        return false;
    };
    ddb2os::sync_engine engine(o, t);
    const auto rep = engine.process(event({pair_record(1)}), soon());
    CHECK(asked == 0);
    CHECK(rep.failures.empty());
    CHECK(rep.indexed == 1);
}

TEST_CASE("sync: a resolver that gives no reason still has its records' failures say why") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t) { return all_created(req); };
    auto o = fast_options();
    o.resolve_key_schema = [](const std::string&, const std::string&, ddb2os::key_schema&, std::string&, clock::time_point) {
        return false;
    };
    ddb2os::sync_engine engine(o, t);
    const auto rep = engine.process(event({pair_record(1)}), soon());
    REQUIRE(rep.failures.size() == 1);
    CHECK(rep.failures[0].reason ==
          "dynamodb.Keys: table 'Pairs' has a composite key (Keys holds 2 attributes) and no key schema is known "
          "for it; the key schema could not be asked for");
}

TEST_CASE("sync: the backoff stays at its cap however many attempts the deadline leaves room for") {
    // A 1 ms cap and half a second: hundreds of attempts. The wait's ceiling doubles only up to the
    // cap; doubled past it, it overflowed at the 63rd attempt, and the batch then slept for years,
    // gave up long before its deadline, or retried without waiting. Run on a thread of its own, so
    // that a batch that never ends fails the test instead of hanging it.
    struct batch {
        scripted_transport t;
        ddb2os::sync_report rep;
        std::promise<void> done;
    };
    const auto b = std::make_shared<batch>();
    b->t.answer = [](const ddb2os::http::request&, std::size_t) { return ok("busy", 503); };
    auto o = fast_options();
    o.retry.base = o.retry.cap = std::chrono::milliseconds(1);
    const auto start = clock::now();
    std::thread([b, o, start] {
        ddb2os::sync_engine engine(o, b->t);
        b->rep = engine.process(event({rec(1, "INSERT", "a", img)}), start + std::chrono::milliseconds(500));
        b->done.set_value();
    }).detach();
    REQUIRE(b->done.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    CHECK(clock::now() - start >= std::chrono::milliseconds(450));  // retried until the deadline
    CHECK(b->t.sent.size() > 64);
    CHECK(b->t.sent.size() < 3000);  // about one attempt every 0.5 ms (a wait of 0 or 1 ms), never a busy loop
    REQUIRE(b->rep.failures.size() == 1);
    CHECK(b->rep.failures[0].reason.find("still failing at the deadline after ") == 0);
}

TEST_CASE("sync: an item refused as too many requests (429) is retried whatever its error's type") {
    // OpenSearch's circuit breakers answer 429 with circuit_breaking_exception: the cluster's load, not the record.
    check_retried_once(429, "circuit_breaking_exception");
}

TEST_CASE("sync: an item refused with 401 or 403 is reported whatever its error says") {
    scripted_transport t;
    ddb2os::sync_engine engine(fast_options(), t);
    SUBCASE("a 403 of a type the engine does not name: the cluster's set-up, not the record") {
        t.answer = [](const ddb2os::http::request&, std::size_t) { return ok(items({item("index", 403, "authorization_exception")})); };
        const auto rep = engine.process(event({rec(1, "INSERT", "a", img)}), soon());
        CHECK(t.sent.size() == 1);
        CHECK(rep.dead_lettered == 0);
        REQUIRE(rep.failures.size() == 1);
        CHECK(rep.failures[0].reason == R"(HTTP 403 authorization_exception: because "authorization_exception")");
    }
    SUBCASE("an error without a reason: its type alone, no trailing ': '") {
        t.answer = [](const ddb2os::http::request&, std::size_t) {
            return ok(R"({"errors":true,"items":[{"index":{"status":401,"error":"unauthorized"}}]})");
        };
        const auto rep = engine.process(event({rec(1, "INSERT", "a", img)}), soon());
        REQUIRE(rep.failures.size() == 1);
        CHECK(rep.failures[0].reason == "HTTP 401 unauthorized");
    }
}

TEST_CASE("sync: a Retry-After holds only the retry after the answer that gave it") {
    // The whole request throttled with Retry-After: 1, then one item throttled without one: that
    // item's retry waits its backoff (1-4 ms), not the second again, which the deadline (1.9 s: 2 s of
    // waits would pass it) has no room for.
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t n) {
        if (n == 0) {
            ddb2os::http::result r = ok("{}", 429);
            r.res.headers = {{"Retry-After", "1"}};
            return r;
        }
        if (n == 1) return ok(items({item("index", 429, "es_rejected_execution_exception")}));
        return all_created(req);
    };
    ddb2os::sync_engine engine(fast_options(), t);
    const auto rep = engine.process(event({rec(1, "INSERT", "a", img)}), clock::now() + std::chrono::milliseconds(1900));
    CHECK(rep.failures.empty());
    CHECK(rep.indexed == 1);
    CHECK(t.sent.size() == 3);
}

TEST_CASE("sync: the dead letters' retries are counted in the report") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t n) {
        return n == 0 ? ok(items({item("index", 429, "es_rejected_execution_exception")})) : all_created(req);
    };
    ddb2os::sync_engine engine(fast_options(), t);
    const auto rep = engine.process(event({rec(1, "INSERT", "a", R"({"n":{"N":"x"}})")}), soon());
    REQUIRE(t.sent.size() == 2);  // the letter, throttled, then written
    CHECK(rep.dead_lettered == 1);
    CHECK(rep.retries == 1);
    CHECK(rep.requests == 3);  // with the dead-letter index's creation
}

TEST_CASE("sync: a dead-letter index whose name holds '_' is created with its mapping too") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t) { return all_created(req); };
    ddb2os::sync_engine engine(fast_options(), t);
    const auto rep = engine.process(event({rec(1, "INSERT", "a", R"({"n":{"N":"x"}})", "my_books")}), soon());
    CHECK(rep.dead_lettered == 1);
    REQUIRE(t.puts.size() == 1);
    CHECK(t.puts[0].target == "/my_books-dlq");
}

TEST_CASE("sync: creating a dead-letter index is given at most 10 s and half the time left") {
    // A cluster that cannot start the index's shards holds its answer for 30 s; the letters need the rest.
    struct deadlines : scripted_transport {
        std::vector<clock::time_point> put_deadlines;
        ddb2os::http::result send(const ddb2os::http::request& req, clock::time_point deadline) override {
            if (req.method == "PUT") put_deadlines.push_back(deadline);
            return scripted_transport::send(req, deadline);
        }
    };
    const std::string ev = event({rec(1, "INSERT", "a", R"({"n":{"N":"x"}})")});
    for (const auto left : {std::chrono::seconds(60), std::chrono::seconds(4)}) {
        CAPTURE(left.count());
        deadlines t;
        t.answer = [](const ddb2os::http::request& req, std::size_t) { return all_created(req); };
        ddb2os::sync_engine engine(fast_options(), t);
        const auto start = clock::now();
        const auto rep = engine.process(ev, start + left);
        CHECK(rep.dead_lettered == 1);
        REQUIRE(t.put_deadlines.size() == 1);
        CHECK(t.put_deadlines[0] <= start + std::min<clock::duration>(std::chrono::seconds(10), left / 2) + std::chrono::milliseconds(1500));
        CHECK(t.put_deadlines[0] > start + std::min<clock::duration>(std::chrono::seconds(10), left / 2) - std::chrono::milliseconds(500));
    }
}

TEST_CASE("sync: a dead letter names its record") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request& req, std::size_t) { return all_created(req); };
    ddb2os::sync_engine engine(fast_options(), t);
    SUBCASE("its _id is the sequence number when the record has no eventID") {
        std::string r = rec(4, "INSERT", "a", R"({"n":{"N":"x"}})");
        r.erase(r.find(R"("eventID":"ev4",)"), std::string_view(R"("eventID":"ev4",)").size());
        CHECK(engine.process(event({r}), soon()).dead_lettered == 1);
        REQUIRE(t.sent.size() == 1);
        CHECK(nlohmann::json::parse(t.sent[0].body.substr(0, t.sent[0].body.find('\n')))["index"]["_id"] == "4");
    }
    SUBCASE("it holds the record's sequence number, event ID, index and _id") {
        CHECK(engine.process(event({rec(4, "INSERT", "a", R"({"n":{"N":"x"}})")}), soon()).dead_lettered == 1);
        REQUIRE(t.sent.size() == 1);
        const auto doc = nlohmann::json::parse(t.sent[0].body.substr(t.sent[0].body.find('\n') + 1));
        CHECK(doc.at("sequence_number") == "4");
        CHECK(doc.at("event_id") == "ev4");
        CHECK(doc.at("index") == "books");
        CHECK(doc.at("id") == "a");
    }
}

TEST_CASE("sync: a transport that throws makes the batch throw, never end with its records unreported") {
    struct broken : ddb2os::http::transport {
        ddb2os::http::result send(const ddb2os::http::request&, clock::time_point) override {
            throw std::runtime_error("the transport broke");
        }
    } t;
    ddb2os::sync_engine engine(fast_options(), t);
    CHECK_THROWS_WITH_AS(engine.process(event({rec(1, "INSERT", "a", img)}), soon()), "the transport broke", std::runtime_error);
}

TEST_CASE("sync: DescribeTable's key schema without a HASH key is no key schema") {
    scripted_transport t;
    t.answer = [](const ddb2os::http::request&, std::size_t) {
        return ok(R"({"Table":{"KeySchema":[{"AttributeName":"bookTitle","KeyType":"RANGE"}]}})");
    };
    ddb2os::key_schema s;
    std::string reason;
    CHECK_FALSE(ddb2os::describe_table_key_schema(t, "books", s, reason, soon()));
    CHECK(reason == "DescribeTable books: the key schema has no HASH key");
}
