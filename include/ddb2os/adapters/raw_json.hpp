// adapters/raw_json.hpp: the value adapter over raw JSON bytes (the fast path).
// A raw_json::document owns the tape; values are (tape, node index) pairs.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "../config.hpp"
#include "../detail/json_tape.hpp"
#include "../value_adapter.hpp"

DDB2OS_BEGIN_NAMESPACE

struct raw_json_adapter {
    struct value {
        const detail::json_tape* tape;
        std::uint32_t index;
        const detail::tape_node& node() const noexcept { return tape->nodes[index]; }
    };

    static value_kind kind(value v) noexcept { return v.node().kind; }
    // The tape's spans lie within its input by construction: no substr() and its bounds check (which
    // kept this out of line in bulk_builder::plan, a twentieth of a REMOVE batch's time).
    DDB2OS_ALWAYS_INLINE static string_ref string(value v) noexcept {
        const auto& n = v.node();
        return {std::string_view(v.tape->input.data() + n.offset, n.length), (n.flags & 1) != 0};
    }
    DDB2OS_ALWAYS_INLINE static std::string_view number_text(value v, std::string&) noexcept {
        const auto& n = v.node();
        return std::string_view(v.tape->input.data() + n.offset, n.length);
    }
    static bool boolean(value v) noexcept { return (v.node().flags & 1) != 0; }
    static std::string_view binary(value) noexcept { return {}; }
    static std::size_t size(value v) noexcept { return v.node().length; }

    template <class F>
    static bool each_member(value v, F&& f) {
        const auto& nodes = v.tape->nodes;
        std::uint32_t k = v.index + 1;
        for (std::uint32_t m = 0, n = nodes[v.index].length; m < n; ++m) {
            if (!f(string(value{v.tape, k}), value{v.tape, k + 1})) return false;
            k = nodes[k + 1].next;
        }
        return true;
    }

    // Through each_member: reading nodes index+1 and index+2 directly measured 6-10% slower for
    // the whole transform (g++ 12 laid the emitter out differently), for the same work.
    static void only_member(value v, string_ref& key, value& val) noexcept {
        each_member(v, [&](string_ref k, value p) {
            key = k;
            val = p;
            return false;
        });
    }

    template <class F>
    static bool each_element(value v, F&& f) {
        const auto& nodes = v.tape->nodes;
        std::uint32_t e = v.index + 1;
        for (std::uint32_t m = 0, n = nodes[v.index].length; m < n; ++m) {
            if (!f(value{v.tape, e})) return false;
            e = nodes[e].next;
        }
        return true;
    }

    static bool find(value obj, std::string_view key, value& out) {
        bool found = false;
        std::string scratch;
        each_member(obj, [&](string_ref k, value val) {
            if (k.escaped ? (detail::unescape_json(k.text, scratch) && scratch == key) : k.text == key) {
                out = val;
                found = true;  // keep going: with duplicate keys the last one wins, as in nlohmann
            }
            return true;
        });
        return found;
    }
};

// Parsed raw JSON: keeps the tape alive for the values that point into it. A UTF-8 byte order
// mark before the text, which some editors write, is skipped (RFC 8259 lets a parser ignore it);
// error offsets then count from after it.
class raw_json_document {
public:
    explicit raw_json_document(std::string_view json) {
        if (json.substr(0, 3) == "\xEF\xBB\xBF") json.remove_prefix(3);
        tape_.parse(json);
    }
    raw_json_adapter::value root() const noexcept { return {&tape_, 0}; }
    std::string_view input() const noexcept { return tape_.input; }

private:
    detail::json_tape tape_;
};

DDB2OS_END_NAMESPACE
