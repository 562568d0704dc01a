// Helpers shared by the unit tests.
#pragma once

#include <string>
#include <string_view>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <ddb2os/ddb2os.hpp>

namespace test {

// The what() of the ddb2os::error that f throws, or "no error": for exact-message assertions.
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const ddb2os::error& e) {
        return e.what();
    }
    return "no error";
}

// Every line of an NDJSON body is one JSON value, and the body ends with a newline.
inline int check_ndjson(std::string_view body) {
    int lines = 0;
    REQUIRE((body.empty() || body.back() == '\n'));
    std::size_t at = 0;
    while (at < body.size()) {
        const std::size_t nl = body.find('\n', at);
        const std::string_view line = body.substr(at, nl - at);
        CHECK_MESSAGE(nlohmann::json::accept(line), "not JSON: " << line);
        ++lines;
        at = nl + 1;
    }
    return lines;
}

// The document for an image written in DynamoDB JSON, through the raw-bytes adapter; the
// nlohmann (ordered) adapter must write the very same bytes.
inline std::string doc(std::string_view image, const ddb2os::unmarshal_options& o = {}) {
    const ddb2os::raw_json_document d(image);
    const std::string raw = ddb2os::to_json<ddb2os::raw_json_adapter>(d.root(), o);
    const auto j = nlohmann::ordered_json::parse(image);
    const std::string via_nlohmann = ddb2os::to_json<ddb2os::nlohmann_ordered_adapter>(&j, o);
    CHECK(raw == via_nlohmann);
    CHECK_MESSAGE(nlohmann::json::accept(raw), raw);
    CHECK(raw.find('\n') == std::string::npos);
    return raw;
}

// The error for a bad image: "<id> <path>: <message>" in one string, for exact assertions.
// Invalid UTF-8 in the input is checked through the raw adapter only (nlohmann refuses to parse it).
inline std::string doc_error(std::string_view image, const ddb2os::unmarshal_options& o = {}) {
    const ddb2os::raw_json_document d(image);
    ddb2os::detail::out_buffer out;
    ddb2os::path_error err;
    if (ddb2os::write_document<ddb2os::raw_json_adapter>(out, d.root(), o, err)) return "no error";
    if (!nlohmann::json::accept(image)) return err.what();
    // The nlohmann adapter reports the same.
    const auto j = nlohmann::ordered_json::parse(image);
    ddb2os::detail::out_buffer out2;
    ddb2os::path_error err2;
    CHECK_FALSE(ddb2os::write_document<ddb2os::nlohmann_ordered_adapter>(out2, &j, o, err2));
    CHECK(err2.what() == err.what());
    return err.what();
}

// A one-value image: {"v": <attribute value>}.
inline std::string one(std::string_view value, const ddb2os::unmarshal_options& o = {}) {
    return doc("{\"v\":" + std::string(value) + "}", o);
}
inline std::string one_error(std::string_view value, const ddb2os::unmarshal_options& o = {}) {
    return doc_error("{\"v\":" + std::string(value) + "}", o);
}

}  // namespace test
