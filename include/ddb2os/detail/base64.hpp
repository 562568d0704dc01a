// detail/base64.hpp: strict RFC 4648 base64 (standard alphabet, '=' padding, canonical
// trailing bits), as DynamoDB writes B and BS values in stream events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "../config.hpp"

DDB2OS_BEGIN_NAMESPACE
namespace detail {

struct base64_table {
    signed char value[256];
    constexpr base64_table() : value() {
        for (int i = 0; i < 256; ++i) value[i] = -1;
        const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (int i = 0; i < 64; ++i) value[static_cast<unsigned char>(a[i])] = static_cast<signed char>(i);
    }
};
inline constexpr base64_table base64_decode_table{};
inline constexpr char base64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Empty when valid; otherwise the reason, for an error message.
inline std::string_view base64_problem(std::string_view s) noexcept {
    if (s.size() % 4 != 0) return "length is not a multiple of 4";
    std::size_t pad = 0;
    if (!s.empty() && s.back() == '=') pad = (s.size() >= 2 && s[s.size() - 2] == '=') ? 2 : 1;
    const std::size_t body = s.size() - pad;
    for (std::size_t i = 0; i < body; ++i)
        if (base64_decode_table.value[static_cast<unsigned char>(s[i])] < 0)
            return s[i] == '=' ? "padding '=' before the end" : "character outside the base64 alphabet";
    if (pad > 0) {
        // Canonical form: the bits below the last full byte are zero.
        const int last = base64_decode_table.value[static_cast<unsigned char>(s[body - 1])];
        if ((pad == 1 && (last & 0x03) != 0) || (pad == 2 && (last & 0x0F) != 0))
            return "non-zero bits after the last byte";
    }
    return {};
}

inline void base64_encode(std::string& out, const unsigned char* p, std::size_t n) {
    const std::size_t at = out.size();
    out.resize(at + (n + 2) / 3 * 4);
    char* o = &out[at];
    std::size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        const std::uint32_t v = (std::uint32_t(p[i]) << 16) | (std::uint32_t(p[i + 1]) << 8) | p[i + 2];
        *o++ = base64_alphabet[v >> 18];
        *o++ = base64_alphabet[(v >> 12) & 63];
        *o++ = base64_alphabet[(v >> 6) & 63];
        *o++ = base64_alphabet[v & 63];
    }
    if (i < n) {
        std::uint32_t v = std::uint32_t(p[i]) << 16;
        if (i + 1 < n) v |= std::uint32_t(p[i + 1]) << 8;
        *o++ = base64_alphabet[v >> 18];
        *o++ = base64_alphabet[(v >> 12) & 63];
        *o++ = (i + 1 < n) ? base64_alphabet[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
}

// Decodes a string that base64_problem() accepted.
inline std::string base64_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size() / 4 * 3);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : s) {
        if (c == '=') break;
        acc = (acc << 6) | static_cast<std::uint32_t>(base64_decode_table.value[static_cast<unsigned char>(c)]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFF));
        }
    }
    return out;
}

}  // namespace detail
DDB2OS_END_NAMESPACE
