// The raw-record copy of dead letters (detail/json_copy.hpp): any adapter's value back out as one JSON
// document, whatever number text the host has.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "ddb2os/adapters/nlohmann.hpp"
#include "ddb2os/adapters/raw_json.hpp"
#include "ddb2os/detail/json_copy.hpp"

namespace {

template <class A>
std::string copy(typename A::value v) {
    ddb2os::detail::out_buffer out;
    ddb2os::detail::write_json_copy<A>(out, v);
    return out.take();
}

// A host whose numbers carry any text at all (Python's inf and nan, an object with no text).
struct text_numbers {
    using value = const std::string*;
    static ddb2os::value_kind kind(value) noexcept { return ddb2os::value_kind::number; }
    static std::string_view number_text(value v, std::string&) { return *v; }
    static ddb2os::string_ref string(value) noexcept { return {}; }
    static bool boolean(value) noexcept { return false; }
    static std::string_view binary(value) noexcept { return {}; }
    static std::size_t size(value) noexcept { return 0; }
    template <class F> static bool each_member(value, F&&) { return true; }
    template <class F> static bool each_element(value, F&&) { return true; }
};

}  // namespace

TEST_CASE("json_copy: a JSON number is copied as it is") {
    for (const std::string t :
         {"0", "-0", "1.5", "1e5", "1E+400", "1E-400", "0E-7", "-12345678901234567890123456789012345678901234567890"}) {
        CAPTURE(t);
        CHECK(copy<text_numbers>(&t) == t);
    }
}

TEST_CASE("json_copy: number text JSON has no number for stays one JSON document") {
    // Kept as text where there is text; null where there is none (or the host's own null).
    const std::pair<std::string, std::string> cases[] = {
        {"inf", "\"inf\""}, {"-inf", "\"-inf\""}, {"nan", "\"nan\""}, {"NaN", "\"NaN\""}, {"Infinity", "\"Infinity\""},
        {".5", "\".5\""}, {"+1", "\"+1\""}, {"01", "\"01\""}, {"1.", "\"1.\""}, {"", "null"}, {"null", "null"}};
    for (const auto& c : cases) {
        const std::string& text = c.first;  // not a structured binding: clang 14's CAPTURE cannot take one
        CAPTURE(text);
        const std::string out = copy<text_numbers>(&text);
        CHECK(out == c.second);
        CHECK(nlohmann::json::accept(out));
    }
    const nlohmann::json j = {{"n", 1.5}, {"t", std::numeric_limits<double>::quiet_NaN()},
                              {"u", std::numeric_limits<double>::infinity()}};
    CHECK(copy<ddb2os::nlohmann_adapter>(&j) == R"({"n":1.5,"t":null,"u":null})");
}

TEST_CASE("json_copy: a record copied without the image attributes excluded, at their top level only") {
    const std::string record =
        R"({"eventID":"e1","ssn":"record level, kept","dynamodb":{"Keys":{"ssn":{"S":"a key, kept"}},"ssn":1,)"
        R"("NewImage":{"id":{"S":"1"},"ssn":{"S":"123-45-6789"},"\u0073sn":{"S":"escaped"},"m":{"M":{"ssn":{"S":"nested, kept"}}}},)"
        R"("OldImage":{"ssn":{"S":"987-65-4321"},"x":{"N":"2"}}}})";
    const ddb2os::raw_json_document d(record);
    ddb2os::detail::out_buffer out;
    ddb2os::detail::write_record_copy<ddb2os::raw_json_adapter>(out, d.root(), {}, {"ssn"});
    CHECK(out.view() ==
          R"({"eventID":"e1","ssn":"record level, kept","dynamodb":{"Keys":{"ssn":{"S":"a key, kept"}},"ssn":1,)"
          R"("NewImage":{"id":{"S":"1"},"m":{"M":{"ssn":{"S":"nested, kept"}}}},"OldImage":{"x":{"N":"2"}}}})");
    // With an include list, images keep only what it names (and exclude still applies).
    ddb2os::detail::out_buffer inc;
    ddb2os::detail::write_record_copy<ddb2os::raw_json_adapter>(inc, d.root(), {"x", "ssn", "id"}, {"ssn"});
    CHECK(inc.view() ==
          R"({"eventID":"e1","ssn":"record level, kept","dynamodb":{"Keys":{"ssn":{"S":"a key, kept"}},"ssn":1,)"
          R"("NewImage":{"id":{"S":"1"}},"OldImage":{"x":{"N":"2"}}}})");
    // Nothing excluded: write_json_copy's copy, byte for byte.
    ddb2os::detail::out_buffer all, plain;
    ddb2os::detail::write_record_copy<ddb2os::raw_json_adapter>(all, d.root(), {}, {});
    ddb2os::detail::write_json_copy<ddb2os::raw_json_adapter>(plain, d.root());
    CHECK(all.view() == plain.view());
}

TEST_CASE("json_copy: what cannot be decoded becomes U+FFFD, and the rest of the string is kept") {
    using R = ddb2os::raw_json_adapter;
    const auto raw = [](std::string_view text) {
        const ddb2os::raw_json_document d(text);
        return copy<R>(d.root());
    };
    const std::string fffd = "\xEF\xBF\xBD";
    // A byte that is not UTF-8 (the string was cut there), in a value and in a name.
    CHECK(raw("{\"s\":\"ab\xff" "cd\"}") == "{\"s\":\"ab" + fffd + "cd\"}");
    CHECK(raw("{\"k\xfe\":1}") == "{\"k" + fffd + "\":1}");
    CHECK(raw("{\"s\":\"\\n\xff\"}") == "{\"s\":\"\\n" + fffd + "\"}");  // escaped and not UTF-8 both
    // An unpaired surrogate escape (it was written back as the text "\\ud800", a backslash and "ud800").
    CHECK(raw(R"({"s":"x\ud800y"})") == "{\"s\":\"x" + fffd + "y\"}");
    CHECK(raw(R"({"s":"\udc00\ud83d\ude00\ud800"})") == "{\"s\":\"" + fffd + "\xF0\x9F\x98\x80" + fffd + "\"}");
    CHECK(raw(R"({"\ud800":1})") == "{\"" + fffd + "\":1}");
    CHECK(raw(R"({"s":"\ud800\u0041"})") == "{\"s\":\"" + fffd + "A\"}");
    // Valid strings as before.
    CHECK(raw(R"({"s":"a\"b\\c\u00e9\ud83d\ude00"})") == "{\"s\":\"a\\\"b\\\\c\xC3\xA9\xF0\x9F\x98\x80\"}");
}

TEST_CASE("json_copy: a value nested deeper than 256 levels is replaced by a note saying so, not by null") {
    std::string deep(300, '['), close(300, ']');
    const ddb2os::raw_json_document d(deep + "1" + close);
    const std::string out = copy<ddb2os::raw_json_adapter>(d.root());
    CHECK(out == std::string(257, '[') + "\"[ddb2os: nested deeper than 256 levels, not copied]\"" + std::string(257, ']'));
}
