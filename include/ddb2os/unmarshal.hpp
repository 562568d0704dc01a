// unmarshal.hpp: DynamoDB JSON (typed attribute values) -> the JSON document OpenSearch indexes.
//
//   S -> string (valid UTF-8)      N -> number (see number_mode)     B -> base64 string (checked)
//   BOOL -> boolean                NULL -> null ("NULL": true)        M -> object (order kept)
//   L -> array                     SS / NS / BS -> arrays, in the order given
//
// Written straight into the output buffer: no DOM of the output is built. Every failure names
// the path inside the input (`tags.L[3].N`) and has a stable id (error.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "detail/base64.hpp"
#include "detail/number.hpp"
#include "detail/writer.hpp"
#include "error.hpp"
#include "normalize.hpp"
#include "value_adapter.hpp"

DDB2OS_BEGIN_NAMESPACE

struct unmarshal_options {
    number_mode numbers = number_mode::exact;
    list_policy lists = list_policy::stringify;
    // Top-level attributes named like OpenSearch metadata fields (`_id`, `_source`, ...) are
    // refused by OpenSearch; they get one more leading underscore (see rename_metadata_field).
    bool rename_metadata_fields = true;
    // Top-level attribute names left out of an image's document (a field that must not be
    // searchable, or that OpenSearch cannot map), by exact name. Their values are not read at all.
    std::vector<std::string> exclude{};
    // When not empty, the only top-level attributes an image's document keeps (the others are not
    // read either). `exclude` still applies.
    std::vector<std::string> include{};
};

namespace detail {
// Whether a top-level attribute is left out of documents by those two lists.
inline bool attribute_left_out(std::string_view name, const std::vector<std::string>& include,
                               const std::vector<std::string>& exclude) noexcept {
    const auto in = [name](const std::vector<std::string>& names) {
        for (const std::string& n : names)
            if (n == name) return true;
        return false;
    };
    return (!include.empty() && !in(include)) || in(exclude);
}
}  // namespace detail

// A failure inside one value: which rule, where, and the exact text.
struct path_error {
    errc code = errc::ok;
    std::string path;
    std::string message;
    explicit operator bool() const noexcept { return code != errc::ok; }
    std::string what() const {
        return "[ddb2os." + std::string(error_id(code)) + "] " + (path.empty() ? "" : path + ": ") + message;
    }
};

// DynamoDB's type keys.
enum class ddb_type : unsigned char { S, N, B, BOOL, NULL_, M, L, SS, NS, BS, unknown };

constexpr std::string_view type_name(ddb_type t) noexcept {
    switch (t) {
        case ddb_type::S: return "S";
        case ddb_type::N: return "N";
        case ddb_type::B: return "B";
        case ddb_type::BOOL: return "BOOL";
        case ddb_type::NULL_: return "NULL";
        case ddb_type::M: return "M";
        case ddb_type::L: return "L";
        case ddb_type::SS: return "SS";
        case ddb_type::NS: return "NS";
        case ddb_type::BS: return "BS";
        case ddb_type::unknown: break;
    }
    return "?";
}

DDB2OS_ALWAYS_INLINE ddb_type parse_type_key(std::string_view k) noexcept {
    switch (k.size()) {
        case 1:
            switch (k[0]) {
                case 'S': return ddb_type::S;
                case 'N': return ddb_type::N;
                case 'B': return ddb_type::B;
                case 'M': return ddb_type::M;
                case 'L': return ddb_type::L;
                default: return ddb_type::unknown;
            }
        case 2:
            if (k == "SS") return ddb_type::SS;
            if (k == "NS") return ddb_type::NS;
            if (k == "BS") return ddb_type::BS;
            return ddb_type::unknown;
        case 4:
            if (k == "BOOL") return ddb_type::BOOL;
            if (k == "NULL") return ddb_type::NULL_;
            return ddb_type::unknown;
        default: return ddb_type::unknown;
    }
}

// OpenSearch's metadata fields, which a document may not contain at its top level.
inline bool is_metadata_field_family(std::string_view name) noexcept {
    std::size_t u = 0;
    while (u < name.size() && name[u] == '_') ++u;
    if (u == 0) return false;
    const std::string_view base = name.substr(u);
    for (std::string_view m : {"id", "index", "source", "routing", "version", "type", "seq_no", "primary_term",
                               "field_names", "ignored", "nested_path", "data_stream_timestamp", "meta", "size",
                               "tier", "doc_count"})
        if (base == m) return true;
    return false;
}

// `_id` -> `__id`, `__id` -> `___id`, ...: one more leading underscore for every name made of
// underscores and a metadata field's name, so the renaming never makes two attributes collide.
inline bool rename_metadata_field(std::string_view name, std::string& out) {
    if (!is_metadata_field_family(name)) return false;
    out.assign(1, '_');
    out.append(name.data(), name.size());
    return true;
}

namespace detail {

inline void quote_for_message(std::string& msg, std::string_view text) {
    string_sink out{msg};
    constexpr std::size_t limit = 64;
    if (text.size() <= limit) {
        if (write_string(out, text) == std::string::npos) return;
        msg.append("(invalid UTF-8)");
        return;
    }
    std::size_t cut = limit;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    write_string(out, text.substr(0, cut));
    msg.pop_back();
    msg.append("...\" (" + std::to_string(text.size()) + " bytes)");
}

inline std::string number_message(number_status st, std::string_view text) {
    std::string m;
    quote_for_message(m, text);
    switch (st) {
        case number_status::invalid: m += " is not a number"; break;
        case number_status::too_precise:
            m += " has more than 38 significant digits, the most a DynamoDB number holds";
            break;
        default:
            m += " is outside DynamoDB's number range (magnitude 1E-130 to "
                 "9.9999999999999999999999999999999999999E+125)";
            break;
    }
    return m;
}

// Where the walk is, rendered only when something fails. Pushed for every attribute, so a
// segment is three words written in place: a type is kept as its ddb_type and named only in
// render() (building a {name, index, flag} segment on the stack and copying it cost a call and
// store-forwarding stalls on every value).
class path_tracker {
public:
    explicit path_tracker(std::string_view prefix = {}) : prefix_(prefix) {}
    void push_name(string_ref name) noexcept {
        push(name.text.data(), name.text.size(), name.escaped ? tag::escaped_name : tag::name);
    }
    void push_type(ddb_type t) noexcept { push(nullptr, static_cast<std::size_t>(t), tag::type); }
    void push_index(std::size_t i) noexcept { push(nullptr, i, tag::index); }
    void pop() noexcept { --n_; }
    std::size_t depth() const noexcept { return n_; }
    void reset(std::string_view prefix) noexcept { prefix_ = prefix; n_ = 0; }

    std::string render() const {
        std::string s(prefix_);
        std::string scratch;
        for (std::size_t i = 0; i < n_ && i < capacity; ++i) {
            const segment& g = segs_[i];
            if (g.kind == tag::index) {
                s += '[' + std::to_string(g.size) + ']';
                continue;
            }
            if (!s.empty()) s += '.';
            if (g.kind == tag::type) {
                s += type_name(static_cast<ddb_type>(g.size));
                continue;
            }
            const std::string_view text(g.data, g.size);
            if (g.kind == tag::escaped_name && unescape_json(text, scratch)) s += scratch;
            else append_sanitized_utf8(s, text);  // a path is always valid UTF-8
        }
        return s;
    }

private:
    enum class tag : unsigned char { name, escaped_name, type, index };
    struct segment {
        const char* data;  // a name's bytes
        std::size_t size;  // a name's length, an index, or a ddb_type
        tag kind;
    };
    // Depth is checked before any descent, so the walk never goes past this.
    static constexpr std::size_t capacity = 2 * (max_nesting + 4);
    void push(const char* data, std::size_t size, tag kind) noexcept {
        if (n_ < capacity) {
            segment& g = segs_[n_];
            g.data = data;
            g.size = size;
            g.kind = kind;
        }
        ++n_;
    }
    std::string_view prefix_;
    segment segs_[capacity];
    std::size_t n_ = 0;
};

// Reads one attribute value: its single type key and the payload under it.
template <class A>
errc classify(typename A::value v, ddb_type& type, typename A::value& payload, std::string& message,
              std::string& scratch) {
    if (A::kind(v) != value_kind::object) {
        message = "an attribute value must be an object with one type key, not " + detail::a_kind_of<A>(v);
        return errc::attr_not_object;
    }
    const std::size_t n = A::size(v);
    if (n != 1) {
        if (n == 0) {
            message = "an attribute value needs a type key (S, N, B, BOOL, NULL, M, L, SS, NS or BS); it has none";
            return errc::attr_no_type;
        }
        message = "an attribute value needs exactly one type key; it has " + std::to_string(n) + " (";
        bool first = true;
        A::each_member(v, [&](string_ref k, typename A::value) {
            if (!first) message += ", ";
            first = false;
            quote_for_message(message, unescape_json_replacing(k.text, k.escaped, scratch));  // the key, not its JSON
            return true;
        });
        message += ")";
        return errc::attr_multiple_types;
    }
    string_ref key;
    A::only_member(v, key, payload);
    if (key.escaped) {
        type = unescape_json(key.text, scratch) ? parse_type_key(scratch) : ddb_type::unknown;
    } else {
        type = parse_type_key(key.text);
    }
    if (type == ddb_type::unknown) {
        message = "unknown type key ";
        quote_for_message(message, unescape_json_replacing(key.text, key.escaped, scratch));
        message += " (expected S, N, B, BOOL, NULL, M, L, SS, NS or BS)";
        return errc::attr_unknown_type;
    }
    const value_kind k = A::kind(payload);
    value_kind want = value_kind::string;
    switch (type) {
        case ddb_type::S:
        case ddb_type::N: want = value_kind::string; break;
        case ddb_type::B:
            if (k == value_kind::binary) return errc::ok;
            want = value_kind::string;
            break;
        case ddb_type::BOOL: want = value_kind::boolean; break;
        case ddb_type::NULL_:
            if (k == value_kind::boolean && A::boolean(payload)) return errc::ok;
            message = k == value_kind::boolean ? "NULL holds false; it must hold true"
                                               : "NULL holds " + detail::a_kind_of<A>(payload) + "; it must hold true";
            return errc::attr_wrong_json_type;
        case ddb_type::M: want = value_kind::object; break;
        default: want = value_kind::array; break;  // L, SS, NS, BS
    }
    if (k != want) {
        message = std::string(type_name(type)) + " holds " + detail::a_kind_of<A>(payload) + "; it must hold " +
                  detail::a_kind(want);
        return errc::attr_wrong_json_type;
    }
    return errc::ok;
}

// Decoded UTF-8 text of a string (its raw text and whether that holds escapes), checked.
// Returns errc::utf8_invalid with a message otherwise.
inline errc decoded_text(std::string_view raw, bool escaped, std::string& scratch, std::string_view& text,
                         std::string& message) {
    if (escaped) {
        if (!unescape_json(raw, scratch)) {
            message = "string is not valid Unicode (an unpaired UTF-16 surrogate or invalid UTF-8)";
            return errc::utf8_invalid;
        }
        text = scratch;
        return errc::ok;
    }
    const std::size_t bad = utf8_invalid_at(raw.data(), raw.size());
    if (bad != std::string::npos) {
        message = "string is not valid UTF-8 (byte " + std::to_string(bad) + ")";
        return errc::utf8_invalid;
    }
    text = raw;
    return errc::ok;
}
// Its fields passed on one by one, inline: a string_ref (24 bytes) handed to a call goes through
// memory, stored field by field and read back in one 16-byte load that cannot be forwarded from
// those stores (a stall that was two thirds of a caller's own time).
DDB2OS_ALWAYS_INLINE errc decoded_text(const string_ref& s, std::string& scratch, std::string_view& text,
                                       std::string& message) {
    return decoded_text(s.text, s.escaped, scratch, text, message);
}
// The decoded text of string value v, checked unless A's strings are valid UTF-8 already.
template <class A>
DDB2OS_ALWAYS_INLINE errc string_text(typename A::value v, std::string& scratch, std::string_view& text,
                                      std::string& message) {
    const string_ref s = A::string(v);
    if constexpr (adapter_valid_utf8<A>::value) {
        if (!s.escaped) {
            text = s.text;
            return errc::ok;
        }
    }
    return decoded_text(s.text, s.escaped, scratch, text, message);
}

// The JSON-text emitter: one attribute value (or a whole image) into an out_buffer.
template <class A>
class json_emitter {
public:
    using value = typename A::value;

    json_emitter(const unmarshal_options& opt, path_error& err) : opt_(opt), err_(err) {}

    void reset_path(std::string_view prefix) noexcept { path_.reset(prefix); }

    // An image: an object of attribute name -> attribute value.
    bool image(out_buffer& out, value img) {
        if (A::kind(img) != value_kind::object)
            return fail(errc::attr_not_object,
                        "an item image must be an object of attributes, not " + detail::a_kind_of<A>(img));
        if (!opt_.exclude.empty() || !opt_.include.empty()) return object_filtered(out, img);
        return object(out, img, 0, true);
    }

    // One attribute value. depth: the number of M/L levels around it.
    bool attribute(out_buffer& out, value v, int depth, bool stringify) {
        ddb_type t;
        value p;
        const errc e = classify<A>(v, t, p, message_, scratch_);
        if (e != errc::ok) return fail(e, std::move(message_));
        path_.push_type(t);
        const bool ok = payload(out, t, p, depth, stringify);
        if (ok) path_.pop();
        return ok;
    }

private:
    const unmarshal_options& opt_;
    path_error& err_;
    path_tracker path_;
    std::string message_;
    std::string scratch_;
    std::string rename_;

    bool fail(errc code, std::string message) {
        err_.code = code;
        err_.path = path_.render();
        err_.message = std::move(message);
        return false;
    }

    bool object(out_buffer& out, value obj, int depth, bool top) {
        out.put('{');
        bool first = true;
        const bool ok = A::each_member(obj, [&](string_ref key, value v) {
            if (!first) out.put(',');
            first = false;
            path_.push_name(key);
            if (!write_key(out, key, top)) return false;
            out.put(':');
            if (!attribute(out, v, depth, false)) return false;
            path_.pop();
            return true;
        });
        out.put('}');
        return ok;
    }

    // An image without the attributes opt_.include and opt_.exclude leave out (a separate loop:
    // object() is the hot one).
    DDB2OS_NOINLINE bool object_filtered(out_buffer& out, value obj) {
        out.put('{');
        bool first = true;
        const bool ok = A::each_member(obj, [&](string_ref key, value v) {
            std::string_view name = key.text;
            if (key.escaped && decoded_text(key, scratch_, name, message_) != errc::ok) name = {};  // reported below
            if (attribute_left_out(name, opt_.include, opt_.exclude)) return true;
            if (!first) out.put(',');
            first = false;
            path_.push_name(key);
            if (!write_key(out, key, true)) return false;
            out.put(':');
            if (!attribute(out, v, 0, false)) return false;
            path_.pop();
            return true;
        });
        out.put('}');
        return ok;
    }

    bool write_key(out_buffer& out, const string_ref& key, bool top) {
        if (!key.escaped && !(top && !key.text.empty() && key.text[0] == '_')) {  // the common case, one pass
            const std::size_t at = out.size();
            const std::size_t bad = write_string(out, key.text);
            if (bad == std::string::npos) return true;
            out.truncate(at);
            return fail(errc::utf8_invalid, "attribute name: string is not valid UTF-8 (byte " + std::to_string(bad) + ")");
        }
        std::string_view text;
        const errc e = decoded_text(key, scratch_, text, message_);
        if (e != errc::ok) return fail(e, "attribute name: " + message_);
        if (top && opt_.rename_metadata_fields && rename_metadata_field(text, rename_)) text = rename_;
        write_valid_string(out, text);
        return true;
    }

    bool string_value(out_buffer& out, value p) {
        const string_ref s = A::string(p);
        if (!s.escaped) {  // one pass: checked while written
            const std::size_t at = out.size();
            const std::size_t bad = write_string(out, s.text);
            if (bad == std::string::npos) return true;
            out.truncate(at);
            return fail(errc::utf8_invalid, "string is not valid UTF-8 (byte " + std::to_string(bad) + ")");
        }
        std::string_view text;
        const errc e = decoded_text(s, scratch_, text, message_);
        if (e != errc::ok) return fail(e, std::move(message_));
        write_valid_string(out, text);
        return true;
    }

    bool number_value(out_buffer& out, value p, bool as_string) {
        const string_ref s = A::string(p);
        // parse_number accepts ASCII only, so unescaped text needs no UTF-8 check of its own.
        // Passed on by value: a view whose address is taken (decoded_text's out parameter) was
        // copied through the stack in one 16-byte load from two 8-byte stores, a store-forwarding
        // stall that was half of this function's time.
        if (!s.escaped) return number_text(out, s.text, as_string);
        std::string_view text;
        if (decoded_text(s, scratch_, text, message_) != errc::ok)
            return fail(errc::number_invalid, "a number must be ASCII text: " + message_);
        return number_text(out, text, as_string);
    }

    bool number_text(out_buffer& out, std::string_view text, bool as_string) {
        number_parts parts;
        const number_status st = parse_number(text, parts);
        if (st != number_status::ok)
            return fail(st == number_status::invalid ? errc::number_invalid : errc::number_out_of_range,
                        number_message(st, text));
        const bool quote = as_string || opt_.numbers == number_mode::string;
        if (quote) out.put('"');
        if (opt_.numbers == number_mode::string) out.put(text);
        else if (opt_.numbers == number_mode::exact) write_exact_number(out, text, parts);
        else write_double_number(out, text, parts);
        if (quote) out.put('"');
        return true;
    }

    bool binary_value(out_buffer& out, value p) {
        if (A::kind(p) == value_kind::binary) {
            const std::string_view bytes = A::binary(p);
            std::string b64;
            base64_encode(b64, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
            out.put('"');
            out.put(b64);
            out.put('"');
            return true;
        }
        std::string_view text;
        const string_ref s = A::string(p);
        if (s.escaped) {
            if (!unescape_json(s.text, scratch_)) return fail(errc::base64_invalid, "base64 text is not valid Unicode");
            text = scratch_;
        } else {
            text = s.text;
        }
        const std::string_view problem = base64_problem(text);
        if (!problem.empty()) {
            std::string m;
            quote_for_message(m, text);
            return fail(errc::base64_invalid, m + " is not valid base64: " + std::string(problem));
        }
        out.put('"');
        out.put(text);  // the base64 alphabet needs no escaping
        out.put('"');
        return true;
    }

    bool payload(out_buffer& out, ddb_type t, value p, int depth, bool stringify) {
        switch (t) {
            case ddb_type::S: return string_value(out, p);
            case ddb_type::N: return number_value(out, p, stringify);
            case ddb_type::B: return binary_value(out, p);
            case ddb_type::BOOL:
                if (stringify) out.put(A::boolean(p) ? std::string_view("\"true\"") : std::string_view("\"false\""));
                else out.put(A::boolean(p) ? std::string_view("true") : std::string_view("false"));
                return true;
            case ddb_type::NULL_: out.put(std::string_view("null")); return true;
            case ddb_type::M: {
                if (depth + 2 > max_nesting) return too_deep();  // the item is level 1
                if (!stringify) return object(out, p, depth + 1, false);
                // Inside a mixed array an object becomes its compact JSON text.
                out_buffer inner;
                if (!object(inner, p, depth + 1, false)) return false;
                write_valid_string(out, inner.view());  // ddb2os's own output
                return true;
            }
            case ddb_type::L: {
                if (depth + 2 > max_nesting) return too_deep();  // the item is level 1
                if (!stringify && opt_.lists == list_policy::stringify)
                    stringify = is_mixed(list_kinds(p, depth + 1));
                return list(out, p, depth + 1, stringify);
            }
            case ddb_type::SS:
            case ddb_type::NS:
            case ddb_type::BS: return set(out, t, p, stringify);
            case ddb_type::unknown: break;
        }
        return false;
    }

    bool too_deep() {
        return fail(errc::nesting_too_deep,
                    "nesting is deeper than DynamoDB's " + std::to_string(max_nesting) + " levels");
    }

    bool list(out_buffer& out, value arr, int depth, bool stringify) {
        out.put('[');
        std::size_t i = 0;
        const bool ok = A::each_element(arr, [&](value v) {
            if (i != 0) out.put(',');
            path_.push_index(i++);
            if (!attribute(out, v, depth, stringify)) return false;
            path_.pop();
            return true;
        });
        out.put(']');
        return ok;
    }

    bool set(out_buffer& out, ddb_type t, value arr, bool stringify) {
        if (A::size(arr) == 0)
            return fail(errc::set_empty, std::string(type_name(t)) + " is an empty set; a DynamoDB set holds at least one element");
        out.put('[');
        std::size_t i = 0;
        const bool ok = A::each_element(arr, [&](value v) {
            if (i != 0) out.put(',');
            path_.push_index(i++);
            const value_kind k = A::kind(v);
            if (!(k == value_kind::string || (t == ddb_type::BS && k == value_kind::binary)))
                return fail(errc::attr_wrong_json_type,
                            std::string(type_name(t)) + " elements must be strings, not " + detail::a_kind_of<A>(v));
            const bool ok1 = t == ddb_type::SS ? string_value(out, v)
                             : t == ddb_type::NS ? number_value(out, v, stringify)
                                                 : binary_value(out, v);
            if (ok1) path_.pop();
            return ok1;
        });
        out.put(']');
        return ok;
    }

    // The kinds of the values in an L, counting nested arrays' values as OpenSearch flattens them.
    // Invalid elements count as nothing here; the writing pass reports them.
    unsigned list_kinds(value arr, int depth) {
        unsigned kinds = 0;
        const unsigned number_kind = opt_.numbers == number_mode::string ? kind_string : kind_number;
        A::each_element(arr, [&](value v) {
            ddb_type t;
            value p;
            if (classify<A>(v, t, p, message_, scratch_) != errc::ok) return true;
            switch (t) {
                case ddb_type::S:
                case ddb_type::B:
                case ddb_type::SS:
                case ddb_type::BS: kinds |= kind_string; break;
                case ddb_type::N:
                case ddb_type::NS: kinds |= number_kind; break;
                case ddb_type::BOOL: kinds |= kind_boolean; break;
                case ddb_type::M: kinds |= kind_object; break;
                case ddb_type::L:
                    if (depth + 2 <= max_nesting) kinds |= list_kinds(p, depth + 1);
                    break;
                default: break;
            }
            return !is_mixed(kinds);
        });
        return kinds;
    }
};

}  // namespace detail

// Writes the document for one item image (an object of attribute values) as compact JSON.
// Returns false and fills `err` on the first bad value; `out` then holds a partial document.
template <class A>
bool write_document(detail::out_buffer& out, typename A::value image, const unmarshal_options& opt,
                    path_error& err, std::string_view path_prefix = {}) {
    detail::json_emitter<A> emitter(opt, err);
    emitter.reset_path(path_prefix);
    return emitter.image(out, image);
}

// Convenience: the document as a string; throws ddb2os::error (with the path) on bad input.
template <class A>
std::string to_json(typename A::value image, const unmarshal_options& opt = {}) {
    detail::out_buffer out;
    path_error err;
    if (!write_document<A>(out, image, opt, err))
        throw error(std::string(error_id(err.code)), (err.path.empty() ? "" : err.path + ": ") + err.message);
    return out.take();
}

DDB2OS_END_NAMESPACE
