// detail/json_copy.hpp: writes any adapter value back out as compact JSON (for dead letters,
// which keep the raw record exactly as it arrived, whatever the host's representation).
#pragma once

#include <string>
#include <vector>

#include "../config.hpp"
#include "../unmarshal.hpp"
#include "../value_adapter.hpp"
#include "base64.hpp"
#include "number.hpp"
#include "writer.hpp"

DDB2OS_BEGIN_NAMESPACE
namespace detail {

// A string of a dead letter's copy, whole: what cannot be decoded becomes U+FFFD and the rest is
// kept. Such a string is often what the record was refused for; cut at the bad byte, or its escape
// shown as literal text, the copy would say something else than what arrived.
inline void write_copied_string(out_buffer& out, string_ref s, std::string& scratch) {
    (void)write_string(out, unescape_json_replacing(s.text, s.escaped, scratch));
}

template <class A>
void write_json_copy(out_buffer& out, typename A::value v, int depth = 0) {
    if (depth > 256) {  // dead letters hold records that may be absurdly deep: cut, never recurse on
        out.put(std::string_view("\"[ddb2os: nested deeper than 256 levels, not copied]\""));
        return;
    }
    std::string scratch;
    switch (A::kind(v)) {
        case value_kind::null: out.put(std::string_view("null")); return;
        case value_kind::boolean: out.put(A::boolean(v) ? std::string_view("true") : std::string_view("false")); return;
        case value_kind::number: {
            // A host's number may have text that JSON has no number for (Python's inf, NaN, an object
            // without text): kept as a string (or null for no text) so the copy stays one JSON document.
            const std::string_view t = A::number_text(v, scratch);
            number_parts parts;
            if (parse_number(t, parts) != number_status::invalid && parts.json_grammar) out.put(t);
            else if (t.empty() || t == "null") out.put(std::string_view("null"));  // nlohmann's NaN: "null"
            else write_string(out, t);
            return;
        }
        case value_kind::string:
            if constexpr (adapter_replaced_text<A>::value) (void)write_string(out, A::replaced_text(v, scratch));
            else write_copied_string(out, A::string(v), scratch);
            return;
        case value_kind::binary: {
            const std::string_view b = A::binary(v);
            std::string enc;
            base64_encode(enc, reinterpret_cast<const unsigned char*>(b.data()), b.size());
            write_string(out, enc);
            return;
        }
        case value_kind::array: {
            out.put('[');
            bool first = true;
            A::each_element(v, [&](typename A::value e) {
                if (!first) out.put(',');
                first = false;
                write_json_copy<A>(out, e, depth + 1);
                return true;
            });
            out.put(']');
            return;
        }
        case value_kind::object: {
            out.put('{');
            bool first = true;
            A::each_member(v, [&](string_ref k, typename A::value e) {
                if (!first) out.put(',');
                first = false;
                write_copied_string(out, k, scratch);
                out.put(':');
                write_json_copy<A>(out, e, depth + 1);
                return true;
            });
            out.put('}');
            return;
        }
    }
}

// A stream record as write_json_copy writes it, without the image attributes `include` and `exclude`
// leave out (attribute_left_out; the top level of dynamodb.NewImage and dynamodb.OldImage): what the
// documents leave out, a dead letter leaves out too. Keys are kept: they make the _id anyway, and a
// re-drive needs them.
template <class A>
void write_record_copy(out_buffer& out, typename A::value record, const std::vector<std::string>& include,
                       const std::vector<std::string>& exclude) {
    if ((include.empty() && exclude.empty()) || A::kind(record) != value_kind::object) {
        write_json_copy<A>(out, record);
        return;
    }
    std::string scratch;
    // level 0: the record; 1: its dynamodb object; 2: an image, whose excluded members are left out.
    const auto copy = [&](const auto& self, typename A::value obj, int level) -> void {
        out.put('{');
        bool first = true;
        A::each_member(obj, [&](string_ref k, typename A::value e) {
            const std::string name(k.escaped && unescape_json(k.text, scratch) ? std::string_view(scratch) : k.text);
            if (level == 2 && attribute_left_out(name, include, exclude)) return true;
            if (!first) out.put(',');
            first = false;
            write_copied_string(out, k, scratch);
            out.put(':');
            if (A::kind(e) == value_kind::object &&
                ((level == 0 && name == "dynamodb") || (level == 1 && (name == "NewImage" || name == "OldImage"))))
                self(self, e, level + 1);
            else
                write_json_copy<A>(out, e, level + 1);
            return true;
        });
        out.put('}');
    };
    copy(copy, record, 0);
}

}  // namespace detail
DDB2OS_END_NAMESPACE
