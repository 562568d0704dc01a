// normalize.hpp: options for how values are shaped for OpenSearch, and the mixed-type list rule.
//
// OpenSearch rejects an array whose values (after it flattens nested arrays) are of more than
// one kind among number, string, boolean and object. Policy `stringify` (the default, as the
// founding Lambdas did) turns every scalar of such an array into a string and every object into
// its compact JSON text, keeps nulls and the structure of nested arrays. Policy `keep` leaves
// arrays alone (and OpenSearch will refuse the mixed ones).
#pragma once

#include <string_view>

#include "config.hpp"

DDB2OS_BEGIN_NAMESPACE

// exact: a JSON number with exactly the same decimal value (default).
// string: the number's text as a JSON string (for values beyond long/double).
// double: the nearest IEEE double (lossy).
enum class number_mode : unsigned char { exact, string, double_ };
enum class list_policy : unsigned char { stringify, keep };

constexpr std::string_view to_string(number_mode m) noexcept {
    return m == number_mode::exact ? "exact" : m == number_mode::string ? "string" : "double";
}
constexpr std::string_view to_string(list_policy p) noexcept {
    return p == list_policy::stringify ? "stringify" : "keep";
}
inline bool parse_number_mode(std::string_view s, number_mode& out) noexcept {
    if (s == "exact") out = number_mode::exact;
    else if (s == "string") out = number_mode::string;
    else if (s == "double") out = number_mode::double_;
    else return false;
    return true;
}
inline bool parse_list_policy(std::string_view s, list_policy& out) noexcept {
    if (s == "stringify") out = list_policy::stringify;
    else if (s == "keep") out = list_policy::keep;
    else return false;
    return true;
}

namespace detail {
// The kinds OpenSearch distinguishes inside one array.
enum kind_bit : unsigned { kind_number = 1, kind_string = 2, kind_boolean = 4, kind_object = 8 };
inline bool is_mixed(unsigned kinds) noexcept { return (kinds & (kinds - 1)) != 0; }
}  // namespace detail

DDB2OS_END_NAMESPACE
