// value_adapter.hpp: how the components read a JSON-like input.
//
// Every component is a template over an Adapter: a struct of static functions over a cheap
// value handle. ddb2os ships adapters for raw JSON bytes (adapters/raw_json.hpp: the fast
// path) and nlohmann::json (adapters/nlohmann.hpp); the Python module adds one for Python
// objects. An adapter provides:
//
//   using value = <handle>;
//   static value_kind kind(value);
//   static string_ref string(value);                     // kind == string
//   static std::string_view number_text(value, std::string& scratch);  // kind == number
//   static bool boolean(value);                          // kind == boolean
//   static std::string_view binary(value);               // kind == binary (raw bytes)
//   static std::size_t size(value);                      // array or object
//   template <class F> static bool each_member(value, F&&);   // F(string_ref key, value) -> bool
//   static void only_member(value object, string_ref& key, value& v);  // size == 1: its member
//   template <class F> static bool each_element(value, F&&);  // F(value) -> bool
//   static bool find(value object, std::string_view key, value& out);
//
// each_* stop early when F returns false, and then return false. Optionally,
//
//   static constexpr bool valid_utf8 = true;  // string()'s unescaped text is always valid UTF-8
//
// spares the components checking it again (a Python str is encoded by CPython, which checks), and
//
//   class name_memo;  // per call: which name each key was
//   template <std::size_t N, class F>
//   static void each_named_member(value, const std::string_view (&names)[N], name_memo&, F&&);  // F(slot, value)
//
// lets bulk_builder find a record's fields by what it remembers of the records before (the Python
// adapter: by key object); without them, each member's text is compared with each name. And
//
//   static std::string foreign_name(value);  // "", or the whole phrase, article included
//
// names in errors a value the adapter reads as a kind it is not: the Python adapter reads any object
// that is not an exact int, float or Decimal (a set, a date, an int subclass) as a number, and says
// "a Python set object" where others say "a number". And
//
//   static std::string_view replaced_text(value, std::string& scratch);  // valid UTF-8, U+FFFD where not
//
// gives a dead letter's copy the whole text of a string string() cannot give (the Python adapter's
// str holding a lone surrogate); without it, string()'s text is decoded with U+FFFD for what cannot be.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "config.hpp"

DDB2OS_BEGIN_NAMESPACE

enum class value_kind : unsigned char { null, boolean, number, string, array, object, binary };

constexpr std::string_view kind_name(value_kind k) noexcept {
    switch (k) {
        case value_kind::null: return "null";
        case value_kind::boolean: return "boolean";
        case value_kind::number: return "number";
        case value_kind::string: return "string";
        case value_kind::array: return "array";
        case value_kind::object: return "object";
        case value_kind::binary: return "binary";
    }
    return "unknown";
}

// A string as the input holds it. escaped == false: `text` is the UTF-8 text itself (not yet
// validated). escaped == true: `text` is the inside of a JSON string literal that contains
// backslash escapes, to be decoded (detail::unescape_json) before use.
struct string_ref {
    std::string_view text;
    bool escaped = false;
};

namespace detail {
// A::name_memo (adapters/python.hpp: names found by key identity), or none.
struct no_name_memo {};
template <class A, class = void>
struct adapter_name_memo {
    using type = no_name_memo;
};
template <class A>
struct adapter_name_memo<A, std::void_t<typename A::name_memo>> {
    using type = typename A::name_memo;
};

// A::valid_utf8, or false for an adapter without it.
template <class A, class = void>
struct adapter_valid_utf8 : std::false_type {};
template <class A>
struct adapter_valid_utf8<A, std::enable_if_t<A::valid_utf8>> : std::true_type {};

template <class A, class = void>
struct adapter_foreign_name : std::false_type {};
template <class A>
struct adapter_foreign_name<A, std::void_t<decltype(A::foreign_name(std::declval<typename A::value&>()))>> : std::true_type {};

template <class A, class = void>
struct adapter_replaced_text : std::false_type {};
template <class A>
struct adapter_replaced_text<
    A, std::void_t<decltype(A::replaced_text(std::declval<typename A::value&>(), std::declval<std::string&>()))>>
    : std::true_type {};

inline std::string a_kind(value_kind k) {
    return (k == value_kind::array || k == value_kind::object ? "an " : "a ") + std::string(kind_name(k));
}

// "a string", "an array", ... for a value in an error message; the adapter's own words for a value
// no JSON holds (foreign_name), so a Python set is not called "a number".
template <class A>
std::string a_kind_of(typename A::value v) {
    if constexpr (adapter_foreign_name<A>::value) {
        std::string own = A::foreign_name(v);
        if (!own.empty()) return own;
    }
    return a_kind(A::kind(v));
}
}  // namespace detail

DDB2OS_END_NAMESPACE
