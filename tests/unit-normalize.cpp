// Mixed-type lists (normalize.hpp): OpenSearch refuses [1, "a"]; policy stringify fixes it.
#include <string>

#include "test_support.hpp"

using test::one;

namespace {
ddb2os::unmarshal_options keep() {
    ddb2os::unmarshal_options o;
    o.lists = ddb2os::list_policy::keep;
    return o;
}
}  // namespace

TEST_CASE("lists: homogeneous lists are left alone") {
    CHECK(one(R"({"L":[{"N":"1"},{"N":"2.5"}]})") == R"({"v":[1,2.5]})");
    CHECK(one(R"({"L":[{"S":"a"},{"B":"AA=="},{"SS":["x"]}]})") == R"({"v":["a","AA==",["x"]]})");
    CHECK(one(R"({"L":[{"M":{"a":{"N":"1"}}},{"M":{"a":{"S":"x"}}}]})") == R"({"v":[{"a":1},{"a":"x"}]})");
    CHECK(one(R"({"L":[{"NULL":true},{"N":"1"},{"NULL":true}]})") == R"({"v":[null,1,null]})");  // nulls do not count
    CHECK(one(R"({"L":[{"L":[{"N":"1"}]},{"NS":["2"]},{"N":"3"}]})") == R"({"v":[[1],[2],3]})");
}

TEST_CASE("lists: a mixed list turns scalars into strings, exactly") {
    CHECK(one(R"({"L":[{"N":"1"},{"S":"a"}]})") == R"({"v":["1","a"]})");
    CHECK(one(R"({"L":[{"N":"+007.50"},{"BOOL":true},{"BOOL":false},{"NULL":true}]})") == R"({"v":["7.50","true","false",null]})");
    CHECK(one(R"({"L":[{"N":"12345678901234567890123456789012345678"},{"S":"x"}]})") ==
          R"({"v":["12345678901234567890123456789012345678","x"]})");
    CHECK(one(R"({"L":[{"B":"AA=="},{"N":"1"}]})") == R"({"v":["AA==","1"]})");
}

TEST_CASE("lists: objects in a mixed list become their compact JSON text") {
    CHECK(one(R"({"L":[{"M":{"a":{"N":"1"},"b":{"L":[{"S":"x"},{"N":"2"}]}}},{"S":"s"}]})") ==
          R"({"v":["{\"a\":1,\"b\":[\"x\",\"2\"]}","s"]})");
    CHECK(one(R"({"L":[{"M":{"q":{"S":"say \"hi\"\n"}}},{"N":"1"}]})") == R"({"v":["{\"q\":\"say \\\"hi\\\"\\n\"}","1"]})");
}

TEST_CASE("lists: nested arrays count as OpenSearch flattens them, and keep their structure") {
    CHECK(one(R"({"L":[{"L":[{"N":"1"}]},{"L":[{"S":"a"}]}]})") == R"({"v":[["1"],["a"]]})");
    CHECK(one(R"({"L":[{"N":"1"},{"L":[{"L":[{"BOOL":true}]}]}]})") == R"({"v":["1",[["true"]]]})");
    CHECK(one(R"({"L":[{"NS":["1","2"]},{"SS":["a"]}]})") == R"({"v":[["1","2"],["a"]]})");
    CHECK(one(R"({"L":[{"L":[]},{"N":"1"},{"L":[{"NULL":true}]}]})") == R"({"v":[[],1,[null]]})");
}

TEST_CASE("lists: applied at every depth, independently per array") {
    CHECK(one(R"({"M":{"a":{"L":[{"N":"1"},{"S":"x"}]},"b":{"L":[{"N":"1"},{"N":"2"}]}}})") ==
          R"({"v":{"a":["1","x"],"b":[1,2]}})");
    CHECK(one(R"({"L":[{"M":{"inner":{"L":[{"N":"1"},{"BOOL":true}]}}},{"M":{"inner":{"L":[{"N":"2"}]}}}]})") ==
          R"({"v":[{"inner":["1","true"]},{"inner":[2]}]})");
}

TEST_CASE("lists: number mode decides a number's kind") {
    ddb2os::unmarshal_options o;
    o.numbers = ddb2os::number_mode::string;
    CHECK(one(R"({"L":[{"N":"1"},{"S":"a"}]})", o) == R"({"v":["1","a"]})");
    o.numbers = ddb2os::number_mode::double_;
    CHECK(one(R"({"L":[{"N":"1.50"},{"S":"a"}]})", o) == R"({"v":["1.5","a"]})");
}

TEST_CASE("lists: policy keep leaves every array alone") {
    CHECK(one(R"({"L":[{"N":"1"},{"S":"a"},{"M":{}}]})", keep()) == R"({"v":[1,"a",{}]})");
}

TEST_CASE("lists: an invalid element is still reported inside a mixed list") {
    CHECK(test::one_error(R"({"L":[{"N":"1"},{"S":"a"},{"N":"bad"}]})") ==
          "[ddb2os.number.invalid] v.L[2].N: \"bad\" is not a number");
    CHECK(test::one_error(R"({"L":[{"S":"a"},{"N":"1"},{}]})") ==
          "[ddb2os.attribute.no_type] v.L[2]: an attribute value needs a type key (S, N, B, BOOL, NULL, M, L, SS, NS or BS); it has none");
}

TEST_CASE("options: each number mode and list policy is read from its name and named back by it") {
    for (const ddb2os::number_mode m : {ddb2os::number_mode::exact, ddb2os::number_mode::string, ddb2os::number_mode::double_}) {
        ddb2os::number_mode read = m == ddb2os::number_mode::exact ? ddb2os::number_mode::string : ddb2os::number_mode::exact;
        CHECK(ddb2os::parse_number_mode(ddb2os::to_string(m), read));
        CHECK(read == m);
    }
    CHECK(ddb2os::to_string(ddb2os::number_mode::exact) == "exact");
    CHECK(ddb2os::to_string(ddb2os::number_mode::string) == "string");
    CHECK(ddb2os::to_string(ddb2os::number_mode::double_) == "double");
    for (const ddb2os::list_policy p : {ddb2os::list_policy::stringify, ddb2os::list_policy::keep}) {
        ddb2os::list_policy read = p == ddb2os::list_policy::keep ? ddb2os::list_policy::stringify : ddb2os::list_policy::keep;
        CHECK(ddb2os::parse_list_policy(ddb2os::to_string(p), read));
        CHECK(read == p);
    }
    // "double" is the nearest double, not a number's text as a string.
    ddb2os::unmarshal_options o;
    REQUIRE(ddb2os::parse_number_mode("double", o.numbers));
    CHECK(one(R"({"N":"1.50"})", o) == R"({"v":1.5})");
    for (const char* name : {"", "Double", "float", "exact ", "keep"}) {
        ddb2os::number_mode m = ddb2os::number_mode::exact;
        CHECK_FALSE(ddb2os::parse_number_mode(name, m));
        CHECK(m == ddb2os::number_mode::exact);
    }
}
