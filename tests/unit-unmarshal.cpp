// The unmarshaller (unmarshal.hpp): every DynamoDB type, strings, nesting and every error.
#include <string>

#include "test_support.hpp"

using test::doc;
using test::doc_error;
using test::one;
using test::one_error;

TEST_CASE("unmarshal: every type") {
    CHECK(one(R"({"S":"hello"})") == R"({"v":"hello"})");
    CHECK(one(R"({"S":""})") == R"({"v":""})");
    CHECK(one(R"({"N":"42"})") == R"({"v":42})");
    CHECK(one(R"({"B":"AAEC/w=="})") == R"({"v":"AAEC/w=="})");
    CHECK(one(R"({"B":""})") == R"({"v":""})");
    CHECK(one(R"({"BOOL":true})") == R"({"v":true})");
    CHECK(one(R"({"BOOL":false})") == R"({"v":false})");
    CHECK(one(R"({"NULL":true})") == R"({"v":null})");
    CHECK(one(R"({"M":{}})") == R"({"v":{}})");
    CHECK(one(R"({"M":{"z":{"N":"1"},"a":{"S":"x"}}})") == R"({"v":{"z":1,"a":"x"}})");  // order kept
    CHECK(one(R"({"L":[]})") == R"({"v":[]})");
    CHECK(one(R"({"L":[{"S":"a"},{"S":"b"}]})") == R"({"v":["a","b"]})");
    CHECK(one(R"({"SS":["b","a","c"]})") == R"({"v":["b","a","c"]})");  // set order kept
    CHECK(one(R"({"NS":["3","-1.5","+2"]})") == R"({"v":[3,-1.5,2]})");
    CHECK(one(R"({"BS":["AA==","AQI="]})") == R"({"v":["AA==","AQI="]})");
    CHECK(doc("{}") == "{}");
}

TEST_CASE("unmarshal: a realistic item") {
    CHECK(doc(R"({"author":{"S":"Dan Brown"},"bookTitle":{"S":"The Da Vinci Code"},"year":{"N":"2003"},
                 "price":{"N":"12.99"},"tags":{"SS":["thriller","mystery"]},"inPrint":{"BOOL":true},
                 "details":{"M":{"pages":{"N":"489"},"isbn":{"S":"0-385-50420-9"},"ratings":{"L":[{"N":"5"},{"N":"4"}]}}},
                 "cover":{"B":"iVBORw0KGgo="},"subTitle":{"NULL":true}})") ==
          R"({"author":"Dan Brown","bookTitle":"The Da Vinci Code","year":2003,"price":12.99,"tags":["thriller","mystery"],"inPrint":true,"details":{"pages":489,"isbn":"0-385-50420-9","ratings":[5,4]},"cover":"iVBORw0KGgo=","subTitle":null})");
}

TEST_CASE("unmarshal: unicode and every escape, always one line") {
    CHECK(one(R"({"S":"caf\u00e9 \ud83d\ude00 ✓"})") == "{\"v\":\"café 😀 ✓\"}");
    CHECK(one(R"({"S":"nul\u0000 bell\u0007 del\u007f"})") == "{\"v\":\"nul\\u0000 bell\\u0007 del\x7f\"}");
    CHECK(one(R"({"S":"line\nbreak\r\ttab \"q\" back\\slash \/ \b\f"})") ==
          R"({"v":"line\nbreak\r\ttab \"q\" back\\slash / \b\f"})");
    CHECK(one("{\"S\":\"a\xe2\x80\xa8" "b\xe2\x80\xa9" "c\"}") == R"({"v":"a\u2028b\u2029c"})");
    CHECK(one(R"({"S":"\u2028\u2029"})") == R"({"v":"\u2028\u2029"})");
    CHECK(doc(R"({"k\u00e9y\n":{"S":"v"}})") == "{\"k\xc3\xa9y\\n\":\"v\"}");
    // Long strings with one special byte at every position (the 16-byte fast path).
    for (std::size_t i = 0; i < 40; ++i) {
        std::string s(40, 'x');
        s[i] = '"';
        std::string escaped = s;
        escaped.replace(i, 1, "\\\"");
        CHECK(one("{\"S\":\"" + escaped + "\"}") == "{\"v\":\"" + escaped + "\"}");
    }
}

TEST_CASE("unmarshal: invalid UTF-8 and unpaired surrogates are errors") {
    CHECK(one_error("{\"S\":\"ab\xff\"}") == "[ddb2os.utf8.invalid] v.S: string is not valid UTF-8 (byte 2)");
    CHECK(one_error("{\"S\":\"\xc0\xaf\"}") == "[ddb2os.utf8.invalid] v.S: string is not valid UTF-8 (byte 0)");
    CHECK(one_error("{\"S\":\"\xed\xa0\x80\"}") == "[ddb2os.utf8.invalid] v.S: string is not valid UTF-8 (byte 0)");
    CHECK(one_error("{\"S\":\"\xf4\x90\x80\x80\"}") == "[ddb2os.utf8.invalid] v.S: string is not valid UTF-8 (byte 0)");
    CHECK(one_error("{\"S\":\"abc\xe2\x82\"}") == "[ddb2os.utf8.invalid] v.S: string is not valid UTF-8 (byte 3)");
}

TEST_CASE("unmarshal: unpaired surrogate escapes (raw path only: nlohmann refuses to parse them)") {
    const std::string unpaired = "[ddb2os.utf8.invalid] v.S: string is not valid Unicode (an unpaired UTF-16 surrogate or invalid UTF-8)";
    // A high surrogate pairs only with a low one (DC00-DFFF): an escape above that range (E000, FFFF) is none.
    for (const char* s : {R"({"v":{"S":"\ud800"}})", R"({"v":{"S":"\udc00x"}})", R"({"v":{"S":"\ud800\u0041"}})",
                          R"({"v":{"S":"\ud800\ue000"}})", R"({"v":{"S":"\udbff\uffff"}})"}) {
        const ddb2os::raw_json_document d(s);
        ddb2os::detail::out_buffer out;
        ddb2os::path_error err;
        CHECK_FALSE(ddb2os::write_document<ddb2os::raw_json_adapter>(out, d.root(), {}, err));
        CHECK(err.what() == unpaired);
    }
}

TEST_CASE("unmarshal: attribute value shape errors, with exact messages") {
    CHECK(one_error(R"({})") ==
          "[ddb2os.attribute.no_type] v: an attribute value needs a type key (S, N, B, BOOL, NULL, M, L, SS, NS or BS); it has none");
    CHECK(one_error(R"({"S":"a","N":"1"})") ==
          "[ddb2os.attribute.multiple_types] v: an attribute value needs exactly one type key; it has 2 (\"S\", \"N\")");
    CHECK(one_error(R"({"X":"a"})") ==
          "[ddb2os.attribute.unknown_type] v: unknown type key \"X\" (expected S, N, B, BOOL, NULL, M, L, SS, NS or BS)");
    CHECK(one_error(R"({"s":"a"})") ==
          "[ddb2os.attribute.unknown_type] v: unknown type key \"s\" (expected S, N, B, BOOL, NULL, M, L, SS, NS or BS)");
    // Keys written with escapes are named decoded, as the nlohmann and Python paths name them (the raw
    // path quoted their JSON text here: a differential fuzzer found it); an unpaired surrogate as U+FFFD.
    CHECK(one_error(R"({"\n":"a","\u0042":"1"})") ==
          "[ddb2os.attribute.multiple_types] v: an attribute value needs exactly one type key; it has 2 (\"\\n\", \"B\")");
    CHECK(one_error(R"({"\u0051":"a"})") ==
          "[ddb2os.attribute.unknown_type] v: unknown type key \"Q\" (expected S, N, B, BOOL, NULL, M, L, SS, NS or BS)");
    CHECK(one_error(R"({"\ud800":"a"})") ==
          "[ddb2os.attribute.unknown_type] v: unknown type key \"\xEF\xBF\xBD\" (expected S, N, B, BOOL, NULL, M, L, SS, NS or BS)");
    CHECK(one_error(R"("plain")") == "[ddb2os.attribute.not_object] v: an attribute value must be an object with one type key, not a string");
    CHECK(one_error(R"([1])") == "[ddb2os.attribute.not_object] v: an attribute value must be an object with one type key, not an array");
    CHECK(one_error(R"({"S":1})") == "[ddb2os.attribute.wrong_json_type] v: S holds a number; it must hold a string");
    CHECK(one_error(R"({"B":null})") == "[ddb2os.attribute.wrong_json_type] v: B holds a null; it must hold a string");
    CHECK(one_error(R"({"BOOL":"true"})") == "[ddb2os.attribute.wrong_json_type] v: BOOL holds a string; it must hold a boolean");
    CHECK(one_error(R"({"NULL":false})") == "[ddb2os.attribute.wrong_json_type] v: NULL holds false; it must hold true");
    CHECK(one_error(R"({"NULL":"x"})") == "[ddb2os.attribute.wrong_json_type] v: NULL holds a string; it must hold true");
    // "an", as every other message says it (these said "a array", "a object" before 612943c).
    CHECK(one_error(R"({"NULL":[]})") == "[ddb2os.attribute.wrong_json_type] v: NULL holds an array; it must hold true");
    CHECK(one_error(R"({"NULL":{}})") == "[ddb2os.attribute.wrong_json_type] v: NULL holds an object; it must hold true");
    CHECK(one_error(R"({"M":[]})") == "[ddb2os.attribute.wrong_json_type] v: M holds an array; it must hold an object");
    CHECK(one_error(R"({"L":{}})") == "[ddb2os.attribute.wrong_json_type] v: L holds an object; it must hold an array");
    CHECK(one_error(R"({"SS":"a"})") == "[ddb2os.attribute.wrong_json_type] v: SS holds a string; it must hold an array");
    CHECK(one_error(R"({"SS":["a",1]})") == "[ddb2os.attribute.wrong_json_type] v.SS[1]: SS elements must be strings, not a number");
    CHECK(one_error(R"({"NS":["1","x"]})") == "[ddb2os.number.invalid] v.NS[1]: \"x\" is not a number");
    CHECK(one_error(R"({"BS":["AA==","A"]})") == "[ddb2os.base64.invalid] v.BS[1]: \"A\" is not valid base64: length is not a multiple of 4");
    CHECK(doc_error(R"([])") == "[ddb2os.attribute.not_object] an item image must be an object of attributes, not an array");
}

TEST_CASE("unmarshal: empty sets are errors") {
    CHECK(one_error(R"({"SS":[]})") == "[ddb2os.set.empty] v.SS: SS is an empty set; a DynamoDB set holds at least one element");
    CHECK(one_error(R"({"NS":[]})") == "[ddb2os.set.empty] v.NS: NS is an empty set; a DynamoDB set holds at least one element");
    CHECK(one_error(R"({"BS":[]})") == "[ddb2os.set.empty] v.BS: BS is an empty set; a DynamoDB set holds at least one element");
}

TEST_CASE("unmarshal: base64 is checked and passed through") {
    CHECK(one(R"({"B":"AQ=="})") == R"({"v":"AQ=="})");
    CHECK(one(R"({"B":"AQI="})") == R"({"v":"AQI="})");
    CHECK(one(R"({"B":"AQID"})") == R"({"v":"AQID"})");
    CHECK(one(R"({"B":"A\/+/"})") == R"({"v":"A/+/"})");
    CHECK(one(R"({"B":"A\/8="})") == R"({"v":"A/8="})");
    CHECK(one_error(R"({"B":"AQ="})") == "[ddb2os.base64.invalid] v.B: \"AQ=\" is not valid base64: length is not a multiple of 4");
    CHECK(one_error(R"({"B":"A=Q="})") == "[ddb2os.base64.invalid] v.B: \"A=Q=\" is not valid base64: padding '=' before the end");
    CHECK(one_error(R"({"B":"AQ-_"})") == "[ddb2os.base64.invalid] v.B: \"AQ-_\" is not valid base64: character outside the base64 alphabet");
    CHECK(one_error(R"({"B":"AR=="})") == "[ddb2os.base64.invalid] v.B: \"AR==\" is not valid base64: non-zero bits after the last byte");
    CHECK(one_error(R"({"B":"AQJ="})") == "[ddb2os.base64.invalid] v.B: \"AQJ=\" is not valid base64: non-zero bits after the last byte");
    CHECK(one_error(R"({"B":"AQK="})") == "[ddb2os.base64.invalid] v.B: \"AQK=\" is not valid base64: non-zero bits after the last byte");
    CHECK(one_error(R"({"B":"AI=="})") == "[ddb2os.base64.invalid] v.B: \"AI==\" is not valid base64: non-zero bits after the last byte");
}

TEST_CASE("unmarshal: error paths reach deep") {
    CHECK(doc_error(R"({"tags":{"L":[{"S":"a"},{"S":"b"},{"S":"c"},{"N":"x1"}]}})") ==
          "[ddb2os.number.invalid] tags.L[3].N: \"x1\" is not a number");
    CHECK(doc_error(R"({"a":{"M":{"b":{"L":[{"M":{"c":{"BOOL":1}}}]}}}})") ==
          "[ddb2os.attribute.wrong_json_type] a.M.b.L[0].M.c: BOOL holds a number; it must hold a boolean");
    CHECK(doc_error(R"({"ok":{"S":"x"},"we\u0069rd":{"Q":1}})") ==
          "[ddb2os.attribute.unknown_type] weird: unknown type key \"Q\" (expected S, N, B, BOOL, NULL, M, L, SS, NS or BS)");
}

namespace {
std::string nested(int levels, const char* kind) {
    std::string s;
    for (int i = 0; i < levels; ++i) s += kind[0] == 'M' ? R"({"M":{"x":)" : R"({"L":[)";
    s += R"({"S":"deep"})";
    for (int i = 0; i < levels; ++i) s += kind[0] == 'M' ? "}}" : "]}";
    return s;
}
}  // namespace

// Levels count the item itself, as DynamoDB does: 31 nested M or L hold a value at level 32, and
// DynamoDB Local refuses a 32nd M or L (even an empty one) and accepts a scalar or set in the 31st.
TEST_CASE("unmarshal: nesting, 32 levels accepted and 33 rejected") {
    for (const char* kind : {"M", "L"}) {
        CAPTURE(kind);
        const std::string ok = one(nested(31, kind));
        CHECK(ok.find("\"deep\"") != std::string::npos);
        const std::string err = one_error(nested(32, kind));
        CHECK(err.rfind("[ddb2os.nesting.too_deep] v.", 0) == 0);
        CHECK(err.find(": nesting is deeper than DynamoDB's 32 levels") != std::string::npos);
    }
    std::string empty31 = R"({"L":[]})", set31 = R"({"SS":["a"]})";
    for (int i = 0; i < 31; ++i) {
        empty31 = R"({"M":{"k":)" + empty31 + "}}";
        if (i < 30) set31 = R"({"M":{"k":)" + set31 + "}}";
    }
    CHECK(one_error(empty31).rfind("[ddb2os.nesting.too_deep]", 0) == 0);  // a 32nd container, even empty
    CHECK(one(R"({"M":{"k":)" + set31 + "}}").find("[\"a\"]") != std::string::npos);  // a set in the 31st
    CHECK(one_error(nested(32, "L")) ==
          "[ddb2os.nesting.too_deep] v" + [] {
              std::string p;
              for (int i = 0; i < 31; ++i) p += ".L[0]";
              return p;
          }() + ".L: nesting is deeper than DynamoDB's 32 levels");
    // Far deeper input is refused quickly and without deep recursion.
    const std::string very_deep = "{\"v\":" + nested(100000, "L") + "}";
    const ddb2os::raw_json_document d(very_deep);
    ddb2os::detail::out_buffer out;
    ddb2os::path_error err;
    CHECK_FALSE(ddb2os::write_document<ddb2os::raw_json_adapter>(out, d.root(), {}, err));
    CHECK(err.code == ddb2os::errc::nesting_too_deep);
}

TEST_CASE("unmarshal: OpenSearch metadata field names are renamed at the top level only") {
    CHECK(doc(R"({"_id":{"S":"a"},"_index":{"S":"b"},"_source":{"N":"1"},"_routing":{"S":"r"},"_version":{"N":"2"},"id":{"S":"c"}})") ==
          R"({"__id":"a","__index":"b","__source":1,"__routing":"r","__version":2,"id":"c"})");
    // One more underscore for the whole family keeps names distinct.
    CHECK(doc(R"({"_id":{"S":"a"},"__id":{"S":"b"},"___id":{"S":"c"}})") == R"({"__id":"a","___id":"b","____id":"c"})");
    CHECK(doc(R"({"_idx":{"S":"a"},"_":{"S":"b"},"m":{"M":{"_id":{"S":"c"}}}})") == R"({"_idx":"a","_":"b","m":{"_id":"c"}})");
    ddb2os::unmarshal_options keep;
    keep.rename_metadata_fields = false;
    CHECK(doc(R"({"_id":{"S":"a"}})", keep) == R"({"_id":"a"})");
    std::string out;
    CHECK(ddb2os::rename_metadata_field("_seq_no", out));
    CHECK(out == "__seq_no");
    CHECK_FALSE(ddb2os::rename_metadata_field("seq_no", out));
    // _doc_count is read by OpenSearch as the document's weight in aggregations, not as a field.
    CHECK(ddb2os::rename_metadata_field("_doc_count", out));
    CHECK(out == "__doc_count");
    // Every name README lists: each one OpenSearch would refuse in a document (its record dead-lettered).
    for (const char* m : {"id", "index", "source", "routing", "version", "type", "seq_no", "primary_term", "field_names",
                          "ignored", "nested_path", "data_stream_timestamp", "meta", "size", "tier", "doc_count"}) {
        CAPTURE(m);
        CHECK(ddb2os::rename_metadata_field("_" + std::string(m), out));
        CHECK(out == "__" + std::string(m));
        CHECK(ddb2os::rename_metadata_field("__" + std::string(m), out));
        CHECK(out == "___" + std::string(m));
        CHECK_FALSE(ddb2os::rename_metadata_field(m, out));
    }
}

TEST_CASE("unmarshal: attribute names must be valid UTF-8") {
    CHECK(doc_error("{\"a\xff\":{\"S\":\"x\"}}") == "[ddb2os.utf8.invalid] a\xef\xbf\xbd: attribute name: string is not valid UTF-8 (byte 1)");
}

TEST_CASE("unmarshal: the nlohmann adapter, binary values and to_json errors") {
    nlohmann::json j = {{"b", {{"B", nlohmann::json::binary({0, 1, 2, 255})}}},
                        {"bs", {{"BS", nlohmann::json::array({nlohmann::json::binary({1})})}}}};
    CHECK(ddb2os::to_json<ddb2os::nlohmann_adapter>(&j) == R"({"b":"AAEC/w==","bs":["AQ=="]})");
    nlohmann::json bad = {{"n", {{"N", "1x"}}}};
    CHECK_THROWS_WITH_AS(ddb2os::to_json<ddb2os::nlohmann_adapter>(&bad),
                         "[ddb2os.number.invalid] n.N: \"1x\" is not a number", ddb2os::error);
}

// An adapter that says its strings are valid UTF-8 is believed (the Python adapter's case: CPython
// encoded them); every other adapter's strings are checked.
struct trusting_adapter : ddb2os::nlohmann_adapter {
    static constexpr bool valid_utf8 = true;
};
struct doubting_adapter : ddb2os::nlohmann_adapter {
    static constexpr bool valid_utf8 = false;
};

TEST_CASE("unmarshal: string_text checks a string unless the adapter vouches for it") {
    static_assert(!ddb2os::detail::adapter_valid_utf8<ddb2os::nlohmann_adapter>::value);
    static_assert(!ddb2os::detail::adapter_valid_utf8<ddb2os::raw_json_adapter>::value);
    static_assert(ddb2os::detail::adapter_valid_utf8<trusting_adapter>::value);
    static_assert(!ddb2os::detail::adapter_valid_utf8<doubting_adapter>::value);
    const nlohmann::json bad = std::string("a\xff");
    std::string scratch, message;
    std::string_view text;
    using ddb2os::detail::string_text;
    CHECK(string_text<ddb2os::nlohmann_adapter>(&bad, scratch, text, message) == ddb2os::errc::utf8_invalid);
    CHECK(message == "string is not valid UTF-8 (byte 1)");
    CHECK(string_text<doubting_adapter>(&bad, scratch, text, message) == ddb2os::errc::utf8_invalid);
    CHECK(string_text<trusting_adapter>(&bad, scratch, text, message) == ddb2os::errc::ok);
    CHECK(text == "a\xff");
}

TEST_CASE("unmarshal: a type key written with escapes is read decoded") {
    // Valid JSON for {"S":"x"}: the raw reader parsed the key's text as written and refused it.
    CHECK(one(R"({"\u0053":"x"})") == R"({"v":"x"})");
    CHECK(one(R"({"\u004E":"12"})") == R"({"v":12})");
    CHECK(one(R"({"B\u004f\u004FL":true})") == R"({"v":true})");
}

// ---------------------------------------------------------------- from a fourth mutation run

TEST_CASE("unmarshal: a message quotes a text of 64 bytes whole and cuts a longer one there") {
    const std::string x64(64, 'x');
    CHECK(one_error(R"({"N":")" + x64 + R"("})") == "[ddb2os.number.invalid] v.N: \"" + x64 + "\" is not a number");
    CHECK(one_error(R"({"N":")" + x64 + R"(y"})") == "[ddb2os.number.invalid] v.N: \"" + x64 + "...\" (65 bytes) is not a number");
}

TEST_CASE("unmarshal: a metadata name written with escapes is renamed at the top level only, as written plainly") {
    CHECK(doc(R"({"\u005fid":{"S":"a"},"m":{"M":{"\u005fid":{"S":"c"}}}})") == R"({"__id":"a","m":{"_id":"c"}})");
}
