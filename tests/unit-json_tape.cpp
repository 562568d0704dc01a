// The raw JSON reader (detail/json_tape.hpp): strict RFC 8259, iterative, spans into the input.
#include <random>
#include <string>

#include "test_support.hpp"

using ddb2os::detail::json_tape;

namespace {
// nlohmann also refuses numbers beyond a double's range (its error 406); RFC 8259 does not.
struct overflow_probe : nlohmann::json_sax<nlohmann::json> {
    bool overflow = false;
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override { return true; }
    bool key(string_t&) override { return true; }
    bool end_object() override { return true; }
    bool start_array(std::size_t) override { return true; }
    bool end_array() override { return true; }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
        overflow = e.id == 406;
        return false;
    }
};
// 1: nlohmann accepts, 0: it refuses, -1: it stopped at a number overflow (no verdict).
int nlohmann_verdict(const std::string& s) {
    if (nlohmann::json::accept(s)) return 1;
    overflow_probe probe;
    nlohmann::json::sax_parse(s, &probe, nlohmann::json::input_format_t::json, false);
    return probe.overflow ? -1 : 0;
}

std::string syntax_error(std::string_view in) {
    json_tape t;
    try {
        t.parse(in);
    } catch (const ddb2os::error& e) {
        CHECK(e.id() == "json.syntax");
        return e.what();
    }
    return "no error";
}
}  // namespace

TEST_CASE("tape: structure, spans and sizes") {
    json_tape t;
    t.parse(R"( {"a": [1, "x\"y", true, null, {}], "b": -0.5e+3} )");
    // object, "a", array, 1, "x\"y", true, null, {}, "b", -0.5e+3
    REQUIRE(t.nodes.size() == 10);
    CHECK(t.nodes[0].kind == ddb2os::value_kind::object);
    CHECK(t.nodes[0].length == 2);
    CHECK(t.nodes[0].next == 10);
    CHECK(t.nodes[2].kind == ddb2os::value_kind::array);
    CHECK(t.nodes[2].length == 5);
    CHECK(t.nodes[2].next == 8);
    CHECK(t.input.substr(t.nodes[4].offset, t.nodes[4].length) == "x\\\"y");
    CHECK(t.nodes[4].flags == 1);
    CHECK(t.nodes[5].flags == 1);  // true
    CHECK(t.nodes[7].kind == ddb2os::value_kind::object);
    CHECK(t.nodes[7].next == 8);
    CHECK(t.input.substr(t.nodes[9].offset, t.nodes[9].length) == "-0.5e+3");
}

TEST_CASE("tape: exact syntax errors") {
    CHECK(syntax_error("") == "[ddb2os.json.syntax] byte 0: unexpected end of input, expected a JSON value");
    CHECK(syntax_error("{\"a\" 1}") == "[ddb2os.json.syntax] byte 5: expected ':' after an object key");
    CHECK(syntax_error("[1 2]") == "[ddb2os.json.syntax] byte 3: expected ',' or ']' after an array element");
    CHECK(syntax_error("{\"a\":1]") == "[ddb2os.json.syntax] byte 6: expected ',' or '}' after an object member");
    CHECK(syntax_error("{1:2}") == "[ddb2os.json.syntax] byte 1: expected a string key in an object");
    CHECK(syntax_error("[01]") == "[ddb2os.json.syntax] byte 2: expected ',' or ']' after an array element");
    CHECK(syntax_error("[1.]") == "[ddb2os.json.syntax] byte 3: expected a digit after '.' in a number");
    CHECK(syntax_error("[\"a\\x\"]") == "[ddb2os.json.syntax] byte 4: invalid escape sequence in a string");
    CHECK(syntax_error("[\"a\\u12G4\"]") == "[ddb2os.json.syntax] byte 7: expected 4 hex digits after \\u");
    CHECK(syntax_error("[\"a\nb\"]") == "[ddb2os.json.syntax] byte 3: control character in a string (it must be escaped)");
    CHECK(syntax_error("[\"abc") == "[ddb2os.json.syntax] byte 5: unexpected end of input, expected '\"' to close a string");
    CHECK(syntax_error("{} x") == "[ddb2os.json.syntax] byte 3: unexpected characters after the JSON value");
    CHECK(syntax_error("[tru]") == "[ddb2os.json.syntax] byte 1: expected a JSON value");
    CHECK(syntax_error("[-]") == "[ddb2os.json.syntax] byte 2: expected a digit in a number");
    CHECK(syntax_error("[1e]") == "[ddb2os.json.syntax] byte 3: expected a digit in a number's exponent");
}

TEST_CASE("tape: very deep nesting does not recurse") {
    const std::string deep = std::string(200000, '[') + std::string(200000, ']');
    json_tape t;
    t.parse(deep);
    CHECK(t.nodes.size() == 200000);
    CHECK(t.nodes[0].next == 200000);
    CHECK(syntax_error(std::string(100000, '[')) ==
          "[ddb2os.json.syntax] byte 100000: unexpected end of input, expected a JSON value");
}

TEST_CASE("tape: long strings cross the 16-byte fast path at every alignment") {
    for (std::size_t n = 0; n < 70; ++n) {
        for (char special : {'"', '\\', '\x01'}) {
            std::string s(n, 'a');
            const std::string doc = "[\"" + s + "\"]";
            json_tape t;
            t.parse(doc);
            CHECK(t.nodes[1].length == n);
            if (special == '"') continue;
            std::string bad = "[\"" + s + special + "zzzzzzzzzzzzzzzzzzz\"]";
            CHECK(syntax_error(bad).find("byte " + std::to_string(2 + n + (special == '\\' ? 1 : 0))) != std::string::npos);
        }
    }
}

TEST_CASE("tape: strings end where they end, across the reader's 64-byte windows") {
    // Random arrays of strings (plain, with escapes, with spaces between), so strings start and end
    // at every offset of a window, span several, and end the input: every span and escape flag
    // is checked against where the generator put it.
    std::mt19937 rng(2026);
    const std::string escapes[] = {"\\\"", "\\\\", "\\n", "\\u00e9", "\\/"};
    for (int doc_no = 0; doc_no < 3000; ++doc_no) {
        std::string doc(rng() % 70, ' ');
        doc += '[';
        struct span {
            std::size_t offset, length;
            bool escaped;
        };
        std::vector<span> want;
        const std::size_t count = 1 + rng() % 12;
        for (std::size_t i = 0; i < count; ++i) {
            if (i != 0) doc += std::string(rng() % 3, ' ') + ',' + std::string(rng() % 2, '\n');
            doc += '"';
            const std::size_t start = doc.size();
            const std::size_t length = rng() % 4 == 0 ? rng() % 200 : rng() % 20;
            bool escaped = false;
            while (doc.size() - start < length) {
                if (rng() % 40 == 0) {
                    doc += escapes[rng() % 5];
                    escaped = true;
                } else {
                    doc += static_cast<char>(rng() % 3 == 0 ? "\xc3\xa9"[rng() % 2] : 'a' + static_cast<char>(rng() % 26));
                }
            }
            want.push_back({start, doc.size() - start, escaped});
            doc += '"';
        }
        doc += ']';
        json_tape t;
        t.parse(doc);
        REQUIRE(t.nodes.size() == count + 1);
        CHECK(t.nodes[0].length == count);
        for (std::size_t i = 0; i < count; ++i) {
            const auto& n = t.nodes[i + 1];
            CHECK_MESSAGE(n.offset == want[i].offset, doc);
            CHECK_MESSAGE(n.length == want[i].length, doc);
            CHECK_MESSAGE((n.flags == 1) == want[i].escaped, doc);
        }
        // Cut inside the last string (before any escape in it): the reader runs off the input's end.
        const span& last = want.back();
        if (!last.escaped) {
            const std::string cut = doc.substr(0, last.offset + rng() % (last.length + 1));
            CHECK(syntax_error(cut) == "[ddb2os.json.syntax] byte " + std::to_string(cut.size()) +
                                           ": unexpected end of input, expected '\"' to close a string");
        }
    }
}

namespace {
// A random DynamoDB-style attribute value, compact, with odd ones among them (two type keys, a
// number or an object under S, a two-byte key, escapes, spaces before the closing brace).
void attribute_value(std::mt19937& rng, std::string& out, int depth) {
    const char* const texts[] = {"", "a", "x y", "caf\xc3\xa9", "q\\\"uote", "back\\\\slash", "\\u00e9t\\u00e9", "12.5"};
    const auto text = [&] { return std::string(texts[rng() % 8]); };
    switch (rng() % (depth > 3 ? 9 : 12)) {
        case 0: out += "{\"S\":\"" + text() + "\"}"; break;
        case 1: out += "{\"N\":\"" + std::to_string(rng() % 100000) + "\"}"; break;
        case 2: out += "{\"B\":\"AAEC\"}"; break;
        case 3: out += rng() % 2 ? "{\"BOOL\":true}" : "{\"NULL\":true}"; break;
        case 4: out += "{\"SS\":[\"a\",\"b\"]}"; break;
        case 5: out += "{\"S\":\"" + text() + "\",\"N\":\"1\"}"; break;
        case 6: out += rng() % 2 ? "{\"S\":1}" : "{\"S\":\"" + text() + "\" }"; break;
        case 7: out += rng() % 2 ? "{\"\xc3\xa9\":\"y\"}" : "{\"X\":null}"; break;
        case 8: out += "{\"S\":[]}"; break;
        case 9:
        case 10: {
            out += rng() % 2 ? "{\"M\":{" : "{\"L\":[";
            const bool map = out.back() == '{';
            const std::size_t n = rng() % 4;
            for (std::size_t i = 0; i < n; ++i) {
                if (i != 0) out += ',';
                if (map) out += "\"k" + std::to_string(i) + "\":";
                attribute_value(rng, out, depth + 1);
            }
            out += map ? "}}" : "]}";
            break;
        }
        default: out += "{\"S\":{\"S\":\"" + text() + "\"}}"; break;
    }
}
}  // namespace

TEST_CASE("tape: attribute values read as a whole give the nodes they give read token by token") {
    // The reader takes a compact {"S":... (any one-byte key) in one step. The same document with a
    // space after every '{' reads token by token: node for node, both tapes must agree (kind,
    // count, extent, flags and text), and the two must fail alike.
    std::mt19937 rng(99);
    int read = 0;
    for (int i = 0; i < 4000; ++i) {
        std::string doc = "{\"Item\":";
        attribute_value(rng, doc, 0);
        doc += "}";
        if (i % 7 == 0) doc.pop_back();  // cut: both must fail at the end of the input
        std::string spaced;
        for (char c : doc) {
            spaced += c;
            if (c == '{') spaced += ' ';
        }
        json_tape a, b;
        std::string ea, eb;
        try { a.parse(doc); } catch (const ddb2os::error& e) { ea = e.what(); }
        try { b.parse(spaced); } catch (const ddb2os::error& e) { eb = e.what(); }
        REQUIRE_MESSAGE(ea.empty() == eb.empty(), doc);
        if (!ea.empty()) {
            CHECK_MESSAGE(ea.find("unexpected end of input") != std::string::npos, doc);
            CHECK_MESSAGE(eb.find("unexpected end of input") != std::string::npos, doc);
            continue;
        }
        ++read;
        REQUIRE_MESSAGE(a.nodes.size() == b.nodes.size(), doc);
        for (std::size_t k = 0; k < a.nodes.size(); ++k) {
            const auto &x = a.nodes[k], &y = b.nodes[k];
            CHECK_MESSAGE(x.kind == y.kind, doc);
            CHECK_MESSAGE(x.next == y.next, doc);
            CHECK_MESSAGE(x.flags == y.flags, doc);
            if (x.kind == ddb2os::value_kind::object || x.kind == ddb2os::value_kind::array)
                CHECK_MESSAGE(x.length == y.length, doc);
            else
                CHECK_MESSAGE(a.input.substr(x.offset, x.length) == b.input.substr(y.offset, y.length), doc);
        }
    }
    CHECK(read > 3000);
}

TEST_CASE("tape: agrees with nlohmann::json::accept on random inputs") {
    // Mutations of valid JSON: every verdict must match nlohmann's strict parser.
    const std::string seeds[] = {
        R"({"a":[1,-2.5e10,"x\u00e9\n",true,false,null],"b":{"c":{}}})",
        R"([0,-0,0.1,1E+2,1e-2,"\"\\\/\b\f\n\r\t",{"":[]}])",
        R"({"Records":[{"dynamodb":{"Keys":{"id":{"S":"1"}}}}]})",
    };
    const std::string alphabet = "{}[]\":,\\ 0123456789-+.eEtrufalsn\x01\x7f\xc3\xa9u";
    std::mt19937 rng(12345);
    int accepted = 0, rejected = 0;
    for (int i = 0; i < 20000; ++i) {
        std::string s = seeds[static_cast<std::size_t>(i) % 3];
        const int edits = 1 + static_cast<int>(rng() % 3);
        for (int e = 0; e < edits; ++e) {
            const std::size_t at = rng() % (s.size() + 1);
            switch (rng() % 3) {
                case 0: if (at < s.size()) s.erase(at, 1); break;
                case 1: s.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
                default: if (at < s.size()) s[at] = alphabet[rng() % alphabet.size()]; break;
            }
        }
        json_tape t;
        bool ok = true;
        try {
            t.parse(s);
        } catch (const ddb2os::error&) {
            ok = false;
        }
        // nlohmann also rejects invalid UTF-8, which the tape leaves to each record's check.
        const bool utf8_ok = ddb2os::detail::is_valid_utf8(s.data(), s.size());
        const int verdict = utf8_ok ? nlohmann_verdict(s) : -1;
        if (verdict >= 0) CHECK_MESSAGE(ok == (verdict == 1), s);
        (ok ? accepted : rejected)++;
    }
    CHECK(accepted > 1000);
    CHECK(rejected > 1000);
}

TEST_CASE("tape: copied and moved tapes keep their nodes; a moved-from tape parses again") {
    json_tape a;
    a.parse(R"({"k":[1,2,3]})");
    json_tape copy(a);
    REQUIRE(copy.nodes.size() == 6);
    CHECK(copy.nodes[2].kind == ddb2os::value_kind::array);
    CHECK(copy.nodes[2].length == 3);
    json_tape assigned;
    assigned.parse("[true]");
    assigned = a;
    CHECK(assigned.nodes.size() == 6);
    json_tape moved(std::move(a));
    CHECK(moved.nodes.size() == 6);
    CHECK(moved.nodes[5].offset == copy.nodes[5].offset);
    CHECK(a.nodes.size() == 0);  // NOLINT(bugprone-use-after-move): moved-from is valid and empty
    a.parse("[1]");
    REQUIRE(a.nodes.size() == 2);
    CHECK(a.nodes[1].kind == ddb2os::value_kind::number);
    json_tape target;
    target.parse("{}");
    target = std::move(moved);
    CHECK(target.nodes.size() == 6);
    CHECK(target.nodes[0].next == 6);
    const ddb2os::raw_json_document d(R"({"a":1})");
    const ddb2os::raw_json_document e(d);  // copyable, as before node_buffer
    CHECK(e.root().tape->nodes.size() == 3);
}

TEST_CASE("tape: a one-byte key that is a backslash starts an escape, not a key") {
    // The {"X": fast path must not take \ for a key: {"\":1} holds one unterminated string.
    CHECK(syntax_error("{\"\\\":1}   ") == "[ddb2os.json.syntax] byte 10: unexpected end of input, expected '\"' to close a string");
    CHECK(syntax_error("[{\"\\\":1}   ]") != "no error");
    json_tape t;
    t.parse("{\"\\\\\":1}   ");  // the key \, escaped: valid
}

// ---------------------------------------------------------------- from a fourth mutation run

TEST_CASE("tape: an escape cut off by the input's end is an error at that end, never read past it") {
    // Views that end inside an escape, of a buffer whose next bytes would complete it.
    const std::string buffer = "[\"a\\\"\\u1234\"]";
    CHECK(syntax_error(std::string_view(buffer).substr(0, 4)) ==
          "[ddb2os.json.syntax] byte 4: unexpected end of input, expected an escape sequence");
    CHECK(syntax_error("[\"a\\") == "[ddb2os.json.syntax] byte 4: unexpected end of input, expected an escape sequence");
    CHECK(syntax_error(std::string_view(buffer).substr(0, 10)) ==
          "[ddb2os.json.syntax] byte 10: unexpected end of input, expected 4 hex digits after \\u");
}

TEST_CASE("tape: every whitespace RFC 8259 names is skipped, CRLF line ends too") {
    json_tape t;
    t.parse("\r\n{\r\n\t\"a\" :\r\n [1 ,\r2]\n}\r\n");
    REQUIRE(t.nodes.size() == 5);  // object, "a", array, 1, 2
    CHECK(t.nodes[0].length == 1);
    CHECK(t.nodes[2].length == 2);
}
