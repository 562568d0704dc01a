// detail/utf8.hpp: UTF-8 validation and encoding (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "../config.hpp"

// The 16-byte UTF-8 check needs SSSE3's pshufb, chosen at run time (g++ and clang on x86-64).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(DDB2OS_NO_RUNTIME_SIMD)
#define DDB2OS_UTF8_SSSE3 1
#include <tmmintrin.h>
#else
#define DDB2OS_UTF8_SSSE3 0
#endif

DDB2OS_BEGIN_NAMESPACE
namespace detail {

// Length of the valid UTF-8 sequence starting at p (p < end, *p >= 0x80), or 0 if invalid.
inline std::size_t utf8_sequence_length(const unsigned char* p, const unsigned char* end) noexcept {
    const unsigned char c = p[0];
    const std::size_t avail = static_cast<std::size_t>(end - p);
    auto cont = [](unsigned char b) { return (b & 0xC0) == 0x80; };
    if (c >= 0xC2 && c <= 0xDF) return (avail >= 2 && cont(p[1])) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3 || !cont(p[1]) || !cont(p[2])) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0;  // overlong
        if (c == 0xED && p[1] > 0x9F) return 0;  // UTF-16 surrogate
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4 || !cont(p[1]) || !cont(p[2]) || !cont(p[3])) return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0;  // overlong
        if (c == 0xF4 && p[1] > 0x8F) return 0;  // above U+10FFFF
        return 4;
    }
    return 0;
}

// U+2028 or U+2029 (E2 80 A8 / E2 80 A9) at p, which JSON writers escape; p has two bytes after it.
inline bool is_line_separator(const unsigned char* p) noexcept {
    return p[0] == 0xE2 && p[1] == 0x80 && (p[2] & 0xFE) == 0xA8;
}

#if DDB2OS_UTF8_SSSE3
// The 16-byte UTF-8 check (utf8_valid_ssse3 below): its error bits, by the paper's names
// (overlong_4 and too_large_1000 share a bit, as there: no pair of bytes can be both).
namespace utf8_bits {
constexpr char too_short = 1 << 0, too_long = 1 << 1, overlong_3 = 1 << 2, too_large = 1 << 3, surrogate = 1 << 4,
               overlong_2 = 1 << 5, too_large_1000 = 1 << 6, overlong_4 = 1 << 6, two_conts = static_cast<char>(1 << 7),
               carry = too_short | too_long | two_conts;
}  // namespace utf8_bits

// One 16-byte block: its errors into `error`; `prev` is the block before (zeros at the start).
__attribute__((target("ssse3"), always_inline)) inline void utf8_block_ssse3(__m128i in, __m128i& prev,
                                                                               __m128i& error) noexcept {
    using namespace utf8_bits;
    const __m128i byte_1_high = _mm_setr_epi8(
        too_long, too_long, too_long, too_long, too_long, too_long, too_long, too_long,  // 0___ ASCII
        two_conts, two_conts, two_conts, two_conts,                                      // 10__ continuation
        too_short | overlong_2,                                                          // 1100
        too_short,                                                                       // 1101
        too_short | overlong_3 | surrogate,                                              // 1110
        too_short | too_large | too_large_1000 | overlong_4);                            // 1111
    const __m128i byte_1_low = _mm_setr_epi8(
        carry | overlong_3 | overlong_2 | overlong_4,  // ____0000
        carry | overlong_2,                            // ____0001
        carry, carry,
        carry | too_large,                             // ____0100
        carry | too_large | too_large_1000,            // ____0101
        carry | too_large | too_large_1000, carry | too_large | too_large_1000,
        carry | too_large | too_large_1000, carry | too_large | too_large_1000,
        carry | too_large | too_large_1000, carry | too_large | too_large_1000,
        carry | too_large | too_large_1000,
        carry | too_large | too_large_1000 | surrogate,  // ____1101
        carry | too_large | too_large_1000, carry | too_large | too_large_1000);
    const __m128i byte_2_high = _mm_setr_epi8(
        too_short, too_short, too_short, too_short, too_short, too_short, too_short, too_short,
        too_long | overlong_2 | two_conts | overlong_3 | too_large_1000 | overlong_4,  // 1000
        too_long | overlong_2 | two_conts | overlong_3 | too_large,                   // 1001
        too_long | overlong_2 | two_conts | surrogate | too_large,                    // 1010
        too_long | overlong_2 | two_conts | surrogate | too_large,                    // 1011
        too_short, too_short, too_short, too_short);
    const __m128i low4 = _mm_set1_epi8(0x0F);
    // Bytes 1, 2 and 3 before each byte of `in` (the first ones from the block before).
    const __m128i prev1 = _mm_alignr_epi8(in, prev, 15), prev2 = _mm_alignr_epi8(in, prev, 14),
                  prev3 = _mm_alignr_epi8(in, prev, 13);
    const __m128i special =
        _mm_and_si128(_mm_and_si128(_mm_shuffle_epi8(byte_1_high, _mm_and_si128(_mm_srli_epi16(prev1, 4), low4)),
                                    _mm_shuffle_epi8(byte_1_low, _mm_and_si128(prev1, low4))),
                      _mm_shuffle_epi8(byte_2_high, _mm_and_si128(_mm_srli_epi16(in, 4), low4)));
    // 0x80 where a byte is two after a 3- or 4-byte lead, or three after a 4-byte lead.
    const __m128i third = _mm_subs_epu8(prev2, _mm_set1_epi8(static_cast<char>(0xE0 - 0x80)));
    const __m128i fourth = _mm_subs_epu8(prev3, _mm_set1_epi8(static_cast<char>(0xF0 - 0x80)));
    const __m128i must_be_continuation =
        _mm_and_si128(_mm_or_si128(third, fourth), _mm_set1_epi8(static_cast<char>(0x80)));
    error = _mm_or_si128(error, _mm_xor_si128(must_be_continuation, special));
    prev = in;
}

// Whether [p, p+n) is valid UTF-8, 16 bytes at a time: the lookup-table method of Keiser and Lemire
// ("Validating UTF-8 in less than one instruction per byte", 2021). Each byte and the one before
// it index three 16-entry tables (the high and low half of the earlier byte, the high half of
// this one) whose entries are bit sets of the errors that pair could be; a pair is wrong when all
// three agree on one. A byte two or three after a 3- or 4-byte lead must be a continuation, which
// the tables cannot see: checked apart. SSSE3 (pshufb) is chosen at run time.
__attribute__((target("ssse3"))) inline bool utf8_valid_ssse3(const unsigned char* p, std::size_t n) noexcept {
    __m128i prev = _mm_setzero_si128(), error = _mm_setzero_si128();
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m128i in = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
        // An ASCII block after an ASCII block adds no error (the paper's fast path).
        if (_mm_movemask_epi8(_mm_or_si128(in, prev)) == 0) continue;
        utf8_block_ssse3(in, prev, error);
    }
    // The last 0-15 bytes, then zeros: at least one zero follows the text, so a sequence cut short
    // at its end is an error like any other.
    alignas(16) unsigned char tail[16] = {};
    std::memcpy(tail, p + i, n - i);
    utf8_block_ssse3(_mm_load_si128(reinterpret_cast<const __m128i*>(tail)), prev, error);
    return _mm_movemask_epi8(_mm_cmpeq_epi8(error, _mm_setzero_si128())) == 0xFFFF;
}

inline bool cpu_has_ssse3() noexcept {
    static const bool has = __builtin_cpu_supports("ssse3");
    return has;
}
#endif

// utf8_invalid_at one byte (or, over ASCII, one word) at a time.
inline std::size_t utf8_invalid_at_bytewise(const char* data, std::size_t n, bool* separator = nullptr) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(data);
    const auto* end = p + n;
    const auto* q = p;
    while (q < end) {
        // 8 ASCII bytes at a time: the common case.
        if (end - q >= 8) {
            std::uint64_t w;
            std::memcpy(&w, q, 8);
            if ((w & 0x8080808080808080ull) == 0) { q += 8; continue; }
        }
        if (*q < 0x80) { ++q; continue; }
        const std::size_t len = utf8_sequence_length(q, end);
        if (len == 0) return static_cast<std::size_t>(q - p);
        if (separator != nullptr && len == 3 && is_line_separator(q)) *separator = true;
        q += len;
    }
    return std::string::npos;
}

// Offset of the first invalid byte, or npos when all of [p, p+n) is valid UTF-8. With
// `separator`, also sets it when the text holds U+2028 or U+2029 (which JSON writers escape).
inline std::size_t utf8_invalid_at(const char* data, std::size_t n, bool* separator = nullptr) noexcept {
#if DDB2OS_UTF8_SSSE3
    // Long text (where most text that is not ASCII is) is checked 16 bytes at a time; invalid
    // text is read again byte by byte, for where it goes wrong.
    if (n >= 32 && cpu_has_ssse3() && utf8_valid_ssse3(reinterpret_cast<const unsigned char*>(data), n)) {
        if (separator != nullptr) {
            // The text is valid: two bytes follow every E2.
            const char* e = data;
            const char* const end = data + n;
            while ((e = static_cast<const char*>(std::memchr(e, 0xE2, static_cast<std::size_t>(end - e)))) != nullptr) {
                if (is_line_separator(reinterpret_cast<const unsigned char*>(e))) {
                    *separator = true;
                    break;
                }
                ++e;
            }
        }
        return std::string::npos;
    }
#endif
    return utf8_invalid_at_bytewise(data, n, separator);
}

inline bool is_valid_utf8(const char* data, std::size_t n) noexcept {
    return utf8_invalid_at(data, n) == std::string::npos;
}

// `text` appended as valid UTF-8: each invalid byte as U+FFFD, and at most `max` bytes of it,
// cut before a character, never inside one (an excerpt of a server's answer for a message).
inline void append_sanitized_utf8(std::string& out, std::string_view text, std::size_t max = std::string::npos) {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const auto* end = p + (text.size() < max ? text.size() : max);
    const auto* stop = reinterpret_cast<const unsigned char*>(text.data()) + text.size();
    while (p < end) {
        const std::size_t len = *p < 0x80 ? 1 : utf8_sequence_length(p, stop);
        if (len == 0) {
            out += "\xEF\xBF\xBD";
            ++p;
            continue;
        }
        if (len > static_cast<std::size_t>(end - p)) break;  // a character the limit would cut
        out.append(reinterpret_cast<const char*>(p), len);
        p += len;
    }
}

inline void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

}  // namespace detail
DDB2OS_END_NAMESPACE
