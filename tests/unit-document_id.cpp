// Document ids (document_id.hpp): by name, never by position; escaped; hashed past 512 bytes.
#include <string>

#include "test_support.hpp"

namespace {
std::string id_of(std::string_view keys, const ddb2os::key_schema* schema, std::string_view table = "books") {
    const ddb2os::raw_json_document d(keys);
    std::string id;
    ddb2os::path_error err;
    if (!ddb2os::document_id<ddb2os::raw_json_adapter>(d.root(), schema, table, id, err, "dynamodb.Keys")) return err.what();
    // Same through nlohmann (ordered and sorted: key order must not matter).
    const auto j = nlohmann::json::parse(keys);
    std::string id2;
    ddb2os::path_error err2;
    CHECK(ddb2os::document_id<ddb2os::nlohmann_adapter>(&j, schema, table, id2, err2, "dynamodb.Keys"));
    CHECK(id2 == id);
    return id;
}
const ddb2os::key_schema books{"author", "bookTitle"};
const ddb2os::key_schema single{"id"};
}  // namespace

TEST_CASE("document id: one key attribute is the id itself") {
    CHECK(id_of(R"({"id":{"S":"book-1"}})", &single) == "book-1");
    CHECK(id_of(R"({"id":{"S":"book-1"}})", nullptr) == "book-1");
    CHECK(id_of(R"({"id":{"N":"101"}})", nullptr) == "101");
    CHECK(id_of(R"({"id":{"N":"1.50"}})", nullptr) == "1.50");  // N as its text
    CHECK(id_of(R"({"id":{"B":"AAEC"}})", nullptr) == "AAEC");  // B as its base64 text
    CHECK(id_of(R"({"id":{"S":"a|b\\c"}})", nullptr) == "a|b\\c");  // no escaping with one key
    CHECK(id_of(R"({"id":{"S":"caf\u00e9"}})", nullptr) == "caf\xc3\xa9");
}

TEST_CASE("document id: composite keys by name, whatever the order in Keys") {
    CHECK(id_of(R"({"author":{"S":"Dan Brown"},"bookTitle":{"S":"Inferno"}})", &books) == "Dan Brown|Inferno");
    CHECK(id_of(R"({"bookTitle":{"S":"Inferno"},"author":{"S":"Dan Brown"}})", &books) == "Dan Brown|Inferno");
    const ddb2os::key_schema numeric{"pk", "sk"};
    CHECK(id_of(R"({"sk":{"N":"7"},"pk":{"B":"AA=="}})", &numeric) == "AA==|7");
}

TEST_CASE("document id: | and \\ are escaped so distinct keys never share an id") {
    CHECK(id_of(R"({"author":{"S":"a|b"},"bookTitle":{"S":"c"}})", &books) == "a\\|b|c");
    CHECK(id_of(R"({"author":{"S":"a"},"bookTitle":{"S":"b|c"}})", &books) == "a|b\\|c");
    CHECK(id_of(R"({"author":{"S":"a\\"},"bookTitle":{"S":"b"}})", &books) == "a\\\\|b");
    CHECK(id_of(R"({"author":{"S":"a"},"bookTitle":{"S":"\\|b"}})", &books) == "a|\\\\\\|b");
    // Pairs that would collide with a plain join.
    CHECK(id_of(R"({"author":{"S":"a|b"},"bookTitle":{"S":"c"}})", &books) !=
          id_of(R"({"author":{"S":"a"},"bookTitle":{"S":"b|c"}})", &books));
    CHECK(id_of(R"({"author":{"S":"a\\"},"bookTitle":{"S":"|b"}})", &books) !=
          id_of(R"({"author":{"S":"a\\|"},"bookTitle":{"S":"b"}})", &books));
}

TEST_CASE("document id: longer than 512 bytes becomes sha256-<hex>") {
    const std::string k512(512, 'k');
    CHECK(id_of("{\"id\":{\"S\":\"" + k512 + "\"}}", nullptr) == k512);
    const std::string k513(513, 'k');
    const std::string hashed = id_of("{\"id\":{\"S\":\"" + k513 + "\"}}", nullptr);
    CHECK(hashed == "sha256-" + ddb2os::detail::hex(ddb2os::detail::sha256(k513)));
    CHECK(hashed.size() == 7 + 64);
    // DynamoDB's longest keys: 2048-byte partition and 1024-byte sort key.
    const std::string pk(2048, 'p'), sk(1024, 's');
    const std::string id = id_of("{\"author\":{\"S\":\"" + pk + "\"},\"bookTitle\":{\"S\":\"" + sk + "\"}}", &books);
    CHECK(id == "sha256-" + ddb2os::detail::hex(ddb2os::detail::sha256(pk + "|" + sk)));
    // A key that already reads "sha256-<64 hex>" is hashed as well: it cannot take a long key's _id.
    const std::string lookalike = id_of("{\"id\":{\"S\":\"" + hashed + "\"}}", nullptr);
    CHECK(lookalike == "sha256-" + ddb2os::detail::hex(ddb2os::detail::sha256(hashed)));
    CHECK(lookalike != hashed);
    CHECK(ddb2os::compose_document_id({hashed}) == lookalike);
    // Near misses of that form stay as they are.
    const std::string upper = "sha256-" + std::string(64, 'A'), short_hex = "sha256-" + std::string(63, 'a');
    CHECK(id_of("{\"id\":{\"S\":\"" + upper + "\"}}", nullptr) == upper);
    CHECK(id_of("{\"id\":{\"S\":\"" + short_hex + "\"}}", nullptr) == short_hex);
    // The form is the whole prefix "sha256-": another character where the dash goes is a near miss too.
    const std::string no_dash = "sha256_" + std::string(64, 'a');
    CHECK(id_of("{\"id\":{\"S\":\"" + no_dash + "\"}}", nullptr) == no_dash);
    CHECK(ddb2os::compose_document_id({no_dash}) == no_dash);
    CHECK(ddb2os::detail::hex(ddb2os::detail::sha256("abc")) ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("document id: a key name written twice (raw JSON only) counts once, with its last value") {
    // Before: "composite key (Keys holds 2 attributes)" without a schema, and "Keys holds ''" with one.
    CHECK(id_of(R"({"id":{"S":"a"},"id":{"S":"b"}})", nullptr) == "b");
    CHECK(id_of(R"({"id":{"S":"a"},"id":{"S":"b"}})", &single) == "b");
    CHECK(id_of(R"({"id":{"S":"a"},"\u0069d":{"S":"b"}})", &single) == "b");
    CHECK(id_of(R"({"author":{"S":"x"},"bookTitle":{"S":"t"},"author":{"S":"y"}})", &books) ==
          ddb2os::compose_document_id({"y", "t"}));
    // Two names that cannot be decoded (lone surrogates) are not one name written twice.
    const ddb2os::raw_json_document d(R"({"\ud800":{"S":"a"},"\udbff":{"S":"b"}})");
    std::string id;
    ddb2os::path_error err;
    CHECK_FALSE(ddb2os::document_id<ddb2os::raw_json_adapter>(d.root(), nullptr, "books", id, err, "dynamodb.Keys"));
    CHECK(err.code == ddb2os::errc::key_no_schema);
}

TEST_CASE("document id: errors name the table and the attribute") {
    CHECK(id_of(R"({"author":{"S":"x"}})", &books) ==
          "[ddb2os.key.missing] dynamodb.Keys.bookTitle: table 'books': key attribute 'bookTitle' is missing from Keys");
    CHECK(id_of(R"({"author":{"S":"x"}})", &books, "") ==
          "[ddb2os.key.missing] dynamodb.Keys.bookTitle: the table: key attribute 'bookTitle' is missing from Keys");
    CHECK(id_of(R"({"a":{"S":"x"},"b":{"S":"y"}})", nullptr) ==
          "[ddb2os.key.no_schema] dynamodb.Keys: table 'books' has a composite key (Keys holds 2 attributes) and no key schema is known for it");
    CHECK(id_of(R"({"id":{"S":"x"},"extra":{"S":"y"}})", &single) ==
          "[ddb2os.key.unexpected] dynamodb.Keys.extra: table 'books': Keys holds 'extra', which is not in the key schema (id)");
    CHECK(id_of(R"({"author":{"S":"x"},"bookTitle":{"S":"y"},"extra":{"S":"z"}})", &books) ==
          "[ddb2os.key.unexpected] dynamodb.Keys.extra: table 'books': Keys holds 'extra', which is not in the key schema "
          "(author, bookTitle)");
    // A name that is not UTF-8: its bad bytes shown as U+FFFD, so no report stops mid-name.
    CHECK(id_of("{\"id\":{\"S\":\"x\"},\"sk\xff\xfe" "x\":{\"S\":\"y\"}}", &single) ==
          "[ddb2os.key.unexpected] dynamodb.Keys.sk\xEF\xBF\xBD\xEF\xBF\xBD" "x: table 'books': Keys holds "
          "'sk\xEF\xBF\xBD\xEF\xBF\xBD" "x', which is not in the key schema (id)");
    CHECK(id_of(R"({"id":{"S":"x"},"":{"S":"y"}})", &single) ==  // an empty name is a name too
          "[ddb2os.key.unexpected] dynamodb.Keys.: table 'books': Keys holds '', which is not in the key schema (id)");
    CHECK(id_of(R"({})", &single) == "[ddb2os.key.empty] dynamodb.Keys: Keys is empty");
    // OpenSearch refuses an empty _id; DynamoDB never sends an empty key value, but a hand-made record may.
    CHECK(id_of(R"({"id":{"S":""}})", nullptr) ==
          "[ddb2os.key.empty] dynamodb.Keys.id: table 'books': key attribute 'id' is empty (an _id cannot be)");
    CHECK(id_of(R"({"id":{"B":""}})", &single) ==
          "[ddb2os.key.empty] dynamodb.Keys.id: table 'books': key attribute 'id' is empty (an _id cannot be)");
    CHECK(id_of(R"({"author":{"S":""},"bookTitle":{"S":""}})", &books) == "|");  // never empty when composite
    CHECK(id_of(R"([])", &single) == "[ddb2os.record.bad_field] dynamodb.Keys: Keys must be an object, not an array");
    CHECK(id_of(R"({"id":{"BOOL":true}})", &single) == "[ddb2os.key.bad_type] dynamodb.Keys.id: a key attribute is S, N or B, not BOOL");
    CHECK(id_of(R"({"id":{"N":"x"}})", &single) == "[ddb2os.number.invalid] dynamodb.Keys.id: \"x\" is not a number");
    CHECK(id_of(R"({"id":{"B":"*"}})", &single) ==
          "[ddb2os.base64.invalid] dynamodb.Keys.id: \"*\" is not valid base64: length is not a multiple of 4");
    CHECK(id_of(R"({"id":{}})", &single) ==
          "[ddb2os.attribute.no_type] dynamodb.Keys.id: an attribute value needs a type key (S, N, B, BOOL, NULL, M, L, SS, NS or BS); it has none");
    // A name that is not valid UTF-8 is refused though no key schema reads it (raw bytes only: nlohmann
    // refuses to parse it; a Python dict's key that is not a str reads so).
    const ddb2os::raw_json_document d(std::string_view("{\"i\xff\":{\"S\":\"x\"}}"));
    std::string id;
    ddb2os::path_error err;
    CHECK_FALSE(ddb2os::document_id<ddb2os::raw_json_adapter>(d.root(), nullptr, "books", id, err, "dynamodb.Keys"));
    CHECK(std::string(err.what()) ==
          "[ddb2os.utf8.invalid] dynamodb.Keys: a key attribute's name: string is not valid UTF-8 (byte 1)");
}

TEST_CASE("document id: compose_document_id is the pure rule") {
    CHECK(ddb2os::compose_document_id({"a"}) == "a");
    CHECK(ddb2os::compose_document_id({"a|", "\\b"}) == "a\\||\\\\b");
}

TEST_CASE("document id: names are trimmed of ASCII whitespace only") {
    using ddb2os::detail::trim_ascii_space;
    CHECK(trim_ascii_space(" \t\r\n\v\fa b\f\v\n\r\t ") == "a b");
    CHECK(trim_ascii_space(" \t ").empty());
    CHECK(trim_ascii_space("").empty());
    CHECK(trim_ascii_space("\xc2\xa0" "a\x1f") == "\xc2\xa0" "a\x1f");  // U+00A0 and \x1f are part of a name
}

TEST_CASE("document id: TABLE=PK[,SK] key schema specs") {
    std::string table;
    ddb2os::key_schema schema;
    CHECK(ddb2os::parse_key_schema_spec("books=author,bookTitle", table, schema));
    CHECK(table == "books");
    CHECK(schema == ddb2os::key_schema{"author", "bookTitle"});
    CHECK(ddb2os::parse_key_schema_spec("users=id", table, schema));
    CHECK((table == "users" && schema == ddb2os::key_schema{"id"}));
    // Trimmed as the handler's TABLE_KEYS is: " b" was a sort key no item has.
    CHECK(ddb2os::parse_key_schema_spec(" Books = a, b\t", table, schema));
    CHECK((table == "Books" && schema == ddb2os::key_schema{"a", "b"}));
    CHECK(ddb2os::parse_key_schema_spec("users=id", table, schema));
    for (const char* bad : {"books", "=id", " =id", "books=", "t=a,", "t=,b", "t=a, ", "t=a,b,c", "", "t=a,a", "t=a, a"}) {
        CAPTURE(bad);
        CHECK_FALSE(ddb2os::parse_key_schema_spec(bad, table, schema));
    }
    CHECK((table == "users" && schema == ddb2os::key_schema{"id"}));  // untouched on failure
}
