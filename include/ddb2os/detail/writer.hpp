// detail/writer.hpp: the output buffer and the JSON string writer.
//
// Every string ddb2os writes goes through write_string(): valid UTF-8 in, one JSON string out,
// with `"` `\` and every control character escaped, and U+2028/U+2029 escaped too, so that a
// document is always exactly one line whatever bytes a value holds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "../config.hpp"
#include "utf8.hpp"

DDB2OS_BEGIN_NAMESPACE
namespace detail {

// A growable byte buffer that writes through a raw pointer (std::string::append per token is
// measurably slower on the hot path).
class out_buffer {
public:
    out_buffer() = default;
    explicit out_buffer(std::size_t capacity) { buf_.resize(capacity); }

    char* reserve(std::size_t n) {
        if (size_ + n > buf_.size()) grow(size_ + n);
        return &buf_[0] + size_;
    }
    void commit(std::size_t n) noexcept { size_ += n; }
    void put(char c) { *reserve(1) = c; ++size_; }
    void put(std::string_view s) {
        if (s.empty()) return;
        std::memcpy(reserve(s.size()), s.data(), s.size());
        size_ += s.size();
    }
    std::size_t size() const noexcept { return size_; }
    void truncate(std::size_t n) noexcept { size_ = n; }
    std::string_view view() const noexcept { return {buf_.data(), size_}; }
    std::string_view view(std::size_t from) const noexcept { return {buf_.data() + from, size_ - from}; }
    std::string take() {
        buf_.resize(size_);
        // Far larger than what it holds (a buffer sized for a whole input that got one small body): given
        // back, since a result holds every body. Never for a body near its buffer's size (no copy then).
        if (buf_.capacity() > 8 * size_ + 65536) buf_.shrink_to_fit();
        size_ = 0;
        return std::move(buf_);
    }

private:
    void grow(std::size_t need) {
        std::size_t cap = buf_.size() < 256 ? 256 : buf_.size() * 2;
        while (cap < need) cap *= 2;
        buf_.resize(cap);
    }
    std::string buf_;
    std::size_t size_ = 0;
};

// out_buffer's put() interface over a std::string, for messages and other small texts.
struct string_sink {
    std::string& s;
    void put(char c) { s.push_back(c); }
    void put(std::string_view v) { s.append(v.data(), v.size()); }
};

// Length of the leading run that can be copied without escaping or checking: printable ASCII
// other than '"' and '\\'. For text known to be valid UTF-8 (KnownValid), every byte from 0x80 on
// too, except E2: the lead byte of U+2028 and U+2029, which JSON writers escape.
template <bool KnownValid = false>
inline std::size_t plain_prefix(const char* p, std::size_t n) noexcept {
    std::size_t i = 0;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i slash = _mm_set1_epi8('\\');
    const __m128i ctrl = _mm_set1_epi8(0x1F);
    for (; i + 16 <= n; i += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
        __m128i bad = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash));
        bad = _mm_or_si128(bad, _mm_cmpeq_epi8(_mm_max_epu8(v, ctrl), ctrl));  // v <= 0x1F
        const int high = KnownValid ? _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(static_cast<char>(0xE2))))
                                    : _mm_movemask_epi8(v);  // non-ASCII
        const int mask = _mm_movemask_epi8(bad) | high;
        if (mask != 0) return i + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
    }
#endif
    for (; i < n; ++i) {
        const auto c = static_cast<unsigned char>(p[i]);
        if (c < 0x20 || c == '"' || c == '\\' || (KnownValid ? c == 0xE2 : c >= 0x80)) return i;
    }
    return n;
}

template <class Out>
inline void write_escaped_code_point(Out& out, std::uint32_t cp) {
    static constexpr char hex[] = "0123456789abcdef";
    switch (cp) {
        case '"': out.put(std::string_view("\\\"", 2)); return;
        case '\\': out.put(std::string_view("\\\\", 2)); return;
        case '\n': out.put(std::string_view("\\n", 2)); return;
        case '\r': out.put(std::string_view("\\r", 2)); return;
        case '\t': out.put(std::string_view("\\t", 2)); return;
        case '\b': out.put(std::string_view("\\b", 2)); return;
        case '\f': out.put(std::string_view("\\f", 2)); return;
        default: break;
    }
    if (cp < 0x20 || cp == 0x2028 || cp == 0x2029) {
        char e[6] = {'\\', 'u', hex[(cp >> 12) & 15], hex[(cp >> 8) & 15], hex[(cp >> 4) & 15], hex[cp & 15]};
        out.put(std::string_view(e, 6));
        return;
    }
    std::string s;
    append_utf8(s, cp);
    out.put(s);
}

// Writes the body of a JSON string (no quotes) from UTF-8 text.
// Returns the offset of the first invalid UTF-8 byte, or npos.
template <class Out>
std::size_t write_string_body(Out& out, std::string_view s) {
    const char* p = s.data();
    std::size_t n = s.size(), i = 0;
    while (i < n) {
        const std::size_t run = plain_prefix(p + i, n - i);
        out.put(std::string_view(p + i, run));
        i += run;
        if (i >= n) break;
        const auto c = static_cast<unsigned char>(p[i]);
        if (c < 0x80) {
            write_escaped_code_point(out, c);
            ++i;
            continue;
        }
        const auto* u = reinterpret_cast<const unsigned char*>(p + i);
        const std::size_t len = utf8_sequence_length(u, reinterpret_cast<const unsigned char*>(p + n));
        if (len == 0) return i;
        if (len == 3 && is_line_separator(u)) {
            write_escaped_code_point(out, u[2] == 0xA8 ? 0x2028u : 0x2029u);
        } else {
            out.put(std::string_view(p + i, len));
        }
        i += len;
    }
    return std::string::npos;
}

// write_string for text known to be valid UTF-8 (decoded from JSON, or written by ddb2os): the
// same output without checking every sequence again (a decoded string with an escape went
// sequence by sequence through write_string_body).
template <class Out>
void write_valid_string(Out& out, std::string_view s) {
    const char* p = s.data();
    const std::size_t n = s.size();
    out.put('"');
    std::size_t i = 0;
    while (i < n) {
        const std::size_t run = plain_prefix<true>(p + i, n - i);
        out.put(std::string_view(p + i, run));
        i += run;
        if (i >= n) break;
        const auto c = static_cast<unsigned char>(p[i]);
        if (c != 0xE2) {
            write_escaped_code_point(out, c);
            ++i;
            continue;
        }
        // E2 leads three bytes (the text is valid): U+2028 and U+2029 are escaped, the rest copied.
        const auto* u = reinterpret_cast<const unsigned char*>(p + i);
        if (is_line_separator(u)) write_escaped_code_point(out, u[2] == 0xA8 ? 0x2028u : 0x2029u);
        else out.put(std::string_view(p + i, 3));
        i += 3;
    }
    out.put('"');
}

template <class Out>
std::size_t write_string(Out& out, std::string_view s) {
    out.put('"');
    const std::size_t bad = write_string_body(out, s);
    out.put('"');
    return bad;
}

// Bytes of a word that need a look: '"', '\\', control characters (escaped) and >= 0x80 (checked
// as UTF-8). Exact as "any or none"; a byte's position is not (borrows can mark bytes above a hit).
inline std::uint64_t swar_attention(std::uint64_t w) noexcept {
    constexpr std::uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const std::uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    return (((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w) | w) & highs;
}

// write_string into an out_buffer. Almost every string ddb2os writes needs no escaping: find
// that out in one scan and copy the string once (short ones in two overlapping words, no
// memcpy call); anything else takes the general path above, from the start.
inline std::size_t write_string(out_buffer& out, std::string_view s) {
    const char* p = s.data();
    const std::size_t n = s.size();
    char* d = out.reserve(n + 2);
    d[0] = '"';
    if (n <= 16) {
        if (n >= 8) {
            std::uint64_t a, b;
            std::memcpy(&a, p, 8);
            std::memcpy(&b, p + n - 8, 8);
            if (swar_attention(a) == 0 && swar_attention(b) == 0) {
                std::memcpy(d + 1, &a, 8);
                std::memcpy(d + 1 + n - 8, &b, 8);
                d[n + 1] = '"';
                out.commit(n + 2);
                return std::string::npos;
            }
        } else if (n >= 4) {
            std::uint32_t a, b;
            std::memcpy(&a, p, 4);
            std::memcpy(&b, p + n - 4, 4);
            constexpr std::uint64_t spaces = 0x2020202000000000ull;  // the high half: plain bytes
            if (swar_attention(a | spaces) == 0 && swar_attention(b | spaces) == 0) {
                std::memcpy(d + 1, &a, 4);
                std::memcpy(d + 1 + n - 4, &b, 4);
                d[n + 1] = '"';
                out.commit(n + 2);
                return std::string::npos;
            }
        } else if (plain_prefix(p, n) == n) {
            for (std::size_t i = 0; i < n; ++i) d[1 + i] = p[i];
            d[n + 1] = '"';
            out.commit(n + 2);
            return std::string::npos;
        }
    } else {
        // Escapes stop the scan; the first non-ASCII byte is remembered (everything before it is
        // ASCII, so the UTF-8 check can start there).
        std::size_t i = 0, high = n;
        bool escape = false;
#if defined(__SSE2__)
        const __m128i quote = _mm_set1_epi8('"');
        const __m128i slash = _mm_set1_epi8('\\');
        const __m128i ctrl = _mm_set1_epi8(0x1F);
        for (;; i += 16) {
            if (i + 16 > n) i = n - 16;  // the last block overlaps the one before it
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
            __m128i e = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash));
            e = _mm_or_si128(e, _mm_cmpeq_epi8(_mm_max_epu8(v, ctrl), ctrl));
            if (_mm_movemask_epi8(e) != 0) { escape = true; break; }
            if (high == n && _mm_movemask_epi8(v) != 0) high = i;
            if (i + 16 == n) break;
        }
#else
        for (; i < n; ++i) {
            const auto c = static_cast<unsigned char>(p[i]);
            if (c < 0x20 || c == '"' || c == '\\') { escape = true; break; }
            if (c >= 0x80 && high == n) high = i;
        }
#endif
        bool separator = false;
        if (!escape && (high == n || (utf8_invalid_at(p + high, n - high, &separator) == std::string::npos && !separator))) {
            std::memcpy(d + 1, p, n);
            d[n + 1] = '"';
            out.commit(n + 2);
            return std::string::npos;
        }
    }
    out.commit(1);
    const std::size_t bad = write_string_body(out, s);
    out.put('"');
    return bad;
}

inline int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

inline std::uint32_t read_hex4(const char* p) noexcept {
    return static_cast<std::uint32_t>((hex_value(p[0]) << 12) | (hex_value(p[1]) << 8) |
                                      (hex_value(p[2]) << 4) | hex_value(p[3]));
}

// The character a one-character JSON escape (\n, \", ...) stands for; 0 for 'u' and what is no escape.
constexpr char simple_escape(char e) noexcept {
    switch (e) {
        case 'n': return '\n';
        case 'r': return '\r';
        case 't': return '\t';
        case 'b': return '\b';
        case 'f': return '\f';
        case '"': case '\\': case '/': return e;
        default: return 0;
    }
}

// Decodes the content of a JSON string literal whose escapes the parser already checked for
// syntax. Fails (returns false) on an unpaired UTF-16 surrogate or invalid UTF-8.
inline bool unescape_json(std::string_view raw, std::string& out) {
    out.clear();
    out.reserve(raw.size());
    std::size_t i = 0;
    while (i < raw.size()) {
        // Copy the run up to the next escape at once (text with an escape is mostly plain).
        const void* next = std::memchr(raw.data() + i, '\\', raw.size() - i);
        const std::size_t j = next == nullptr ? raw.size() : static_cast<std::size_t>(static_cast<const char*>(next) - raw.data());
        out.append(raw.data() + i, j - i);
        i = j;
        if (i >= raw.size()) break;
        const char e = raw[i + 1];
        i += 2;
        if (e != 'u') {  // the parser let through no other escape
            out.push_back(simple_escape(e));
            continue;
        }
        std::uint32_t cp = read_hex4(raw.data() + i);
        i += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return false;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (i + 6 > raw.size() || raw[i] != '\\' || raw[i + 1] != 'u') return false;
            const std::uint32_t lo = read_hex4(raw.data() + i + 2);
            if (lo < 0xDC00 || lo > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
        }
        append_utf8(out, cp);
    }
    return is_valid_utf8(out.data(), out.size());
}

// The text of a string for a report or a dead letter's copy, whatever it holds: `raw` decoded when
// `escaped` (JSON string content), as valid UTF-8, with each byte that is not UTF-8 and each
// unpaired surrogate escape (\ud800) as U+FFFD and the rest kept. An escape the parser would have
// refused (cut short, not hex) stays as its text: `raw` need not have been checked. A view of `raw`
// when it needs nothing, else of `out`.
inline std::string_view unescape_json_replacing(std::string_view raw, bool escaped, std::string& out) {
    if (!escaped && is_valid_utf8(raw.data(), raw.size())) return raw;
    out.clear();
    if (!escaped) {
        append_sanitized_utf8(out, raw);
        return out;
    }
    std::string bytes;
    append_sanitized_utf8(bytes, raw);  // escapes are ASCII: untouched
    const auto hex4 = [&](std::size_t at) {  // the code unit of the \uXXXX at `at`, or -1
        if (at + 6 > bytes.size() || bytes[at] != '\\' || bytes[at + 1] != 'u') return -1L;
        for (std::size_t k = at + 2; k < at + 6; ++k)
            if (hex_value(bytes[k]) < 0) return -1L;
        return static_cast<long>(read_hex4(bytes.data() + at + 2));
    };
    for (std::size_t i = 0; i < bytes.size();) {
        const char c = bytes[i];
        if (c != '\\' || i + 1 == bytes.size()) {
            out += c;
            ++i;
            continue;
        }
        const char e = bytes[i + 1];
        if (e != 'u') {
            if (const char s = simple_escape(e)) out += s;
            else out.append({c, e});  // no escape: kept as its text
            i += 2;
            continue;
        }
        const long unit = hex4(i);
        if (unit < 0) {
            out += c;
            ++i;
            continue;
        }
        auto cp = static_cast<std::uint32_t>(unit);
        i += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            const long lo = hex4(i);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (static_cast<std::uint32_t>(lo) - 0xDC00);
                i += 6;
            } else {
                cp = 0xFFFD;
            }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            cp = 0xFFFD;
        }
        append_utf8(out, cp);
    }
    return out;
}

}  // namespace detail
DDB2OS_END_NAMESPACE
