// Index names (index_name.hpp): from the table, fixed, or a {table} template; always checked.
#include <string>

#include "test_support.hpp"

TEST_CASE("index names: the table from an event source ARN") {
    CHECK(ddb2os::table_from_arn("arn:aws:dynamodb:us-east-1:123456789012:table/Books/stream/2015-06-27T00:48:05.899") == "Books");
    CHECK(ddb2os::table_from_arn("arn:aws:dynamodb:us-east-1:123456789012:table/Books") == "Books");
    CHECK(ddb2os::table_from_arn("arn:aws:sqs:us-east-1:1:queue").empty());
    CHECK(ddb2os::table_from_arn("").empty());
    CHECK(ddb2os::table_arn_from_arn("arn:aws:dynamodb:us-east-1:123456789012:table/Books/stream/2015-06-27T00:48:05.899") ==
          "arn:aws:dynamodb:us-east-1:123456789012:table/Books");
    CHECK(ddb2os::table_arn_from_arn("arn:aws:dynamodb:us-east-1:123456789012:table/Books") ==
          "arn:aws:dynamodb:us-east-1:123456789012:table/Books");
    CHECK(ddb2os::table_arn_from_arn("arn:aws:sqs:us-east-1:1:queue").empty());
    CHECK(ddb2os::table_arn_from_arn("").empty());
}

TEST_CASE("index names: default, fixed and template") {
    std::string name, problem;
    CHECK(ddb2os::index_namer().name_for("My-Table.v2", name, problem));
    CHECK(name == "my-table.v2");
    CHECK(ddb2os::index_namer("search").name_for("Books", name, problem));
    CHECK(name == "search");
    CHECK(ddb2os::index_namer("prod-{table}-v1").name_for("Books", name, problem));
    CHECK(name == "prod-books-v1");
    CHECK(ddb2os::index_namer("{table}-{table}").name_for("A_b", name, problem));
    CHECK(name == "a_b-a_b");
    CHECK_FALSE(ddb2os::index_namer().name_for("_hidden", name, problem));
    CHECK(problem == "index name \"_hidden\" is invalid: it must not start with '_', '-' or '+'");
}

TEST_CASE("index names: a template that fits no table, and bytes that are not UTF-8, are refused up front") {
    CHECK_THROWS_WITH(ddb2os::index_namer("Logs-{table}"),
                      "[ddb2os.option.invalid] index template \"Logs-{table}\" gives no valid name: for table \"aaa\", "
                      "index name \"Logs-aaa\" is invalid: it must be lowercase");
    CHECK_THROWS_WITH(ddb2os::index_namer("-{table}"),
                      "[ddb2os.option.invalid] index template \"-{table}\" gives no valid name: for table \"aaa\", "
                      "index name \"-aaa\" is invalid: it must not start with '_', '-' or '+'");
    // Before, a name was written only up to its first invalid byte: "logs-\xFF-{table}" sent every
    // table to index "logs-", where their documents overwrote each other.
    CHECK(ddb2os::index_name_problem("logs-\xFF-books") == "it is not valid UTF-8");
    CHECK_THROWS_WITH(ddb2os::index_namer("logs-\xFF-{table}"),
                      "[ddb2os.option.invalid] index template \"logs-\xEF\xBF\xBD-{table}\" gives no valid name: for "
                      "table \"aaa\", index name \"logs-\xEF\xBF\xBD-aaa\" is invalid: it is not valid UTF-8");
    CHECK_THROWS_WITH(ddb2os::index_namer("idx\xFFz"),
                      "[ddb2os.option.invalid] index name \"idx\xEF\xBF\xBDz\" is invalid: it is not valid UTF-8");
    CHECK_NOTHROW(ddb2os::index_namer("b\xC3\xBC" "cher-{table}"));  // UTF-8 is allowed
}

TEST_CASE("index names: OpenSearch's rules") {
    CHECK(ddb2os::index_name_problem("books").empty());
    CHECK(ddb2os::index_name_problem(".hidden").empty());
    CHECK(ddb2os::index_name_problem("") == "it is empty");
    CHECK(ddb2os::index_name_problem("..") == "it must not be '.' or '..'");
    CHECK(ddb2os::index_name_problem("Books") == "it must be lowercase");
    CHECK(ddb2os::index_name_problem("-x") == "it must not start with '_', '-' or '+'");
    CHECK(ddb2os::index_name_problem("+x") == "it must not start with '_', '-' or '+'");
    for (char c : std::string("\\/*?\"<>| ,#:")) {
        CAPTURE(c);
        CHECK(ddb2os::index_name_problem(std::string("a") + c + "b") == std::string("it must not contain '") + c + "'");
    }
    CHECK(ddb2os::index_name_problem("a\nb") == "it must not contain control characters");
    CHECK(ddb2os::index_name_problem("a\x7F" "b") == "it must not contain control characters");
    CHECK(ddb2os::index_name_problem(std::string(256, 'a')) == "it is longer than 255 bytes");
    CHECK(ddb2os::index_name_problem(std::string(255, 'a')).empty());
    CHECK_THROWS_WITH_AS(ddb2os::index_namer("Bad Name"),
                         "[ddb2os.option.invalid] index name \"Bad Name\" is invalid: it must be lowercase", ddb2os::error);
}
