// Bulk bodies (bulk.hpp): events in, NDJSON bodies out, every record accounted for.
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace {

std::string arn(std::string_view table) {
    return "arn:aws:dynamodb:us-east-1:123456789012:table/" + std::string(table) + "/stream/2024-01-01T00:00:00.000";
}

// One stream record as Lambda delivers it.
std::string rec(int seq, std::string_view event_name, std::string_view keys, std::string_view image = {},
                std::string_view table = "Books", std::string_view extra = {}) {
    std::string s = R"({"eventID":"ev)" + std::to_string(seq) + R"(","eventName":")" + std::string(event_name) +
                    R"(","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"us-east-1","eventSourceARN":")" +
                    arn(table) + "\"" + std::string(extra) + R"(,"dynamodb":{"ApproximateCreationDateTime":1700000000,"Keys":)" +
                    std::string(keys);
    if (!image.empty()) s += ",\"NewImage\":" + std::string(image);
    s += R"(,"SequenceNumber":")" + std::to_string(seq) + R"(","SizeBytes":10,"StreamViewType":"NEW_AND_OLD_IMAGES"}})";
    return s;
}

std::string event(const std::vector<std::string>& records) {
    std::string s = "{\"Records\":[";
    for (std::size_t i = 0; i < records.size(); ++i) s += (i ? "," : "") + records[i];
    return s + "]}";
}

std::string book_keys(std::string_view author, std::string_view title) {
    return R"({"bookTitle":{"S":")" + std::string(title) + R"("},"author":{"S":")" + std::string(author) + R"("}})";
}
std::string book_image(std::string_view author, std::string_view title, int year) {
    return R"({"author":{"S":")" + std::string(author) + R"("},"bookTitle":{"S":")" + std::string(title) +
           R"("},"year":{"N":")" + std::to_string(year) + R"("}})";
}

ddb2os::bulk_options books_options() {
    ddb2os::bulk_options o;
    o.key_schemas["Books"] = {"author", "bookTitle"};
    return o;
}

std::string all_bodies(const ddb2os::bulk_result& r) {
    std::string s;
    for (const auto& b : r.bodies) {
        test::check_ndjson(b.data);
        s += b.data;
    }
    return s;
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    REQUIRE_MESSAGE(f.good(), "cannot open " << path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace

TEST_CASE("bulk: the AWS documentation's sample stream event") {
    const std::string sample = read_file(std::string(DDB2OS_TEST_DATA) + "/aws-sample-event.json");
    const auto r = ddb2os::build_bulk(sample);
    // INSERT, MODIFY and REMOVE of one item: only the REMOVE is left to send.
    CHECK(all_bodies(r) == "{\"delete\":{\"_index\":\"exampletablewithstream\",\"_id\":\"101\"}}\n");
    CHECK(r.superseded == 2);
    CHECK(r.actions == 1);
    CHECK(r.errors.empty());
    REQUIRE(r.bodies.size() == 1);
    CHECK(r.bodies[0].records == std::vector<std::uint32_t>{2});
    REQUIRE(r.records.size() == 3);
    CHECK(r.records[2].sequence_number == "333");
    CHECK(r.records[2].event_id == "3");
    CHECK(r.records[0].status == ddb2os::record_status::superseded);
    CHECK(r.records[1].status == ddb2os::record_status::superseded);
    CHECK(r.records[2].status == ddb2os::record_status::emitted);

    // The same through nlohmann, and with the first two records only.
    auto j = nlohmann::ordered_json::parse(sample);
    j["Records"].erase(2);
    const auto r2 = ddb2os::build_bulk<ddb2os::nlohmann_ordered_adapter>(&j);
    CHECK(all_bodies(r2) ==
          "{\"index\":{\"_index\":\"exampletablewithstream\",\"_id\":\"101\"}}\n{\"Message\":\"This item has changed\",\"Id\":101}\n");
    CHECK(r2.bodies[0].records == std::vector<std::uint32_t>{1});
}

TEST_CASE("bulk: index, delete and composite ids in stream order") {
    const auto r = ddb2os::build_bulk(event({rec(1, "INSERT", book_keys("Dan Brown", "Inferno"), book_image("Dan Brown", "Inferno", 2013)),
                                             rec(2, "INSERT", book_keys("Dan Brown", "Origin"), book_image("Dan Brown", "Origin", 2017)),
                                             rec(3, "REMOVE", book_keys("Dan Brown", "Inferno"))}),
                                      books_options());
    CHECK(all_bodies(r) ==
          "{\"index\":{\"_index\":\"books\",\"_id\":\"Dan Brown|Origin\"}}\n"
          "{\"author\":\"Dan Brown\",\"bookTitle\":\"Origin\",\"year\":2017}\n"
          "{\"delete\":{\"_index\":\"books\",\"_id\":\"Dan Brown|Inferno\"}}\n");
    CHECK(r.bodies[0].records == std::vector<std::uint32_t>{1, 2});
    CHECK(r.superseded == 1);
    CHECK(r.records[0].status == ddb2os::record_status::superseded);
}

TEST_CASE("bulk: when a document's last change cannot be written, the change it superseded is sent") {
    const std::string k = book_keys("a", "t"), bad = R"({"author":{"S":"a"},"bookTitle":{"S":"t"},"year":{"N":"x"}})";
    // Good image, then one with an invalid number: the good one is sent, the bad one is an error.
    auto r = ddb2os::build_bulk(event({rec(1, "INSERT", k, book_image("a", "t", 2001)),
                                       rec(2, "INSERT", book_keys("b", "u"), book_image("b", "u", 1)),
                                       rec(3, "MODIFY", k, bad)}),
                                books_options());
    CHECK(all_bodies(r) ==
          "{\"index\":{\"_index\":\"books\",\"_id\":\"b|u\"}}\n{\"author\":\"b\",\"bookTitle\":\"u\",\"year\":1}\n"
          "{\"index\":{\"_index\":\"books\",\"_id\":\"a|t\"}}\n{\"author\":\"a\",\"bookTitle\":\"t\",\"year\":2001}\n");
    CHECK(r.bodies[0].records == std::vector<std::uint32_t>{1, 0});
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].record == 2);
    CHECK(r.records[0].status == ddb2os::record_status::emitted);
    CHECK(r.records[2].status == ddb2os::record_status::failed);
    CHECK(r.superseded == 0);
    CHECK(r.actions == 2);
    // Down the chain: two bad changes after a REMOVE; the REMOVE is sent.
    r = ddb2os::build_bulk(event({rec(1, "INSERT", k, book_image("a", "t", 1)), rec(2, "REMOVE", k),
                                  rec(3, "INSERT", k, bad), rec(4, "MODIFY", k, bad)}),
                           books_options());
    CHECK(all_bodies(r) == "{\"delete\":{\"_index\":\"books\",\"_id\":\"a|t\"}}\n");
    CHECK(r.errors.size() == 2);
    CHECK(r.superseded == 1);  // the first INSERT only
    CHECK(r.records[0].status == ddb2os::record_status::superseded);
    CHECK(r.records[1].status == ddb2os::record_status::emitted);
    // Every change bad: each is its error, nothing is sent.
    r = ddb2os::build_bulk(event({rec(1, "INSERT", k, bad), rec(2, "MODIFY", k, bad)}), books_options());
    CHECK(r.bodies.empty());
    CHECK(r.errors.size() == 2);
    CHECK(r.superseded == 0);
    // Too large counts as cannot be written, too.
    auto o = books_options();
    o.max_bytes = 200;
    const std::string big = R"({"author":{"S":"a"},"bookTitle":{"S":"t"},"s":{"S":")" + std::string(300, 'x') + "\"}}";
    r = ddb2os::build_bulk(event({rec(1, "INSERT", k, book_image("a", "t", 7)), rec(2, "MODIFY", k, big)}), o);
    CHECK(all_bodies(r).find("\"year\":7") != std::string::npos);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].code == ddb2os::errc::record_too_large);
}

TEST_CASE("bulk: by default a body holds at most 1000 actions and 5 MiB") {
    const ddb2os::bulk_options defaults;
    CHECK(defaults.max_actions == 1000);
    CHECK(defaults.max_bytes == 5u * 1024u * 1024u);
    CHECK(defaults.first_max_bytes == 0);
    std::vector<std::string> records;
    for (int i = 0; i < 1001; ++i) {
        const std::string id = std::to_string(i);
        records.push_back(rec(i + 1, "INSERT", R"({"id":{"S":")" + id + "\"}}", R"({"id":{"S":")" + id + "\"}}"));
    }
    auto r = ddb2os::build_bulk(event(records), ddb2os::bulk_options{});
    REQUIRE(r.bodies.size() == 2);
    CHECK(r.bodies[0].records.size() == 1000);
    CHECK(r.bodies[1].records.size() == 1);
    // 1000 documents of 6 KB each (about 6 MB): cut by size before the count.
    const std::string pad(6000, 'x');
    records.resize(1000);
    for (int i = 0; i < 1000; ++i) {
        const std::string id = std::to_string(i);
        records[static_cast<std::size_t>(i)] = rec(i + 1, "INSERT", R"({"id":{"S":")" + id + "\"}}",
                                                   R"({"id":{"S":")" + id + R"("},"p":{"S":")" + pad + "\"}}");
    }
    r = ddb2os::build_bulk(event(records), ddb2os::bulk_options{});
    REQUIRE(r.bodies.size() == 2);
    CHECK(r.bodies[0].data.size() <= 5u * 1024u * 1024u);
    CHECK(r.bodies[0].data.size() > 5u * 1024u * 1024u - 7000u);  // as full as the next record allows
}

TEST_CASE("bulk: the same _id in two indexes is two documents") {
    ddb2os::bulk_options o;
    const std::string k = R"({"id":{"S":"1"}})", img = R"({"id":{"S":"1"}})";
    const auto r = ddb2os::build_bulk(event({rec(1, "INSERT", k, img, "A"), rec(2, "INSERT", k, img, "B")}), o);
    CHECK(r.actions == 2);
    CHECK(r.superseded == 0);
}

TEST_CASE("bulk: the last change per document wins among thousands, across tables") {
    // 6,000 changes to 900 documents in two tables (ids repeat in both): every table/_id pair keeps
    // exactly its last change, wherever it lands in the collapse table.
    std::vector<std::string> records;
    std::map<std::string, int> last;  // "table/id" -> seq of its last change
    for (int i = 0; i < 6000; ++i) {
        const int doc = (i * 7919) % 450;
        const std::string table = i % 7 < 3 ? "Books" : "Films";
        const std::string author = "a|" + std::to_string(doc % 13), title = "t" + std::to_string(doc);
        const bool remove = i % 17 == 0;
        records.push_back(rec(i, remove ? "REMOVE" : "MODIFY", book_keys(author, title),
                              remove ? "" : book_image(author, title, i), table));
        last[(table == "Books" ? "books/" : "films/") + ddb2os::compose_document_id({author, title})] = i;
    }
    ddb2os::bulk_options o = books_options();
    o.key_schemas["Films"] = {"author", "bookTitle"};
    const auto r = ddb2os::build_bulk(event(records), o);
    REQUIRE(r.errors.empty());
    CHECK(last.size() == 900);
    CHECK(r.actions == 900);
    CHECK(r.superseded == 6000 - 900);
    std::set<int> emitted;
    for (const auto& b : r.bodies) emitted.insert(b.records.begin(), b.records.end());
    std::set<int> expected;
    for (const auto& [key, seq] : last) expected.insert(seq);
    CHECK(emitted == expected);
    for (std::size_t i = 0; i < r.records.size(); ++i)
        CHECK(r.records[i].status == (expected.count(static_cast<int>(i)) ? ddb2os::record_status::emitted
                                                                           : ddb2os::record_status::superseded));
}

TEST_CASE("bulk: each record's table, index and key schema follow its own ARN") {
    // The builder remembers the last ARN; a change of table, an escaped or missing ARN, or an ARN
    // naming no table must each be read afresh, and the record after them must not inherit them.
    const std::string keys2 = book_keys("ann", "t1");  // composite: needs the Books schema
    const std::string keys1 = R"({"id":{"S":"f1"}})";   // one attribute: Films needs no schema
    std::string films_escaped = rec(4, "REMOVE", keys1, "", "Films");
    const std::string plain = "table/Films/stream";
    films_escaped.replace(films_escaped.find(plain), plain.size(), "table\\/Films\\/stream");
    std::string no_arn = rec(5, "REMOVE", keys2);
    no_arn.replace(no_arn.find(",\"eventSourceARN\""), std::string(",\"eventSourceARN\":\"" + arn("Books") + "\"").size(), "");
    std::string sqs = rec(7, "REMOVE", keys2);
    sqs.replace(sqs.find(arn("Books")), arn("Books").size(), "arn:aws:sqs:x");
    const auto r = ddb2os::build_bulk(event({rec(1, "REMOVE", keys2), rec(2, "REMOVE", keys1, "", "Films"),
                                             rec(3, "REMOVE", keys2), films_escaped, no_arn, rec(6, "REMOVE", keys2),
                                             sqs, rec(8, "REMOVE", keys1, "", "Films"), rec(9, "REMOVE", keys1, "", "Films")}),
                                      books_options());
    REQUIRE(r.records.size() == 9);
    const std::string books_id = ddb2os::compose_document_id({"ann", "t1"});
    const std::pair<std::string, std::string> want[] = {{"books", books_id}, {"films", "f1"}, {"books", books_id},
                                                        {"films", "f1"},     {"", ""},        {"books", books_id},
                                                        {"", ""},            {"films", "f1"}, {"films", "f1"}};
    for (std::size_t i = 0; i < 9; ++i) {
        CHECK_MESSAGE(r.records[i].index == want[i].first, "record " << i);
        CHECK_MESSAGE(r.records[i].id == want[i].second, "record " << i);
    }
    REQUIRE(r.errors.size() == 2);
    CHECK(r.errors[0].record == 4);
    CHECK(r.errors[0].message.find("the record has no eventSourceARN") != std::string::npos);
    CHECK(r.errors[1].record == 6);
    CHECK(r.errors[1].message.find("names no table") != std::string::npos);
}

TEST_CASE("bulk: records of many tables interleaved each get their own table's index and key schema") {
    // The builder remembers up to eight streams (ARN -> table, index, key schema); with twelve
    // tables in random order entries are replaced all the time. Tables with a composite key, with
    // one key attribute and no schema, and one whose index name is invalid (never remembered).
    ddb2os::bulk_options o;
    std::vector<std::string> tables;
    for (int t = 0; t < 12; ++t) {
        tables.push_back("T" + std::to_string(t));
        if (t % 2 == 0) o.key_schemas[tables.back()] = {"a" + std::to_string(t), "b"};
    }
    tables.push_back("_Bad");
    std::mt19937 rng(5);
    std::vector<std::string> records;
    std::vector<std::size_t> table_of;
    for (int i = 0; i < 3000; ++i) {
        const std::size_t t = rng() % tables.size();
        const std::string n = std::to_string(i);
        const std::string keys = t % 2 == 0 && t < 12
                                     ? R"({"b":{"S":"x)" + n + R"("},"a)" + std::to_string(t) + R"(":{"N":")" + n + R"("}})"
                                     : R"({"k":{"S":"id)" + n + R"("}})";
        records.push_back(rec(i + 1, "REMOVE", keys, "", tables[t]));
        table_of.push_back(t);
    }
    const auto r = ddb2os::build_bulk(event(records), o);
    REQUIRE(r.records.size() == 3000);
    std::size_t bad = 0, mismatches = 0;
    for (std::size_t i = 0; i < 3000; ++i) {
        const std::size_t t = table_of[i];
        const std::string n = std::to_string(i);
        if (t == 12) {
            mismatches += r.records[i].status != ddb2os::record_status::failed || !r.records[i].index.empty();
            ++bad;
            continue;
        }
        const std::string want_index = "t" + std::to_string(t);
        const std::string want_id = t % 2 == 0 ? ddb2os::compose_document_id({n, "x" + n}) : "id" + n;
        mismatches += r.records[i].index != want_index || r.records[i].id != want_id ||
                      r.records[i].status != ddb2os::record_status::emitted;
    }
    CHECK(mismatches == 0);
    REQUIRE(r.errors.size() == bad);
    CHECK(bad > 100);
    for (const auto& e : r.errors) {
        CHECK(table_of[e.record] == 12);
        CHECK(e.code == ddb2os::errc::index_invalid);
    }
}

TEST_CASE("bulk: index option, fixed or template") {
    auto o = books_options();
    const std::string ev = event({rec(1, "INSERT", book_keys("a", "b"), book_image("a", "b", 1))});
    o.index = "library";
    CHECK(all_bodies(ddb2os::build_bulk(ev, o)).rfind("{\"index\":{\"_index\":\"library\",", 0) == 0);
    o.index = "prod-{table}";
    CHECK(all_bodies(ddb2os::build_bulk(ev, o)).rfind("{\"index\":{\"_index\":\"prod-books\",", 0) == 0);
    o.index = "_bad";
    CHECK_THROWS_WITH_AS(ddb2os::build_bulk(ev, o),
                         "[ddb2os.option.invalid] index name \"_bad\" is invalid: it must not start with '_', '-' or '+'",
                         ddb2os::error);
    // A table whose lowercased name is no valid index: that record's error.
    ddb2os::bulk_options d;
    const auto r = ddb2os::build_bulk(event({rec(7, "INSERT", R"({"id":{"S":"1"}})", R"({"id":{"S":"1"}})", "_Private")}), d);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].what() ==
          "[ddb2os.index.invalid] eventSourceARN: index name \"_private\" is invalid: it must not start with '_', '-' or '+'");
}

TEST_CASE("bulk: injection through keys and values cannot add an action") {
    const std::string evil = R"(x\n{\"delete\":{\"_index\":\"books\",\"_id\":\"y\"}})";
    ddb2os::bulk_options o;
    const auto r = ddb2os::build_bulk(
        event({rec(1, "INSERT", R"({"id":{"S":")" + evil + R"("}})",
                   R"({"id":{"S":")" + evil + R"("},"note":{"S":"a\r\nb\u2028c\u0000\"}"},"nested":{"M":{")" + evil +
                       R"(":{"SS":[")" + evil + R"("]}}}})"),
               rec(2, "REMOVE", R"({"id":{"S":"z\n{\"index\":{}}"}})")}),
        o);
    CHECK(r.errors.empty());
    const std::string body = all_bodies(r);
    CHECK(test::check_ndjson(body) == 3);  // one index (two lines) and one delete
    const auto action = nlohmann::json::parse(body.substr(0, body.find('\n')));
    CHECK(action["index"]["_id"] == "x\n{\"delete\":{\"_index\":\"books\",\"_id\":\"y\"}}");
    CHECK(body.find("\\u2028") != std::string::npos);
}

TEST_CASE("bulk: bodies are cut at max_actions and max_bytes, never inside a record") {
    std::vector<std::string> recs;
    for (int i = 0; i < 10; ++i)
        recs.push_back(rec(i, "INSERT", book_keys("a", "t" + std::to_string(i)), book_image("a", "t" + std::to_string(i), i)));
    const std::string ev = event(recs);
    auto o = books_options();
    o.max_actions = 3;
    auto r = ddb2os::build_bulk(ev, o);
    REQUIRE(r.bodies.size() == 4);
    CHECK(r.bodies[0].records == std::vector<std::uint32_t>{0, 1, 2});
    CHECK(r.bodies[3].records == std::vector<std::uint32_t>{9});
    for (const auto& b : r.bodies) CHECK(test::check_ndjson(b.data) == 2 * static_cast<int>(b.records.size()));

    const std::string whole = all_bodies(ddb2os::build_bulk(ev, books_options()));
    const std::size_t one_record = whole.size() / 10;  // every record here is within a byte of this
    o = books_options();
    o.max_bytes = 2 * one_record + 1;
    r = ddb2os::build_bulk(ev, o);
    CHECK(r.bodies.size() >= 5);
    std::string joined;
    for (const auto& b : r.bodies) {
        CHECK(b.data.size() <= o.max_bytes);
        CHECK(!b.records.empty());
        joined += b.data;
    }
    CHECK(joined == whole);
    CHECK(r.actions == 10);
}

TEST_CASE("bulk: a record larger than max_bytes is that record's error") {
    auto o = books_options();
    o.max_bytes = 200;
    const std::string big(300, 'x');
    const auto r = ddb2os::build_bulk(event({rec(1, "INSERT", book_keys("a", "small"), book_image("a", "small", 1)),
                                             rec(2, "INSERT", book_keys("a", "big"), book_image("a", big, 2)),
                                             rec(3, "REMOVE", book_keys("a", "gone"))}),
                                      o);
    CHECK(r.actions == 2);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].sequence_number == "2");
    CHECK(r.errors[0].what() == "[ddb2os.record.too_large] the record's action and document take 382 bytes, more than max_bytes (200)");
}

TEST_CASE("bulk: one bad record never stops the others") {
    const std::string good = rec(9, "INSERT", book_keys("ok", "ok"), book_image("ok", "ok", 1));
    struct bad_case {
        std::string record;
        std::string expected;
    };
    const std::vector<bad_case> cases = {
        {R"("just a string")", "[ddb2os.record.not_object] a record must be an object, not a string"},
        {R"({"eventID":"e1","dynamodb":{"SequenceNumber":"5"}})", "[ddb2os.record.missing_field] eventName: the record has no eventName"},
        {R"({"eventID":"e1","eventName":7,"dynamodb":{}})", "[ddb2os.record.bad_field] eventName: eventName must be a string"},
        {R"({"eventID":"e1","eventName":"MOD\ud800","dynamodb":{}})", "[ddb2os.record.bad_field] eventName: eventName is not valid Unicode"},
        {R"({"eventName":"INSERT"})", "[ddb2os.record.missing_field] dynamodb: the record has no dynamodb object"},
        {R"({"eventName":"INSERT","dynamodb":[]})", "[ddb2os.record.bad_field] dynamodb: dynamodb must be an object, not an array"},
        {rec(1, "UPDATE", book_keys("a", "b")), "[ddb2os.record.event_name] eventName: eventName \"UPDATE\" is not INSERT, MODIFY or REMOVE"},
        {R"({"eventName":"REMOVE","dynamodb":{"Keys":{"id":{"S":"1"}}}})",
         "[ddb2os.record.missing_field] eventSourceARN: the record has no eventSourceARN, so its table (and index) is unknown"},
        {R"({"eventName":"REMOVE","eventSourceARN":"arn:aws:sqs:x","dynamodb":{"Keys":{"id":{"S":"1"}}}})",
         "[ddb2os.record.bad_field] eventSourceARN: eventSourceARN names no table, so the record's index is unknown"},
        {R"({"eventName":"REMOVE","eventSourceARN":5,"dynamodb":{"Keys":{"id":{"S":"1"}}}})",
         "[ddb2os.record.bad_field] eventSourceARN: eventSourceARN must be a string (a DynamoDB stream's ARN), not a number"},
        {R"({"eventName":"REMOVE","eventSourceARN":"\ud800","dynamodb":{"Keys":{"id":{"S":"1"}}}})",
         "[ddb2os.record.bad_field] eventSourceARN: eventSourceARN is not valid UTF-8"},
        {R"({"eventName":"REMOVE","eventSourceARN":")" + arn("Books") + R"(","dynamodb":{}})",
         "[ddb2os.record.missing_field] dynamodb.Keys: the record has no dynamodb.Keys"},
        {rec(1, "INSERT", R"({"author":{"S":"a"}})", book_image("a", "b", 1)),
         "[ddb2os.key.missing] dynamodb.Keys.bookTitle: table 'Books': key attribute 'bookTitle' is missing from Keys"},
        {rec(1, "MODIFY", book_keys("a", "b")),
         "[ddb2os.record.no_new_image] dynamodb.NewImage: a MODIFY record needs dynamodb.NewImage, which stream view "
         "NEW_AND_OLD_IMAGES does not carry; set the stream view to NEW_IMAGE or NEW_AND_OLD_IMAGES"},
        {R"({"eventName":"INSERT","eventSourceARN":")" + arn("Books") +
             R"(","dynamodb":{"Keys":{"author":{"S":"a"},"bookTitle":{"S":"b"}},"StreamViewType":"KEYS_ONLY"}})",
         "[ddb2os.record.no_new_image] dynamodb.NewImage: an INSERT record needs dynamodb.NewImage, which stream view "
         "KEYS_ONLY does not carry; set the stream view to NEW_IMAGE or NEW_AND_OLD_IMAGES"},
        {rec(1, "INSERT", book_keys("a", "b"), R"({"tags":{"L":[{"S":"a"},{"S":"b"},{"S":"c"},{"N":"1.2.3"}]}})"),
         "[ddb2os.number.invalid] dynamodb.NewImage.tags.L[3].N: \"1.2.3\" is not a number"},
        {rec(1, "INSERT", book_keys("a", "b"), R"([])"),
         "[ddb2os.attribute.not_object] dynamodb.NewImage: an item image must be an object of attributes, not an array"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.record);
        const auto r = ddb2os::build_bulk(event({good, c.record, good}), books_options());
        REQUIRE(r.errors.size() == 1);
        CHECK(r.errors[0].record == 1);
        CHECK(r.errors[0].what() == c.expected);
        CHECK(r.records[1].status == ddb2os::record_status::failed);
        CHECK(r.actions == 1);  // the two good records are one document: the later one is sent
        CHECK(r.superseded == 1);
        CHECK(all_bodies(r) == "{\"index\":{\"_index\":\"books\",\"_id\":\"ok|ok\"}}\n{\"author\":\"ok\",\"bookTitle\":\"ok\",\"year\":1}\n");
    }
}

TEST_CASE("bulk: record_text keeps up to 48 bytes in itself, more on the heap, and copies and moves both") {
    using ddb2os::record_text;
    for (std::size_t n : {0, 1, 15, 16, 47, 48, 49, 64, 300}) {
        CAPTURE(n);
        std::string text(n, 'x');
        for (std::size_t i = 0; i < n; ++i) text[i] = static_cast<char>('a' + i % 26);
        const record_text a(text);
        CHECK(a == text);
        CHECK(text == a);
        CHECK(a.size() == n);
        CHECK(a.empty() == (n == 0));
        CHECK(std::string(a) == text);
        const bool inline_kept = a.data() >= reinterpret_cast<const char*>(&a) &&
                                 a.data() < reinterpret_cast<const char*>(&a) + sizeof a;
        CHECK(inline_kept == (n <= record_text::inline_capacity));
        record_text b(a);  // copy
        CHECK(b == a);
        CHECK((n == 0 || b.data() != a.data()));
        record_text c(std::move(b));  // move: the source is left empty
        CHECK(c == text);
        CHECK(b.empty());
        record_text d;
        d = c;
        record_text& same = d;
        d = std::move(same);  // self-move keeps the text
        CHECK(d == text);
        d = d.view().substr(n / 3);  // a view into itself, inline and on the heap
        CHECK(d == std::string_view(text).substr(n / 3));
        d = std::string_view(text);
        c = std::move(d);
        CHECK(c == text);
        c = "short";  // heap to inline
        CHECK(c == "short");
        CHECK(c != a);
        CHECK(c != std::string_view("shorter"));
    }
    // Long texts through a whole result: an eventID, a sequence number and an _id on the heap.
    const std::string long_key(120, 'k');
    std::string e = event({rec(7, "INSERT", book_keys(long_key, "b"), R"({"x":{"S":"y"}})")});
    const std::string long_event_id(100, 'e');
    e.replace(e.find("\"ev7\""), 5, "\"" + long_event_id + "\"");
    const auto r = ddb2os::build_bulk(e, books_options());
    REQUIRE(r.records.size() == 1);
    CHECK(r.records[0].event_id == long_event_id);
    CHECK(r.records[0].id == long_key + "|b");
    CHECK(r.records[0].index == "books");
    const ddb2os::bulk_result copy = r;
    CHECK(copy.records[0].id == r.records[0].id);
    CHECK(copy.records[0].id.data() != r.records[0].id.data());
}

TEST_CASE("bulk: errors carry the SequenceNumber and eventID, and print as JSON") {
    const auto r = ddb2os::build_bulk(event({rec(42, "INSERT", book_keys("a", "b"), R"({"x":{"Q":1}})")}), books_options());
    REQUIRE(r.errors.size() == 1);
    const auto& e = r.errors[0];
    CHECK(e.sequence_number == "42");
    CHECK(e.event_id == "ev42");
    CHECK(e.id() == "attribute.unknown_type");
    CHECK(e.path == "dynamodb.NewImage.x");
    CHECK(e.to_json() ==
          R"x({"record":0,"sequence_number":"42","event_id":"ev42","error":"attribute.unknown_type","path":"dynamodb.NewImage.x","message":"unknown type key \"Q\" (expected S, N, B, BOOL, NULL, M, L, SS, NS or BS)"})x");
    CHECK(nlohmann::json::accept(e.to_json()));
}

TEST_CASE("bulk: TTL deletes are recognized, and can be skipped") {
    const std::string ttl = R"(,"userIdentity":{"type":"Service","principalId":"dynamodb.amazonaws.com"})";
    const std::string ev = event({rec(1, "INSERT", book_keys("a", "x"), book_image("a", "x", 1)),
                                  rec(2, "REMOVE", book_keys("a", "x"), {}, "Books", ttl),
                                  rec(3, "REMOVE", book_keys("a", "y"), {}, "Books", ttl),
                                  rec(4, "REMOVE", book_keys("a", "z"))});
    auto o = books_options();
    auto r = ddb2os::build_bulk(ev, o);
    CHECK(r.ttl_deletes == 2);
    CHECK(r.actions == 3);
    CHECK(r.records[1].ttl_delete);
    CHECK_FALSE(r.records[3].ttl_delete);
    o.skip_ttl_deletes = true;
    r = ddb2os::build_bulk(ev, o);
    CHECK(r.skipped_ttl == 2);
    CHECK(r.records[1].status == ddb2os::record_status::skipped_ttl);
    // The insert stays: the expired item is kept searchable.
    CHECK(all_bodies(r) ==
          "{\"index\":{\"_index\":\"books\",\"_id\":\"a|x\"}}\n{\"author\":\"a\",\"bookTitle\":\"x\",\"year\":1}\n"
          "{\"delete\":{\"_index\":\"books\",\"_id\":\"a|z\"}}\n");
}

TEST_CASE("bulk: event shapes") {
    const std::string r1 = rec(1, "REMOVE", R"({"id":{"S":"1"}})");
    CHECK(ddb2os::build_bulk("[" + r1 + "]").actions == 1);  // a bare list of records
    CHECK(ddb2os::build_bulk(R"({"Records":[]})").bodies.empty());
    const char* shape = "[ddb2os.event.shape] the event must be an object with a \"Records\" array (or an array of records)";
    CHECK_THROWS_WITH_AS(ddb2os::build_bulk("{}"), shape, ddb2os::error);
    CHECK_THROWS_WITH_AS(ddb2os::build_bulk(R"({"Records":{}})"), shape, ddb2os::error);
    CHECK_THROWS_WITH_AS(ddb2os::build_bulk("42"), shape, ddb2os::error);
    CHECK_THROWS_WITH_AS(ddb2os::build_bulk("{\"Records\":[}"),
                         "[ddb2os.json.syntax] byte 12: expected a JSON value", ddb2os::error);
}

TEST_CASE("bulk: a record of another source fails the whole event, naming it") {
    // Each would otherwise be its own error (no dynamodb object), which a host dead-letters and acknowledges.
    const std::string good = rec(1, "REMOVE", book_keys("a", "b"));
    const std::string kinesis = R"({"eventSource":"aws:kinesis","eventID":"shardId-000:1","kinesis":{"data":"e30="}})";
    const char* from_kinesis = "[ddb2os.event.shape] Records[1].eventSource: ddb2os reads DynamoDB Streams records; this "
                               "one's eventSource is \"aws:kinesis\" (a Kinesis data stream's: read the table's DynamoDB "
                               "stream instead)";
    CHECK_THROWS_WITH_AS(ddb2os::build_bulk(event({good, kinesis})), from_kinesis, ddb2os::error);
    CHECK_THROWS_WITH_AS(ddb2os::build_bulk("[" + good + "," + kinesis + "]"),
                         std::string(from_kinesis).replace(21, 7, "").c_str(), ddb2os::error);  // a bare list: "[1]..."
    CHECK_THROWS_WITH_AS(ddb2os::build_bulk(R"({"Records":[{"eventSource":"aws:s\u0071s"}]})"),
                         "[ddb2os.event.shape] Records[0].eventSource: ddb2os reads DynamoDB Streams records; this one's "
                         "eventSource is \"aws:sqs\"", ddb2os::error);
    CHECK_THROWS_WITH_AS(ddb2os::build_bulk(R"({"Records":[{"eventSource":null}]})"),
                         "[ddb2os.event.shape] Records[0].eventSource: ddb2os reads DynamoDB Streams records; this one's "
                         "eventSource is not the string \"aws:dynamodb\" but a null", ddb2os::error);
    CHECK_THROWS_WITH_AS(ddb2os::build_bulk(R"({"Records":[{"eventSource":"\ud800"}]})"),
                         "[ddb2os.event.shape] Records[0].eventSource: ddb2os reads DynamoDB Streams records; this one's "
                         "eventSource is not valid Unicode", ddb2os::error);
    try {
        (void)ddb2os::build_bulk(event({kinesis}));
        FAIL("no error");
    } catch (const ddb2os::error& e) {  // the path apart, for hosts that show it as such
        CHECK(e.path() == "Records[0].eventSource");
        CHECK(e.message().rfind("ddb2os reads DynamoDB Streams records; this one's eventSource is \"aws:kinesis\"", 0) == 0);
    }
    // Without a path, what() reads as for an error made without one (as Python's str() of it does).
    CHECK(std::string(ddb2os::error(ddb2os::errc::option_invalid, "", "m").what()) == "[ddb2os.option.invalid] m");
    // DynamoDB's, written with escapes or not; without eventSource (read as DynamoDB's); and an item's own
    // attribute named eventSource.
    std::string escaped = good;
    escaped.replace(escaped.find("aws:dynamodb"), 12, "aws:dyn\\u0061modb");
    std::string without = good;
    without.erase(without.find(R"("eventSource":"aws:dynamodb",)"), 29);
    const std::string attribute = rec(2, "INSERT", book_keys("a", "b"), R"({"eventSource":{"S":"aws:kinesis"}})");
    for (const std::string& ok : {escaped, without, attribute}) {
        CAPTURE(ok);
        const auto r = ddb2os::build_bulk(event({ok}), books_options());
        CHECK(r.errors.empty());
        CHECK(r.actions == 1);
    }
}

TEST_CASE("bulk: options are checked") {
    ddb2os::bulk_options o;
    o.max_actions = 0;
    CHECK_THROWS_WITH_AS(ddb2os::validate(o), "[ddb2os.option.invalid] max_actions must be at least 1", ddb2os::error);
    o = {};
    o.max_bytes = 10;
    CHECK_THROWS_WITH_AS(ddb2os::validate(o), "[ddb2os.option.invalid] max_bytes must be at least 64", ddb2os::error);
    o.max_bytes = ddb2os::max_bulk_bytes_limit + 1;  // a body's action offsets are 32-bit
    CHECK_THROWS_WITH_AS(ddb2os::validate(o), "[ddb2os.option.invalid] max_bytes must be at most 2147483647", ddb2os::error);
    o.max_bytes = ddb2os::max_bulk_bytes_limit;
    CHECK_NOTHROW(ddb2os::validate(o));
    o = {};
    o.key_schemas["t"] = {"a", "b", "c"};
    CHECK_THROWS_WITH_AS(ddb2os::validate(o), "[ddb2os.option.invalid] the key schema of table 't' must name 1 or 2 attributes",
                         ddb2os::error);
    o = {};
    o.key_schemas["t"] = {"a", "a"};
    CHECK_THROWS_WITH_AS(ddb2os::validate(o), "[ddb2os.option.invalid] the key schema of table 't' names 'a' twice",
                         ddb2os::error);
    o = {};
    o.first_max_bytes = 63;
    CHECK_THROWS_WITH_AS(ddb2os::validate(o), "[ddb2os.option.invalid] first_max_bytes must be 0 or at least 64",
                         ddb2os::error);
}

TEST_CASE("bulk: first_max_bytes cuts only the first body; the bytes are the same") {
    std::vector<std::string> records;
    for (int i = 0; i < 300; ++i)
        records.push_back(rec(i, "INSERT", book_keys("a", "t" + std::to_string(i)), book_image("a", "t" + std::to_string(i), i)));
    const std::string ev = event(records);
    auto o = books_options();
    o.max_bytes = 8000;
    const auto plain = ddb2os::build_bulk(ev, o);
    o.first_max_bytes = 1000;
    const auto cut = ddb2os::build_bulk(ev, o);
    CHECK(all_bodies(plain) == all_bodies(cut));
    REQUIRE(cut.bodies.size() >= 2);
    CHECK(plain.bodies[0].data.size() > 7000);
    CHECK(cut.bodies[0].data.size() <= 1000);
    CHECK(cut.bodies[0].data.size() > 800);
    for (std::size_t i = 1; i < cut.bodies.size(); ++i) CHECK(cut.bodies[i].data.size() <= 8000);
    CHECK(cut.bodies[1].data.size() > 7000);  // only the first body is small
    std::vector<std::uint32_t> order;
    for (const auto& b : cut.bodies) order.insert(order.end(), b.records.begin(), b.records.end());
    CHECK(order.size() == 300);
    for (std::uint32_t i = 0; i < order.size(); ++i) CHECK(order[i] == i);
    o.first_max_bytes = 100000;  // above max_bytes: max_bytes wins
    CHECK(ddb2os::build_bulk(ev, o).bodies.size() == plain.bodies.size());
}

TEST_CASE("bulk: number and list options reach the documents") {
    auto o = books_options();
    o.numbers = ddb2os::number_mode::string;
    o.lists = ddb2os::list_policy::keep;
    const auto r = ddb2os::build_bulk(
        event({rec(1, "INSERT", book_keys("a", "b"), R"({"n":{"N":"99999999999999999999"},"l":{"L":[{"N":"1"},{"BOOL":true}]}})")}), o);
    CHECK(all_bodies(r) == "{\"index\":{\"_index\":\"books\",\"_id\":\"a|b\"}}\n{\"n\":\"99999999999999999999\",\"l\":[\"1\",true]}\n");
}

TEST_CASE("bulk: external versions from ApproximateCreationDateTime, in microseconds") {
    std::int64_t v = 0;
    CHECK(ddb2os::epoch_microseconds("1700000000", v));
    CHECK(v == 1700000000000000);
    CHECK(ddb2os::epoch_microseconds("1700000000.123456789", v));
    CHECK(v == 1700000000123456);
    CHECK(ddb2os::epoch_microseconds("1700000000.5", v));
    CHECK(v == 1700000000500000);
    CHECK(ddb2os::epoch_microseconds("1.7E9", v));
    CHECK(v == 1700000000000000);
    CHECK(ddb2os::epoch_microseconds("17E-1", v));
    CHECK(v == 1700000);
    CHECK(ddb2os::epoch_microseconds("0", v));
    CHECK(v == 0);
    CHECK_FALSE(ddb2os::epoch_microseconds("-1", v));
    CHECK_FALSE(ddb2os::epoch_microseconds("-0.000001", v));
    CHECK_FALSE(ddb2os::epoch_microseconds("-1E-9", v));  // below a microsecond, but negative
    v = 7;
    CHECK(ddb2os::epoch_microseconds("-0", v));  // as nlohmann reads the JSON number -0: zero
    CHECK(v == 0);
    v = 7;
    CHECK(ddb2os::epoch_microseconds("-0.0e5", v));
    CHECK(v == 0);
    CHECK_FALSE(ddb2os::epoch_microseconds("abc", v));
    CHECK_FALSE(ddb2os::epoch_microseconds("1E20", v));
    // Through Kinesis Data Streams: milliseconds or microseconds, told apart from seconds by size.
    CHECK(ddb2os::epoch_microseconds("1657893922873", v));
    CHECK(v == 1657893922873000);
    CHECK(ddb2os::epoch_microseconds("1657893922873123", v));
    CHECK(v == 1657893922873123);
    CHECK(ddb2os::epoch_microseconds("99999999999", v));  // the largest in seconds
    CHECK(v == 99999999999000000);
    CHECK(ddb2os::epoch_microseconds("100000000000", v));  // the smallest in milliseconds
    CHECK(v == 100000000000000);
    CHECK(ddb2os::epoch_microseconds("1.657893922873E12", v));
    CHECK(v == 1657893922873000);
    CHECK(ddb2os::epoch_microseconds("99999999999999999", v));  // microseconds, the largest
    CHECK(v == 99999999999999999);
    CHECK_FALSE(ddb2os::epoch_microseconds("1700000000000000000", v));  // nanoseconds: no

    auto o = books_options();
    o.external_versions = true;
    const std::string no_time = R"({"eventName":"REMOVE","eventSourceARN":")" + arn("Books") +
                                R"(","dynamodb":{"Keys":{"author":{"S":"n"},"bookTitle":{"S":"t"}},"SequenceNumber":"3"}})";
    const auto r = ddb2os::build_bulk(event({rec(1, "INSERT", book_keys("a", "b"), book_image("a", "b", 1)),
                                             rec(2, "REMOVE", book_keys("a", "c")), no_time}),
                                      o);
    CHECK(all_bodies(r) ==
          "{\"index\":{\"_index\":\"books\",\"_id\":\"a|b\",\"version\":1700000000000000,\"version_type\":\"external_gte\"}}\n"
          "{\"author\":\"a\",\"bookTitle\":\"b\",\"year\":1}\n"
          "{\"delete\":{\"_index\":\"books\",\"_id\":\"a|c\",\"version\":1700000000000000,\"version_type\":\"external_gte\"}}\n");
    // No time, no version: the record fails rather than going out unversioned (a replayed old change
    // would then overwrite a newer document).
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].record == 2);
    CHECK(r.errors[0].code == ddb2os::errc::record_missing_field);
    CHECK(r.errors[0].path == "dynamodb.ApproximateCreationDateTime");
    CHECK(r.errors[0].message == "the record has no dynamodb.ApproximateCreationDateTime, which its version is taken from");
    CHECK(r.records[2].status == ddb2os::record_status::failed);
    // Unreadable: a string that is no time, a negative time, an object.
    for (const char* bad : {R"("soon")", "-1", R"({"N":"1"})", "1E20"}) {
        const std::string rec_bad = R"({"eventName":"REMOVE","eventSourceARN":")" + arn("Books") +
                                    R"(","dynamodb":{"ApproximateCreationDateTime":)" + bad +
                                    R"(,"Keys":{"author":{"S":"n"},"bookTitle":{"S":"t"}},"SequenceNumber":"3"}})";
        const auto rb = ddb2os::build_bulk(event({rec_bad}), o);
        CAPTURE(bad);
        REQUIRE(rb.errors.size() == 1);
        CHECK(rb.errors[0].code == ddb2os::errc::record_bad_field);
        CHECK(rb.errors[0].path == "dynamodb.ApproximateCreationDateTime");
        CHECK(all_bodies(rb).empty());
    }
    // The time's text decoded as every other field's: "\u0031700000000" is "1700000000" (was bad_field).
    {
        const std::string escaped = R"({"eventName":"REMOVE","eventSourceARN":")" + arn("Books") +
                                    R"(","dynamodb":{"ApproximateCreationDateTime":"\u0031700000000","Keys":{"author":{"S":"n"},"bookTitle":{"S":"t"}},"SequenceNumber":"3"}})";
        const auto re = ddb2os::build_bulk(event({escaped}), o);
        CHECK(re.errors.empty());
        CHECK(re.records[0].version == 1700000000000000);
    }
    // The JSON number -0 is the time zero from bytes as through nlohmann, which reads it as 0 (the raw
    // path refused it as negative).
    for (const char* zero : {"-0", "-0.0", "-0E3"}) {
        const std::string ev = event({R"({"eventName":"REMOVE","eventSourceARN":")" + arn("Books") +
                                      R"(","dynamodb":{"ApproximateCreationDateTime":)" + zero +
                                      R"(,"Keys":{"author":{"S":"n"},"bookTitle":{"S":"t"}},"SequenceNumber":"3"}})"});
        const auto j = nlohmann::ordered_json::parse(ev);
        const auto raw = ddb2os::build_bulk(ev, o);
        const auto nl = ddb2os::build_bulk<ddb2os::nlohmann_ordered_adapter>(&j, o);
        CAPTURE(zero);
        CHECK(raw.errors.empty());
        CHECK(nl.errors.empty());
        CHECK(raw.records[0].version == 0);
        CHECK(nl.records[0].version == 0);
        CHECK(all_bodies(raw) == all_bodies(nl));
    }
    // Without versions, a record needs no time.
    CHECK(ddb2os::build_bulk(event({no_time}), books_options()).errors.empty());
    CHECK(r.records[0].version == 1700000000000000);
    CHECK(r.records[0].index == "books");
    CHECK(r.records[0].id == "a|b");
}

TEST_CASE("bulk: each action's bytes can be found again, to re-send only some") {
    std::vector<std::string> recs;
    for (int i = 0; i < 7; ++i)
        recs.push_back(i % 3 == 2 ? rec(i, "REMOVE", book_keys("a", std::to_string(i)))
                                  : rec(i, "INSERT", book_keys("a", std::to_string(i)), book_image("a", std::to_string(i), i)));
    auto o = books_options();
    o.max_bytes = 300;
    const auto r = ddb2os::build_bulk(event(recs), o);
    REQUIRE(r.bodies.size() > 1);
    std::string joined;
    for (const auto& b : r.bodies) {
        REQUIRE(b.offsets.size() == b.records.size());
        CHECK(b.offsets[0] == 0);
        for (std::size_t i = 0; i < b.records.size(); ++i) {
            const std::string_view a = b.action(i);
            joined.append(a.data(), a.size());
            const int lines = test::check_ndjson(a);
            CHECK(lines == (b.records[i] % 3 == 2 ? 1 : 2));
            CHECK(a.find("\"_id\":\"a|" + std::to_string(b.records[i]) + "\"") != std::string::npos);
        }
    }
    CHECK(joined == all_bodies(r));
}

TEST_CASE("bulk: excluded attributes are left out of documents, unread, at the top level only") {
    auto o = books_options();
    o.exclude_attributes = {"ssn", "_id", "broken"};
    const std::string image = R"({"author":{"S":"a"},"bookTitle":{"S":"t"},"ssn":{"S":"123-45-6789"},)"
                              R"("\u0073sn":{"S":"escaped name"},"_id":{"S":"x"},"broken":{"N":"not a number"},)"
                              R"("nested":{"M":{"ssn":{"S":"kept"}}}})";
    const auto r = ddb2os::build_bulk(event({rec(1, "INSERT", book_keys("a", "t"), image)}), o);
    CHECK(r.errors.empty());  // "broken" is not read
    CHECK(all_bodies(r) == "{\"index\":{\"_index\":\"books\",\"_id\":\"a|t\"}}\n"
                           "{\"author\":\"a\",\"bookTitle\":\"t\",\"nested\":{\"ssn\":\"kept\"}}\n");
    // Without the option, the same record is a number.invalid (the exclusion is what skipped it).
    CHECK(ddb2os::build_bulk(event({rec(1, "INSERT", book_keys("a", "t"), image)}), books_options()).errors.size() == 1);
    // The same through nlohmann.
    const auto j = nlohmann::ordered_json::parse(event({rec(1, "INSERT", book_keys("a", "t"), image)}));
    CHECK(all_bodies(ddb2os::build_bulk<ddb2os::nlohmann_ordered_adapter>(&j, o)) == all_bodies(r));
    // A key attribute can be excluded from the document; the _id still comes from Keys.
    o.exclude_attributes = {"author"};
    CHECK(all_bodies(ddb2os::build_bulk(event({rec(1, "INSERT", book_keys("a", "t"), book_image("a", "t", 1))}), o)) ==
          "{\"index\":{\"_index\":\"books\",\"_id\":\"a|t\"}}\n{\"bookTitle\":\"t\",\"year\":1}\n");
    o.exclude_attributes = {"ssn", ""};
    CHECK(test::error_of([&] { ddb2os::validate(o); }) == "[ddb2os.option.invalid] an excluded attribute name is empty");

    // include_attributes: the only ones kept (the others unread), and exclude still applies.
    auto inc = books_options();
    inc.include_attributes = {"bookTitle", "nested", "ssn", "absent"};
    inc.exclude_attributes = {"ssn"};
    const auto ri = ddb2os::build_bulk(event({rec(1, "INSERT", book_keys("a", "t"), image)}), inc);
    CHECK(ri.errors.empty());
    CHECK(all_bodies(ri) == "{\"index\":{\"_index\":\"books\",\"_id\":\"a|t\"}}\n"
                            "{\"bookTitle\":\"t\",\"nested\":{\"ssn\":\"kept\"}}\n");
    inc.include_attributes = {""};
    CHECK(test::error_of([&] { ddb2os::validate(inc); }) == "[ddb2os.option.invalid] an included attribute name is empty");
}

// ---------------------------------------------------------------- from a mutation run of the C++ core
// Each case below fails for a change to bulk.hpp that the other tests let through.

TEST_CASE("bulk: the same _id in different indexes is two documents, however many tables share a batch") {
    // Probes of the collapsing table meet only when it is loaded: 20 tables, one item each, all "1".
    std::vector<std::string> records;
    for (int t = 0; t < 20; ++t) records.push_back(rec(t + 1, "INSERT", R"({"id":{"S":"1"}})", R"({"id":{"S":"1"}})", "T" + std::to_string(t)));
    const auto r = ddb2os::build_bulk(event(records));
    CHECK(r.errors.empty());
    CHECK(r.actions == 20);
    CHECK(r.superseded == 0);
    std::set<std::string> indexes;
    for (const auto& info : r.records) indexes.insert(info.index);
    CHECK(indexes.size() == 20);
}

TEST_CASE("bulk: only DynamoDB's own TTL service is a TTL delete") {
    for (const char* principal : {"other.amazonaws.com", "dynamodb.amazonaws.com.evil", ""}) {
        CAPTURE(principal);
        const std::string who = std::string(R"(,"userIdentity":{"type":"Service","principalId":")") + principal + "\"}";
        auto o = books_options();
        o.skip_ttl_deletes = true;
        const auto r = ddb2os::build_bulk(event({rec(1, "REMOVE", book_keys("a", "x"), {}, "Books", who)}), o);
        CHECK_FALSE(r.records[0].ttl_delete);
        CHECK(r.ttl_deletes == 0);
        CHECK(r.skipped_ttl == 0);
        CHECK(all_bodies(r) == "{\"delete\":{\"_index\":\"books\",\"_id\":\"a|x\"}}\n");
    }
    // A user's delete (type "User") is not one either, whatever its principal.
    const auto u = ddb2os::build_bulk(event({rec(1, "REMOVE", book_keys("a", "x"), {}, "Books",
                                                 R"(,"userIdentity":{"type":"User","principalId":"dynamodb.amazonaws.com"})")}),
                                      books_options());
    CHECK_FALSE(u.records[0].ttl_delete);
}

TEST_CASE("bulk: a record of exactly max_bytes fits") {
    const std::string ev = event({rec(1, "INSERT", book_keys("a", "x"), book_image("a", "x", 1))});
    const std::size_t size = all_bodies(ddb2os::build_bulk(ev, books_options())).size();
    auto o = books_options();
    o.max_bytes = size;
    auto r = ddb2os::build_bulk(ev, o);
    CHECK(r.errors.empty());
    CHECK(r.actions == 1);
    o.max_bytes = size - 1;
    r = ddb2os::build_bulk(ev, o);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].code == ddb2os::errc::record_too_large);
}

TEST_CASE("bulk: the edges between seconds, milliseconds and microseconds, and the time zero's version") {
    std::int64_t v = 0;
    CHECK(ddb2os::epoch_microseconds("100000000000000", v));  // the smallest in microseconds (1973)
    CHECK(v == 100000000000000);
    CHECK(ddb2os::epoch_microseconds("99999999999999", v));  // the largest in milliseconds
    CHECK(v == 99999999999999000);
    CHECK_FALSE(ddb2os::epoch_microseconds("100000000000000000", v));  // 1e17: no unit fits
    // Version 0 is a version: written with the action, never left out.
    ddb2os::bulk_options o = books_options();
    o.external_versions = true;
    std::string zero = rec(1, "REMOVE", book_keys("a", "x"));
    zero.replace(zero.find("1700000000"), 10, "0");
    const auto r = ddb2os::build_bulk(event({zero}), o);
    CHECK(r.errors.empty());
    CHECK(all_bodies(r) == "{\"delete\":{\"_index\":\"books\",\"_id\":\"a|x\",\"version\":0,\"version_type\":\"external_gte\"}}\n");
}

// ---------------------------------------------------------------- from a fourth mutation run
// Each case below fails for a change to bulk.hpp (or to what it reads) that the other tests let through.

TEST_CASE("bulk: the smallest sizes the options allow are taken") {
    ddb2os::bulk_options o;
    o.max_bytes = 64;
    o.first_max_bytes = 64;
    CHECK_NOTHROW(ddb2os::validate(o));
    o.max_bytes = 63;
    CHECK_THROWS_WITH_AS(ddb2os::validate(o), "[ddb2os.option.invalid] max_bytes must be at least 64", ddb2os::error);
}

TEST_CASE("bulk: a body of exactly max_bytes is one body") {
    // Two records whose actions take the same bytes; max_bytes their sum: cut there, a body held one.
    const std::string ev = event({rec(1, "INSERT", book_keys("a", "t1"), book_image("a", "t1", 1)),
                                  rec(2, "INSERT", book_keys("a", "t2"), book_image("a", "t2", 2))});
    auto o = books_options();
    const std::size_t both = all_bodies(ddb2os::build_bulk(ev, o)).size();
    o.max_bytes = both;
    const auto r = ddb2os::build_bulk(ev, o);
    REQUIRE(r.bodies.size() == 1);
    CHECK(r.bodies[0].data.size() == both);
    o.max_bytes = both - 1;
    CHECK(ddb2os::build_bulk(ev, o).bodies.size() == 2);
}

TEST_CASE("bulk: a first record larger than first_max_bytes opens the first body, never an empty one") {
    auto o = books_options();
    o.first_max_bytes = 64;  // every action here is larger
    const auto r = ddb2os::build_bulk(event({rec(1, "INSERT", book_keys("a", "t1"), book_image("a", "t1", 1)),
                                             rec(2, "INSERT", book_keys("a", "t2"), book_image("a", "t2", 2))}),
                                      o);
    REQUIRE(r.bodies.size() == 2);  // the first body cut after its first action, the rest at max_bytes
    CHECK(r.bodies[0].records == std::vector<std::uint32_t>{0});
    CHECK(r.bodies[1].records == std::vector<std::uint32_t>{1});
    for (const auto& b : r.bodies) CHECK(test::check_ndjson(b.data) == 2);
}

TEST_CASE("bulk: with a fixed index, a record needs no eventSourceARN") {
    ddb2os::bulk_options o;
    o.index = "books";  // no {table}: the record's table is not needed to name its index
    const auto r = ddb2os::build_bulk(
        event({R"({"eventName":"REMOVE","dynamodb":{"Keys":{"id":{"S":"1"}},"SequenceNumber":"3"}})"}), o);
    CHECK(r.errors.empty());
    CHECK(all_bodies(r) == "{\"delete\":{\"_index\":\"books\",\"_id\":\"1\"}}\n");
}

TEST_CASE("bulk: a time too large for 64 bits is no time, never wrapped around") {
    // 2^64 and 2^64 + 1 seconds would wrap to the times 0 and 1 s: versions older than any real one.
    std::int64_t v = 7;
    CHECK_FALSE(ddb2os::epoch_microseconds("18446744073709551616", v));
    CHECK_FALSE(ddb2os::epoch_microseconds("18446744073709551617", v));
    CHECK_FALSE(ddb2os::epoch_microseconds("18446744073709551616000", v));
}
