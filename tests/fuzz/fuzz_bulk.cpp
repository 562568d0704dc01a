// libFuzzer target: raw event bytes -> bulk bodies (bulk.hpp over the raw JSON reader), the path
// the CLI and the module's bytes input take. The first byte picks options; the rest is the event.
// Besides what the sanitizers catch, it checks what the result promises: every record accounted
// for once (an action, superseded, skipped, or an error naming it), every body NDJSON with one
// action line (and one document line for index) per record it lists, cut by the size limits.
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <ddb2os/bulk.hpp>

#include "bulk_options.hpp"

namespace {

[[noreturn]] void fail(const char* what, std::size_t n = 0) {
    std::fprintf(stderr, "fuzz_bulk: %s (%zu)\n", what, n);
    std::abort();
}
void check(bool ok, const char* what, std::size_t n = 0) {
    if (!ok) fail(what, n);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const ddb2os::bulk_options o = fuzz::bulk_options_from(data[0]);
    const std::string_view event(reinterpret_cast<const char*>(data) + 1, size - 1);
    ddb2os::bulk_result r;
    try {
        r = ddb2os::build_bulk(event, o);
    } catch (const ddb2os::error& e) {  // not JSON, or not an event: an error with an id
        check(std::string_view(e.what()).substr(0, 8) == "[ddb2os.", "error without an id");
        return 0;
    }

    std::size_t emitted = 0, superseded = 0, skipped = 0;
    for (const auto& rec : r.records) {
        emitted += rec.status == ddb2os::record_status::emitted;
        superseded += rec.status == ddb2os::record_status::superseded;
        skipped += rec.status == ddb2os::record_status::skipped_ttl;
    }
    check(emitted == r.actions, "actions differ from emitted records", r.actions);
    check(superseded == r.superseded, "superseded count", r.superseded);
    check(skipped == r.skipped_ttl, "skipped_ttl count", r.skipped_ttl);
    std::vector<bool> has_error(r.records.size());
    for (const auto& e : r.errors) {
        check(e.record < r.records.size(), "an error names no record", e.record);
        check(r.records[e.record].status == ddb2os::record_status::failed, "an error for a record not failed", e.record);
        check(!e.message.empty() && e.code != ddb2os::errc::ok, "an error without a message or id", e.record);
        has_error[e.record] = true;
    }
    for (std::size_t i = 0; i < r.records.size(); ++i)
        if (r.records[i].status == ddb2os::record_status::failed) check(has_error[i], "a failed record without an error", i);

    std::vector<int> seen(r.records.size());
    std::size_t actions = 0;
    // Actions follow the stream order, except an earlier change sent in the place of the later
    // change to the same document that could not be written (bulk.hpp): only uniqueness is checked.
    for (const auto& b : r.bodies) {
        check(!b.records.empty() && b.records.size() == b.offsets.size(), "a body's records and offsets", b.records.size());
        check(b.records.size() <= o.max_actions, "a body over max_actions", b.records.size());
        check(b.data.size() <= o.max_bytes || b.records.size() == 1, "a body over max_bytes", b.data.size());
        check(!b.data.empty() && b.data.back() == '\n', "a body not ending with a newline");
        check(b.offsets[0] == 0, "a body not starting with an action");
        for (std::size_t i = 0; i < b.records.size(); ++i) {
            const std::uint32_t rec = b.records[i];
            check(rec < r.records.size() && r.records[rec].status == ddb2os::record_status::emitted,
                  "a body lists a record not emitted", rec);
            ++seen[rec];
            ++actions;
            std::string_view a = b.action(i);
            std::vector<std::string_view> lines;
            while (!a.empty()) {
                const std::size_t nl = a.find('\n');
                check(nl != std::string_view::npos, "a line without its newline");
                lines.push_back(a.substr(0, nl));
                a.remove_prefix(nl + 1);
            }
            check(!lines.empty() && lines.size() <= 2, "an action of neither one nor two lines", lines.size());
            nlohmann::json head;
            try {
                head = nlohmann::json::parse(lines[0]);
            } catch (const nlohmann::json::exception&) {
                fail("an action line that is not JSON", rec);
            }
            check(head.is_object() && head.size() == 1, "an action line that is not one member", rec);
            const bool index = head.contains("index");
            check(index || head.contains("delete"), "an action neither index nor delete", rec);
            check(lines.size() == (index ? 2u : 1u), "a document line missing or extra", rec);
            const auto& meta = head.begin().value();
            check(meta.is_object() && meta.contains("_index") && meta.contains("_id") && meta["_id"].is_string(),
                  "an action without _index or _id", rec);
            check(meta["_id"].get<std::string>() == r.records[rec].id.view(), "an action's _id", rec);
            check((meta.contains("version") == o.external_versions), "version present unless asked", rec);
            if (index) {
                // Exact numbers may be longer than a double: parse as text is all nlohmann can do,
                // and it rejects nothing valid. Names may repeat (a repeated attribute: documented).
                check(nlohmann::json::accept(lines[1]), "a document line that is not JSON", rec);
                check(lines[1].front() == '{', "a document that is not an object", rec);
            }
        }
    }
    check(actions == r.actions, "bodies hold other than the actions", actions);
    for (std::size_t i = 0; i < seen.size(); ++i)
        check(seen[i] == (r.records[i].status == ddb2os::record_status::emitted ? 1 : 0), "a record sent twice or not", i);
    return 0;
}
