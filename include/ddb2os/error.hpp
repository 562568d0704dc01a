// error.hpp: every failure ddb2os reports has a stable id and an exact message.
//
// Two channels, as in nlohmann/json and cpp-httplib:
// - ddb2os::error, an exception, for misuse and for input that cannot be read at all
//   (a malformed event, an invalid option). Its what() is "[ddb2os.<id>] <message>".
// - ddb2os::errc values, for expected per-record failures on the hot path: one bad record is
//   reported (with its path) and never stops the others.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "config.hpp"

DDB2OS_BEGIN_NAMESPACE

// Stable ids: never renumber or rename; tests and users match on them.
enum class errc : unsigned char {
    ok = 0,
    // the event as a whole (framing)
    json_syntax,            // json.syntax
    event_not_object,       // event.shape
    // one record
    record_not_object,      // record.not_object
    record_missing_field,   // record.missing_field
    record_bad_field,       // record.bad_field
    record_event_name,      // record.event_name
    record_no_new_image,    // record.no_new_image
    record_too_large,       // record.too_large
    // attribute values
    attr_not_object,        // attribute.not_object
    attr_no_type,           // attribute.no_type
    attr_multiple_types,    // attribute.multiple_types
    attr_unknown_type,      // attribute.unknown_type
    attr_wrong_json_type,   // attribute.wrong_json_type
    number_invalid,         // number.invalid
    number_out_of_range,    // number.out_of_range
    base64_invalid,         // base64.invalid
    utf8_invalid,           // utf8.invalid
    set_empty,              // set.empty
    nesting_too_deep,       // nesting.too_deep
    // document ids and index names
    key_missing,            // key.missing
    key_unexpected,         // key.unexpected
    key_bad_type,           // key.bad_type
    key_no_schema,          // key.no_schema
    key_empty,              // key.empty
    index_invalid,          // index.invalid
    // options and signing
    option_invalid,         // option.invalid
};

constexpr std::string_view error_id(errc e) noexcept {
    switch (e) {
        case errc::ok: return "ok";
        case errc::json_syntax: return "json.syntax";
        case errc::event_not_object: return "event.shape";
        case errc::record_not_object: return "record.not_object";
        case errc::record_missing_field: return "record.missing_field";
        case errc::record_bad_field: return "record.bad_field";
        case errc::record_event_name: return "record.event_name";
        case errc::record_no_new_image: return "record.no_new_image";
        case errc::record_too_large: return "record.too_large";
        case errc::attr_not_object: return "attribute.not_object";
        case errc::attr_no_type: return "attribute.no_type";
        case errc::attr_multiple_types: return "attribute.multiple_types";
        case errc::attr_unknown_type: return "attribute.unknown_type";
        case errc::attr_wrong_json_type: return "attribute.wrong_json_type";
        case errc::number_invalid: return "number.invalid";
        case errc::number_out_of_range: return "number.out_of_range";
        case errc::base64_invalid: return "base64.invalid";
        case errc::utf8_invalid: return "utf8.invalid";
        case errc::set_empty: return "set.empty";
        case errc::nesting_too_deep: return "nesting.too_deep";
        case errc::key_missing: return "key.missing";
        case errc::key_unexpected: return "key.unexpected";
        case errc::key_bad_type: return "key.bad_type";
        case errc::key_no_schema: return "key.no_schema";
        case errc::key_empty: return "key.empty";
        case errc::index_invalid: return "index.invalid";
        case errc::option_invalid: return "option.invalid";
    }
    return "unknown";
}

// The exception. `id` is the stable part ("json.syntax", "sigv4.no_host", ...); `message` is
// the exact human text, which never contains a secret; `path`, when there is one, where in the
// input it was found ("Records[3].eventSource"), which what() puts before the message.
class error : public std::runtime_error {
public:
    error(std::string id, const std::string& message)
        : std::runtime_error("[ddb2os." + id + "] " + message), id_(std::move(id)), message_(message) {}
    error(errc code, const std::string& message) : error(std::string(error_id(code)), message) {}
    error(errc code, std::string path, const std::string& message)
        : std::runtime_error("[ddb2os." + std::string(error_id(code)) + "] " + (path.empty() ? "" : path + ": ") +
                             message),
          id_(error_id(code)),
          path_(std::move(path)),
          message_(message) {}

    const std::string& id() const noexcept { return id_; }
    const std::string& path() const noexcept { return path_; }
    const std::string& message() const noexcept { return message_; }

private:
    std::string id_;
    std::string path_;
    std::string message_;
};

DDB2OS_END_NAMESPACE
