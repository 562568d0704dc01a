// libFuzzer target, differential: raw event bytes -> bulk bodies through the raw JSON reader
// (build_bulk over the bytes: the CLI's and the module's bytes path) and through nlohmann
// (build_bulk<nlohmann_ordered_adapter> over nlohmann's parse of the same bytes). For every input
// nlohmann reads (strictly, no exception), the two must agree exactly: the same bodies byte for
// byte (with the same records and offsets), the same per-record status, index, _id, sequence
// number, event ID, TTL flag and version, the same counts, the same errors (record, id, path,
// message, sequence number, event ID), or the same thrown error (id, path, message). The first
// byte picks the options, as in fuzz_bulk.
//
// The ordered adapter, because nlohmann::json sorts object members and ddb2os keeps attribute
// order (adapters/nlohmann.hpp): with the sorting one, documents differ by design.
//
// Where the two may legitimately differ, and what is left uncompared for it (nothing else is):
// - A NUL byte: nlohmann's lexer ends its input there (it accepts "{}\0x"), the raw reader reads on.
//   Valid JSON never holds one (it is a control character inside a string), so such inputs are skipped.
// - A repeated member name below a record's dynamodb object's members (Keys, NewImage, attribute
//   values and deeper): nlohmann keeps one member (the last value), the raw reader keeps both, and
//   ddb2os documents the difference (an attribute written twice, a repeated type key read as
//   attribute.multiple_types, "Keys holds 2 attributes"). Those inputs are skipped. A repeated name
//   in the event, a record, its dynamodb or userIdentity object is compared: ddb2os reads those by
//   name and the last one wins, as in nlohmann (raw_json_adapter::find, bulk_builder::pick).
// - JSON numbers: nlohmann keeps a double or an integer, not the text (number_text is its dump():
//   "1.7E9" reads as "1700000000.0", "-0" as "0", 1700000000.1234567 after rounding to a double).
//   bulk_builder reads a JSON number's text in one place only: a record's
//   dynamodb.ApproximateCreationDateTime, with external_versions. When epoch_microseconds gives a
//   different answer for the raw text and for nlohmann's rendering of the same number, that
//   record's version (and so whether it fails, and which change supersedes which) may differ:
//   only the thrown error is compared then. No message echoes a JSON number's text (a wrong kind
//   is named "a number").
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <ddb2os/adapters/nlohmann.hpp>
#include <ddb2os/adapters/raw_json.hpp>
#include <ddb2os/bulk.hpp>

#include "bulk_options.hpp"

namespace {

using ojson = nlohmann::ordered_json;
using nl_adapter = ddb2os::nlohmann_ordered_adapter;
using raw_adapter = ddb2os::raw_json_adapter;

// Printable ASCII as is, the rest as \xNN: a report shows exact bytes.
std::string shown(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7F && c != '\\') {
            out += static_cast<char>(c);
        } else {
            char b[8];
            std::snprintf(b, sizeof b, "\\x%02x", c);
            out += b;
        }
    }
    return out;
}

[[noreturn]] void differ(const std::string& what, std::string_view raw, std::string_view nl) {
    std::fprintf(stderr, "fuzz_bulk_adapters: %s\n  raw:      %s\n  nlohmann: %s\n", what.c_str(), shown(raw).c_str(),
                 shown(nl).c_str());
    std::abort();
}
void same(const std::string& what, std::string_view raw, std::string_view nl) {
    if (raw != nl) differ(what, raw, nl);
}
void same(const std::string& what, std::uint64_t raw, std::uint64_t nl) {
    if (raw != nl) differ(what, std::to_string(raw), std::to_string(nl));
}

struct outcome {
    bool threw = false;
    std::string id, path, message;  // the thrown error
    ddb2os::bulk_result r;
};

template <class F>
outcome run(F&& f) {
    outcome out;
    try {
        out.r = f();
    } catch (const ddb2os::error& e) {
        out.threw = true;
        out.id = e.id();
        out.path = e.path();
        out.message = e.message();
    }
    return out;
}

const char* status_name(ddb2os::record_status s) {
    switch (s) {
        case ddb2os::record_status::emitted: return "emitted";
        case ddb2os::record_status::superseded: return "superseded";
        case ddb2os::record_status::skipped_ttl: return "skipped_ttl";
        case ddb2os::record_status::failed: return "failed";
    }
    return "?";
}

// The Records array (or the bare array) of an event, as bulk_builder finds it.
template <class A>
bool records_of(typename A::value event, typename A::value& records) {
    if (A::kind(event) == ddb2os::value_kind::array) {
        records = event;
        return true;
    }
    return A::kind(event) == ddb2os::value_kind::object && A::find(event, "Records", records) &&
           A::kind(records) == ddb2os::value_kind::array;
}

// Record i's dynamodb.ApproximateCreationDateTime when it is a JSON number: epoch_microseconds of
// its text (as the adapter gives it), or "none".
template <class A>
std::string time_reading(typename A::value rec) {
    typename A::value ddb{}, t{};
    if (A::kind(rec) != ddb2os::value_kind::object || !A::find(rec, "dynamodb", ddb) ||
        A::kind(ddb) != ddb2os::value_kind::object || !A::find(ddb, "ApproximateCreationDateTime", t) ||
        A::kind(t) != ddb2os::value_kind::number)
        return "none";
    std::string scratch;
    std::int64_t us = 0;
    return ddb2os::epoch_microseconds(A::number_text(t, scratch), us) ? std::to_string(us) : "invalid";
}

// Whether some record's time, a JSON number, reads differently from nlohmann's rendering of it.
bool times_differ(raw_adapter::value raw_event, nl_adapter::value nl_event) {
    raw_adapter::value raw_records{};
    nl_adapter::value nl_records{};
    if (!records_of<raw_adapter>(raw_event, raw_records) || !records_of<nl_adapter>(nl_event, nl_records)) return false;
    std::vector<std::string> raw_times, nl_times;
    raw_adapter::each_element(raw_records, [&](raw_adapter::value v) {
        raw_times.push_back(time_reading<raw_adapter>(v));
        return true;
    });
    nl_adapter::each_element(nl_records, [&](nl_adapter::value v) {
        nl_times.push_back(time_reading<nl_adapter>(v));
        return true;
    });
    return raw_times != nl_times;
}

void compare(const outcome& a, const outcome& b) {
    same("thrown or not", a.threw ? "threw [" + a.id + "]" : "returned", b.threw ? "threw [" + b.id + "]" : "returned");
    if (a.threw) {
        same("thrown error id", a.id, b.id);
        same("thrown error path", a.path, b.path);
        same("thrown error message", a.message, b.message);
        return;
    }
    const ddb2os::bulk_result &x = a.r, &y = b.r;
    same("records", x.records.size(), y.records.size());
    for (std::size_t i = 0; i < x.records.size(); ++i) {
        const auto &p = x.records[i], &q = y.records[i];
        const std::string at = "Records[" + std::to_string(i) + "] ";
        same(at + "status", status_name(p.status), status_name(q.status));
        same(at + "sequence number", p.sequence_number.view(), q.sequence_number.view());
        same(at + "event id", p.event_id.view(), q.event_id.view());
        same(at + "index", p.index.view(), q.index.view());
        same(at + "_id", p.id.view(), q.id.view());
        same(at + "ttl_delete", p.ttl_delete, q.ttl_delete);
        same(at + "version", static_cast<std::uint64_t>(p.version), static_cast<std::uint64_t>(q.version));
    }
    same("errors", x.errors.size(), y.errors.size());
    for (std::size_t i = 0; i < x.errors.size(); ++i) {
        const auto &p = x.errors[i], &q = y.errors[i];
        const std::string at = "errors[" + std::to_string(i) + "] ";
        same(at + "record", p.record, q.record);
        same(at + "id", p.id(), q.id());
        same(at + "path", p.path, q.path);
        same(at + "message", p.message, q.message);
        same(at + "sequence number", p.sequence_number, q.sequence_number);
        same(at + "event id", p.event_id, q.event_id);
    }
    same("actions", x.actions, y.actions);
    same("superseded", x.superseded, y.superseded);
    same("skipped_ttl", x.skipped_ttl, y.skipped_ttl);
    same("ttl_deletes", x.ttl_deletes, y.ttl_deletes);
    same("bodies", x.bodies.size(), y.bodies.size());
    for (std::size_t i = 0; i < x.bodies.size(); ++i) {
        const auto &p = x.bodies[i], &q = y.bodies[i];
        const std::string at = "bodies[" + std::to_string(i) + "] ";
        same(at + "data", p.data, q.data);
        same(at + "actions", p.records.size(), q.records.size());
        for (std::size_t k = 0; k < p.records.size(); ++k) {
            same(at + "record of action " + std::to_string(k), p.records[k], q.records[k]);
            same(at + "offset of action " + std::to_string(k), p.offsets[k], q.offsets[k]);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const ddb2os::bulk_options o = fuzz::bulk_options_from(data[0]);
    const std::string_view event(reinterpret_cast<const char*>(data) + 1, size - 1);
    if (event.find('\0') != std::string_view::npos) return 0;  // nlohmann stops there (see the top)

    // Strict nlohmann (no exception: what it refuses is skipped), noting repeated member names by
    // the depth of their object: the event (or bare array) is at 0, a record at 2 (1 bare), its
    // dynamodb object at 3 (2 bare), Keys and NewImage at 4 (3 bare).
    struct open_object {
        int depth;
        std::set<std::string> names;
    };
    std::vector<open_object> open;
    int repeated_depth = -1;  // the deepest object with a repeated name
    const auto cb = [&](int depth, ojson::parse_event_t ev, ojson& v) {
        using E = ojson::parse_event_t;
        if (ev == E::object_start) open.push_back({depth, {}});
        else if (ev == E::object_end && !open.empty()) open.pop_back();
        else if (ev == E::key && !open.empty() && !open.back().names.insert(v.get<std::string>()).second)
            repeated_depth = std::max(repeated_depth, open.back().depth);
        return true;
    };
    const ojson j = ojson::parse(event.begin(), event.end(), cb, /*allow_exceptions=*/false);
    if (j.is_discarded()) return 0;
    if (repeated_depth >= (j.is_array() ? 3 : 4)) return 0;  // see the top

    const outcome raw = run([&] { return ddb2os::build_bulk(event, o); });
    // The size hint build_bulk(bytes) passes: capacities aside (the output must not depend on them).
    const outcome nl = run([&] { return ddb2os::build_bulk<nl_adapter>(&j, o, event.size()); });
    if (raw.threw && raw.id == "json.syntax") differ("the raw reader refused what nlohmann read", raw.message, "(parsed)");
    if (!raw.threw && !nl.threw && o.external_versions) {
        const ddb2os::raw_json_document doc(event);
        if (times_differ(doc.root(), &j)) return 0;  // see the top
    }
    compare(raw, nl);
    return 0;
}
