// detail/number.hpp: DynamoDB number text -> checked, JSON-grammar number text.
//
// DynamoDB numbers: up to 38 significant digits, magnitude 1E-130 .. 9.99..9E+125 (or zero).
// The input grammar is lenient (as DynamoDB's API accepts "+1", ".5", "5.", "007");
// the output is JSON's grammar, reached by the smallest rewrite, never by rounding.
#pragma once

#include <charconv>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

#include "../config.hpp"
#include "writer.hpp"

DDB2OS_BEGIN_NAMESPACE
namespace detail {

inline constexpr int number_max_digits = 38;
inline constexpr long number_min_exponent = -130;
inline constexpr long number_max_exponent = 125;

enum class number_status : unsigned char { ok, invalid, too_precise, too_large, too_small };

struct number_parts {
    bool negative = false;
    std::string_view int_digits;   // may be empty (".5")
    std::string_view frac_digits;  // may be empty
    std::string_view exponent;     // text after 'e'/'E', with its sign; empty when none
    bool json_grammar = false;     // text is already a JSON number: copy it as is
};

inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// Every number, by the general rules below.
inline number_status parse_number_general(std::string_view s, number_parts& out) noexcept {
    std::size_t i = 0;
    const std::size_t n = s.size();
    bool plus = false;
    if (i < n && (s[i] == '-' || s[i] == '+')) {
        out.negative = s[i] == '-';
        plus = s[i] == '+';
        ++i;
    }
    std::size_t b = i;
    while (i < n && is_digit(s[i])) ++i;
    out.int_digits = s.substr(b, i - b);
    bool point = false;
    if (i < n && s[i] == '.') {
        point = true;
        b = ++i;
        while (i < n && is_digit(s[i])) ++i;
        out.frac_digits = s.substr(b, i - b);
    }
    if (out.int_digits.empty() && out.frac_digits.empty()) return number_status::invalid;
    long exp = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        b = ++i;
        bool eneg = false;
        if (i < n && (s[i] == '-' || s[i] == '+')) eneg = s[i++] == '-';
        const std::size_t d = i;
        while (i < n && is_digit(s[i])) {
            if (exp < 100000000) exp = exp * 10 + (s[i] - '0');  // saturate: far outside the range
            ++i;
        }
        if (i == d) return number_status::invalid;
        out.exponent = s.substr(b, i - b);
        if (eneg) exp = -exp;
    }
    if (i != n) return number_status::invalid;

    out.json_grammar = !plus && !out.int_digits.empty() &&
                       !(out.int_digits.size() > 1 && out.int_digits[0] == '0') &&
                       !(point && out.frac_digits.empty());

    // Significant digits: from the first non-zero digit to the last non-zero digit.
    const std::string_view id = out.int_digits, fd = out.frac_digits;
    const std::size_t total = id.size() + fd.size();
    auto digit = [&](std::size_t k) { return k < id.size() ? id[k] : fd[k - id.size()]; };
    std::size_t first = 0;
    while (first < total && digit(first) == '0') ++first;
    if (first == total) return number_status::ok;  // zero, whatever the exponent
    std::size_t last = total - 1;
    while (digit(last) == '0') --last;
    if (last - first + 1 > static_cast<std::size_t>(number_max_digits)) return number_status::too_precise;
    // Decimal exponent of the first significant digit (scientific notation d.ddd x 10^adjusted).
    const long adjusted = static_cast<long>(id.size()) - 1 - static_cast<long>(first) + exp;
    if (adjusted > number_max_exponent) return number_status::too_large;
    if (adjusted < number_min_exponent) return number_status::too_small;
    return number_status::ok;
}

// The usual number first: JSON's grammar without an exponent ("-12.5", "0.25", "1700000000") in at
// most 38 characters. It has at most 38 digits and a magnitude between 1E-36 and 1E38, inside
// DynamoDB's range, so its grammar is all there is to check, in one pass (the general rules also
// find its significant digits and its exponent). Anything else takes the general rules, with the
// same result.
inline number_status parse_number(std::string_view s, number_parts& out) noexcept {
    const std::size_t n = s.size();
    if (n <= static_cast<std::size_t>(number_max_digits)) {
        const bool negative = n != 0 && s[0] == '-';
        std::size_t i = negative ? 1 : 0;
        const std::size_t int_begin = i;
        while (i < n && is_digit(s[i])) ++i;
        const std::size_t int_end = i;
        std::size_t frac_begin = i;
        bool point = false;
        if (i < n && s[i] == '.') {
            point = true;
            frac_begin = ++i;
            while (i < n && is_digit(s[i])) ++i;
        }
        const bool leading_zero = int_end - int_begin > 1 && s[int_begin] == '0';
        if (i == n && int_end > int_begin && !leading_zero && !(point && i == frac_begin)) {
            out.negative = negative;
            out.int_digits = s.substr(int_begin, int_end - int_begin);
            out.frac_digits = point ? s.substr(frac_begin, i - frac_begin) : std::string_view();
            out.exponent = std::string_view();
            out.json_grammar = true;
            return number_status::ok;
        }
    }
    return parse_number_general(s, out);
}

// Writes the JSON number with exactly the value of `parts` (the parts of an ok number).
template <class Out>
void write_exact_number(Out& out, std::string_view text, const number_parts& p) {
    if (p.json_grammar) {
        out.put(text);
        return;
    }
    if (p.negative) out.put('-');
    std::string_view id = p.int_digits;
    while (id.size() > 1 && id[0] == '0') id.remove_prefix(1);
    if (id.empty()) id = "0";
    out.put(id);
    if (!p.frac_digits.empty()) {
        out.put('.');
        out.put(p.frac_digits);
    }
    if (!p.exponent.empty()) {
        out.put('e');
        out.put(p.exponent);
    }
}

// The nearest double, shortest round-trip text: lossy by design (mode `double`).
template <class Out>
void write_double_number(Out& out, std::string_view text, const number_parts& p) {
    std::string exact;
    string_sink json{exact};
    write_exact_number(json, text, p);
    double d = 0;
    std::from_chars(exact.data(), exact.data() + exact.size(), d);  // in range by construction
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, d);
    // The shortest text of a double past a long's range can be an integer's digits
    // (12345678901234567168), which OpenSearch maps as a long and then refuses: such a value keeps
    // an exponent. (-2^63 is a long.)
    if (d >= 9223372036854775808.0 || d < -9223372036854775808.0) {
        const std::string_view t(buf, static_cast<std::size_t>(r.ptr - buf));
        if (t.find_first_of(".e") == std::string_view::npos)
            r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
    }
    out.put(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
}

}  // namespace detail
DDB2OS_END_NAMESPACE
