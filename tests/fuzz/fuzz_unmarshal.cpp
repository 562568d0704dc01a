// libFuzzer target: an item image (DynamoDB JSON) as raw bytes -> its document (unmarshal.hpp),
// through the raw JSON reader and, when nlohmann reads the bytes too, through nlohmann: the two
// must agree (the same document, or errors with the same id). The first byte picks options.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <set>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <ddb2os/adapters/nlohmann.hpp>
#include <ddb2os/adapters/raw_json.hpp>
#include <ddb2os/unmarshal.hpp>

namespace {

[[noreturn]] void fail(const char* what, const std::string& a = {}, const std::string& b = {}) {
    std::fprintf(stderr, "fuzz_unmarshal: %s\n  raw:      %s\n  nlohmann: %s\n", what, a.c_str(), b.c_str());
    std::abort();
}

struct outcome {
    bool ok = false;
    std::string text;  // the document, or the error's id
};

template <class A, class V>
outcome run(V root, const ddb2os::unmarshal_options& o) {
    outcome r;
    try {
        r.text = ddb2os::to_json<A>(root, o);
        r.ok = true;
    } catch (const ddb2os::error& e) {
        r.text = e.id();
    }
    return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    ddb2os::unmarshal_options o;
    const unsigned char b = data[0];
    o.numbers = (b & 3) == 0 ? ddb2os::number_mode::exact : (b & 3) == 1 ? ddb2os::number_mode::string : ddb2os::number_mode::double_;
    o.lists = (b & 4) ? ddb2os::list_policy::keep : ddb2os::list_policy::stringify;
    const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

    outcome raw;
    try {
        const ddb2os::raw_json_document doc(text);
        raw = run<ddb2os::raw_json_adapter>(doc.root(), o);
    } catch (const ddb2os::error& e) {
        raw.text = e.id();  // not JSON (json.*), or nested too deep
    }
    if (raw.ok && !nlohmann::json::accept(raw.text)) fail("a document that is not JSON", raw.text);

    // nlohmann keeps one member of a repeated name (the raw reader writes an attribute twice and
    // calls a repeated type key attribute.multiple_types, as documented) and reads numbers as
    // doubles or integers, so inputs with either are not compared. It refuses what is not UTF-8.
    nlohmann::ordered_json j;
    bool repeated = false, numbers = false;
    std::vector<std::set<std::string>> names;
    const auto cb = [&](int, nlohmann::ordered_json::parse_event_t ev, nlohmann::ordered_json& v) {
        using E = nlohmann::ordered_json::parse_event_t;
        if (ev == E::object_start) names.emplace_back();
        else if (ev == E::object_end && !names.empty()) names.pop_back();
        else if (ev == E::key && !names.empty() && !names.back().insert(v.get<std::string>()).second) repeated = true;
        else if (ev == E::value && v.is_number()) numbers = true;
        return true;
    };
    try {
        j = nlohmann::ordered_json::parse(text, cb);
    } catch (const nlohmann::json::exception&) {
        return 0;
    }
    // nlohmann also ends its input at a NUL byte, where the raw reader sees bytes after the value.
    if (numbers || repeated || text.find('\0') != std::string_view::npos) return 0;
    if (raw.text.rfind("json.", 0) == 0) fail("nlohmann reads what the raw reader refused", raw.text);
    const outcome nl = run<ddb2os::nlohmann_ordered_adapter>(&j, o);
    if (raw.ok != nl.ok || (raw.ok && raw.text != nl.text)) fail("the two readers disagree", raw.text, nl.text);
    return 0;
}
