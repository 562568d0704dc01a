// detail/utf8.hpp: UTF-8 validation and encoding (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "../config.hpp"

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

// Offset of the first invalid byte, or npos when all of [p, p+n) is valid UTF-8. With
// `separator`, also sets it when the text holds U+2028 or U+2029 (which JSON writers escape).
inline std::size_t utf8_invalid_at(const char* data, std::size_t n, bool* separator = nullptr) noexcept {
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
        if (separator != nullptr && len == 3 && q[0] == 0xE2 && q[1] == 0x80 && (q[2] & 0xFE) == 0xA8) *separator = true;
        q += len;
    }
    return std::string::npos;
}

inline bool is_valid_utf8(const char* data, std::size_t n) noexcept {
    return utf8_invalid_at(data, n) == std::string::npos;
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
