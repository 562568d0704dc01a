// The JSON string writer: out_buffer's one-scan writer against the general one, byte for byte.
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "ddb2os/detail/writer.hpp"

using ddb2os::detail::out_buffer;
using ddb2os::detail::string_sink;

namespace {

// The general writer (every Out but out_buffer takes it).
std::pair<std::string, std::size_t> general(const std::string& s) {
    std::string text;
    string_sink sink{text};
    sink.put('"');
    const std::size_t bad = ddb2os::detail::write_string_body(sink, s);
    sink.put('"');
    return {text, bad};
}

// A byte-by-byte writer from the rules alone (written for the tests, independent of the library's
// runs): the general writer must match it.
std::pair<std::string, std::size_t> reference(const std::string& s) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "\"";
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    for (std::size_t i = 0; i < s.size();) {
        const unsigned char c = p[i];
        if (c >= 0x80) {
            const std::size_t len = ddb2os::detail::utf8_sequence_length(p + i, p + s.size());
            if (len == 0) return {out, i};
            if (len == 3 && c == 0xE2 && p[i + 1] == 0x80 && (p[i + 2] == 0xA8 || p[i + 2] == 0xA9))
                out += p[i + 2] == 0xA8 ? "\\u2028" : "\\u2029";
            else
                out.append(s, i, len);
            i += len;
            continue;
        }
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20) out += std::string("\\u00") + hex[c >> 4] + hex[c & 15];
                else out += static_cast<char>(c);
        }
        ++i;
    }
    return {out + "\"", std::string::npos};
}

std::pair<std::string, std::size_t> fast(const std::string& s, const std::string& before = "") {
    out_buffer out;
    out.put(before);
    const std::size_t bad = ddb2os::detail::write_string(out, s);
    return {std::string(out.view(before.size())), bad};
}

}  // namespace

TEST_CASE("writer: out_buffer's write_string equals the general writer on every length and byte kind") {
    // Pieces: plain ASCII, bytes to escape, valid 2-4 byte sequences, U+2028/U+2029, invalid bytes.
    const std::string pieces[] = {"a", "Z", " ", "~", "\"", "\\", "\n", std::string(1, '\0'), "\x1f", "\x7f",
                                  "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x9a\x80", "\xe2\x80\xa8", "\xe2\x80\xa9",
                                  "\xe2\x80\xaa", "\xff", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82", "\x80"};
    std::mt19937 rng(20261203);
    int copied = 0, escaped = 0, invalid = 0;  // which path each input needed
    for (int len = 0; len <= 70; ++len) {
        for (int trial = 0; trial < 60; ++trial) {
            // Mostly plain text with a few others, so every path (clean, late escape, late non-ASCII) is hit.
            std::string s;
            const int odd = static_cast<int>(rng() % 4);  // 0: all plain
            while (static_cast<int>(s.size()) < len) {
                const bool plain = odd == 0 || rng() % 10 != 0;
                s += plain ? std::string(1, static_cast<char>('a' + rng() % 26)) : pieces[rng() % std::size(pieces)];
            }
            const auto want = general(s);
            const auto ref = reference(s);
            CHECK(want.second == ref.second);
            if (ref.second == std::string::npos) CHECK(want.first == ref.first);
            const auto got = fast(s, std::string(rng() % 3, 'x'));
            CHECK_MESSAGE(got.second == want.second, "input length " << s.size());
            if (want.second == std::string::npos) CHECK(got.first == want.first);
            if (want.second != std::string::npos) ++invalid;
            else if (want.first == "\"" + s + "\"") ++copied;
            else ++escaped;
        }
    }
    // The inputs reach all three: copied as they are, escaped, refused as invalid UTF-8.
    CHECK(copied > 500);
    CHECK(escaped > 500);
    CHECK(invalid > 500);
}

TEST_CASE("writer: one piece at every position of short and long strings") {
    const std::string pieces[] = {"\"", "\\", "\t", "\xc3\xa9", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xff", "\xe2\x82"};
    for (const std::string& piece : pieces)
        for (std::size_t len : {1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40}) {
            for (std::size_t at = 0; at < len; ++at) {
                std::string s(len, 'q');
                s.insert(at, piece);
                const auto want = general(s);
                const auto got = fast(s);
                const auto ref = reference(s);
                CHECK(want.second == ref.second);
                if (ref.second == std::string::npos) CHECK(want.first == ref.first);
                CHECK(got.second == want.second);
                CHECK(got.first == want.first);
            }
        }
    CHECK(fast("").first == "\"\"");
    CHECK(fast("a\xe2\x80\xa8" "b").first == "\"a\\u2028b\"");
    CHECK(fast("0123456789abcdef\xff").second == 16);
    CHECK(fast("\xed\xa0\x80xxxxxxxxxxxxxxxx").second == 0);
}

namespace {
// utf8_invalid_at against its byte-by-byte loop: the same verdict, offset and separator flag.
// Where SSSE3 is there (chosen at run time), also the 16-byte check alone, at every length.
int utf8_mismatches(const std::string& s) {
    using namespace ddb2os::detail;
    bool sep_a = false, sep_b = false;
    const std::size_t a = utf8_invalid_at(s.data(), s.size(), &sep_a);
    const std::size_t b = utf8_invalid_at_bytewise(s.data(), s.size(), &sep_b);
    int bad = (a != b) + (a == std::string::npos && sep_a != sep_b);
#if DDB2OS_UTF8_SSSE3
    if (cpu_has_ssse3())
        bad += utf8_valid_ssse3(reinterpret_cast<const unsigned char*>(s.data()), s.size()) != (b == std::string::npos);
#endif
    return bad;
}
}  // namespace

TEST_CASE("utf8: the 16-byte check agrees with the byte-by-byte one") {
    int mismatches = 0, invalid = 0, valid = 0;
    const auto check = [&](const std::string& s) {
        const int m = utf8_mismatches(s);
        if (m != 0 && mismatches < 5) FAIL_CHECK("disagree on " << doctest::toString(s.size()) << " bytes");
        mismatches += m;
        (ddb2os::detail::utf8_invalid_at_bytewise(s.data(), s.size()) == std::string::npos ? valid : invalid)++;
    };
    const std::string ascii(40, 'a');
    // Every pair of bytes with a high first byte, and every lead of three and four bytes with
    // the boundary continuation values, at offsets across the 16-byte blocks and cut at the end.
    const unsigned char edges[] = {0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xA8, 0xA9, 0xBF, 0xC0, 0xFF};
    for (unsigned lead = 0x80; lead <= 0xFF; ++lead) {
        for (unsigned second = 0; second <= 0xFF; ++second) {
            const std::string seq{static_cast<char>(lead), static_cast<char>(second)};
            for (std::size_t at : {0u, 13u, 14u, 15u, 16u, 31u, 38u}) check(ascii.substr(0, at) + seq + ascii.substr(at));
            check(ascii + seq);
            if (lead < 0xE0) continue;
            for (unsigned char third : edges) {
                const std::string three = seq + static_cast<char>(third);
                for (std::size_t at : {0u, 14u, 15u, 29u}) check(ascii.substr(0, at) + three + ascii.substr(at));
                check(ascii + three);
                if (lead < 0xF0) continue;
                for (unsigned char fourth : edges) {
                    check(ascii.substr(0, 15) + three + static_cast<char>(fourth) + ascii);
                    check(ascii + three + static_cast<char>(fourth));
                }
            }
        }
    }
    // Random text of valid characters (separators among them), then mutated: any length 0-120.
    const char* const chars[] = {"a", "z", " ", "\x7f", "\xc3\xa9", "\xdf\xbf", "\xe0\xa0\x80", "\xe2\x80\xa8",
                                 "\xe2\x80\xa9", "\xe2\x80\x94", "\xed\x9f\xbf", "\xef\xbf\xbd", "\xf0\x90\x80\x80",
                                 "\xf0\x9f\x9a\x80", "\xf4\x8f\xbf\xbf"};
    std::mt19937 rng(8);
    for (int i = 0; i < 60000; ++i) {
        std::string s;
        const std::size_t len = rng() % 121;
        while (s.size() < len) s += chars[rng() % 15];
        for (int m = static_cast<int>(rng() % 3); m > 0 && !s.empty(); --m) {
            const std::size_t at = rng() % s.size();
            switch (rng() % 3) {
                case 0: s[at] = static_cast<char>(rng() % 256); break;
                case 1: s.erase(at, 1); break;
                default: s.resize(at); break;
            }
        }
        check(s);
    }
    CHECK(mismatches == 0);
    CHECK(valid > 50000);
    CHECK(invalid > 50000);
}

TEST_CASE("writer: write_valid_string writes what write_string writes, for valid text") {
    // Pieces that need escaping or a look (quotes, backslashes, control characters, U+2028/9 and
    // other E2-led characters), between runs of ASCII and multi-byte text, across 16-byte blocks.
    const char* const pieces[] = {"\"", "\\", "\n", "\x01", "\x1f", "\x7f", "\xe2\x80\xa8", "\xe2\x80\xa9",
                                  "\xe2\x80\x94", "\xe2\x82\xac", "\xc3\xa9", "\xf0\x9f\x9a\x80", "a", "bcdefgh",
                                  "\xe4\xb8\xad\xe6\x96\x87", " "};
    std::mt19937 rng(31);
    int differ = 0;
    for (int i = 0; i < 30000; ++i) {
        std::string s;
        const std::size_t len = rng() % 90;
        while (s.size() < len) s += pieces[rng() % 16];
        std::string a, b;
        string_sink sa{a}, sb{b};
        REQUIRE(ddb2os::detail::write_string(sa, s) == std::string::npos);
        ddb2os::detail::write_valid_string(sb, s);
        out_buffer ob;
        ddb2os::detail::write_valid_string(ob, s);
        differ += (a != b) + (a != ob.view());
    }
    CHECK(differ == 0);
}

TEST_CASE("unescape_json_replacing: valid UTF-8 out of anything, U+FFFD for what cannot be decoded") {
    using ddb2os::detail::unescape_json_replacing;
    const std::string fffd = "\xEF\xBF\xBD";
    const auto dec = [](std::string_view raw, bool escaped = true) {
        std::string out = "stale";
        return std::string(unescape_json_replacing(raw, escaped, out));
    };
    CHECK(dec(R"(a\"b\\c\/d\n\t\u00e9\ud83d\ude00)") == "a\"b\\c/d\n\t\xC3\xA9\xF0\x9F\x98\x80");
    CHECK(dec(R"(\ud800)") == fffd);
    CHECK(dec(R"(\udc00x)") == fffd + "x");
    CHECK(dec(R"(\ud800\ud800\udc00)") == fffd + "\xF0\x90\x80\x80");
    CHECK(dec("a\xff" "b\xC3") == "a" + fffd + "b" + fffd);
    // Escapes the parser would refuse stay as their text; nothing is read past the end.
    CHECK(dec(R"(\u12)") == R"(\u12)");
    CHECK(dec(R"(\uzzzz)") == R"(\uzzzz)");
    CHECK(dec(R"(\q)") == R"(\q)");
    CHECK(dec("ab\\") == "ab\\");
    CHECK(dec(R"(\ud800\u12)") == fffd + R"(\u12)");
    // Not escaped: only the bytes.
    CHECK(dec(R"(\ud800)", false) == R"(\ud800)");
    CHECK(dec("x\xfe", false) == "x" + fffd);
    CHECK(dec("plain", false) == "plain");
}
