// document_id.hpp: a DynamoDB item's key -> the OpenSearch document `_id`.
//
// The key schema is ordered: partition key, then sort key. Key values are read from the
// record's Keys by attribute name, never by position (DynamoDB Streams do not order Keys).
//   one key attribute:  _id = its value             (GET /books/_doc/<id> works as expected)
//   two key attributes: _id = <partition>|<sort>    with `\` -> `\\` and `|` -> `\|` in each
// S is used as is, N as its text, B as its base64 text. An _id longer than 512 bytes (the
// OpenSearch limit) becomes "sha256-" + the 64 hex digits of the SHA-256 of the full _id; so does
// an _id that already has that form, so that no key can take a long key's _id. An empty key
// value (DynamoDB allows none) is an error: OpenSearch refuses an empty _id.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "detail/base64.hpp"
#include "detail/crypto.hpp"
#include "detail/number.hpp"
#include "unmarshal.hpp"
#include "value_adapter.hpp"

DDB2OS_BEGIN_NAMESPACE

using key_schema = std::vector<std::string>;

namespace detail {

// Appends one encoded key value to an _id: as is for a single-attribute key, else escaped
// (`\` -> `\\`, `|` -> `\|`) and joined with `|`.
inline void append_id_part(std::string& id, std::string_view part, bool composite, bool first) {
    if (!composite) {
        id.append(part.data(), part.size());
        return;
    }
    if (!first) id.push_back('|');
    std::size_t from = 0;
    for (std::size_t i = 0; i < part.size(); ++i) {
        if (part[i] != '\\' && part[i] != '|') continue;
        id.append(part.data() + from, i - from);
        id.push_back('\\');
        from = i;
    }
    id.append(part.data() + from, part.size() - from);
}

// "sha256-" and 64 lowercase hex digits: the form of a long key's _id.
inline bool has_hashed_id_form(std::string_view id) noexcept {
    if (id.size() != 71 || id.compare(0, 7, "sha256-") != 0) return false;
    for (std::size_t i = 7; i < 71; ++i)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))) return false;
    return true;
}

// "sha256-" and the hex SHA-256 of `text`: a long key's _id, and a dead letter's when its record
// has no eventID or sequence number.
inline std::string hashed_id(std::string_view text) { return "sha256-" + hex(sha256(text)); }

inline void finish_id(std::string& id) {
    if (id.size() > max_id_bytes || has_hashed_id_form(id)) id = hashed_id(id);
}

// `s` without ASCII whitespace at either end: how names in key schemas and attribute lists (the
// CLI's --keys, --include, --exclude; the handler's variables alike) are read.
inline std::string_view trim_ascii_space(std::string_view s) noexcept {
    constexpr std::string_view space = " \t\r\n\v\f";
    const std::size_t first = s.find_first_not_of(space);
    if (first == std::string_view::npos) return {};
    return s.substr(first, s.find_last_not_of(space) + 1 - first);
}

}  // namespace detail

// Joins already-encoded key values into an _id (the pure rule, shared by every host).
inline std::string compose_document_id(const std::vector<std::string_view>& parts) {
    std::string id;
    for (std::size_t i = 0; i < parts.size(); ++i) detail::append_id_part(id, parts[i], parts.size() > 1, i == 0);
    detail::finish_id(id);
    return id;
}

// What is wrong with a key schema ("must name 1 or 2 attributes", ...), or "" when nothing is.
inline std::string key_schema_problem(const key_schema& schema) {
    if (schema.empty() || schema.size() > 2) return "must name 1 or 2 attributes";
    for (const std::string& k : schema)
        if (k.empty()) return "names an empty attribute";
    if (schema.size() == 2 && schema[0] == schema[1])  // Keys' second attribute would be ignored: items merged
        return "names '" + schema[0] + "' twice";
    return {};
}

// "author, bookTitle" -> {"author", "bookTitle"}: names between commas, each trimmed of ASCII
// whitespace as the handler trims them; not checked (key_schema_problem says what is wrong).
inline key_schema split_key_names(std::string_view text) {
    key_schema names;
    for (;;) {
        const std::size_t comma = text.find(',');
        names.emplace_back(detail::trim_ascii_space(text.substr(0, comma)));
        if (comma == std::string_view::npos) return names;
        text.remove_prefix(comma + 1);
    }
}

// "books=author,bookTitle" -> table "books", schema {"author", "bookTitle"}: the form the CLI's
// --keys and the handler's TABLE_KEYS entries take ("books = author, bookTitle" alike). False
// when it is not TABLE=PK or TABLE=PK,SK (key_schema_problem's rules).
inline bool parse_key_schema_spec(std::string_view spec, std::string& table, key_schema& schema) {
    const std::size_t eq = spec.find('=');
    if (eq == std::string_view::npos || detail::trim_ascii_space(spec.substr(0, eq)).empty()) return false;
    key_schema names = split_key_names(spec.substr(eq + 1));
    if (!key_schema_problem(names).empty()) return false;
    table.assign(detail::trim_ascii_space(spec.substr(0, eq)));
    schema = std::move(names);
    return true;
}

namespace detail {

// True when every member of Keys has one name (raw JSON only; DynamoDB never writes such an object),
// with the last member: a repeated name counts once, with its last value, as A::find, nlohmann and
// Python's json.loads (the module's dict path) take it. A name that cannot be decoded is never the same.
template <class A>
bool one_name_repeated(typename A::value v, string_ref& key, typename A::value& last) {
    std::string first, name;
    bool same = true, seen = false;
    A::each_member(v, [&](string_ref k, typename A::value p) {
        std::string& into = seen ? name : first;
        if (!k.escaped) into.assign(k.text.data(), k.text.size());
        else if (!unescape_json(k.text, into)) return same = false;
        same = !seen || name == first;
        seen = true;
        key = k;
        last = p;
        return same;
    });
    return same;
}

inline std::string table_label(std::string_view table) {
    return table.empty() ? std::string("the table") : "table '" + std::string(table) + "'";
}

// The encoded text of one key attribute value (S, N or B): a view of the input, or of `scratch`
// when it had to be decoded or encoded.
template <class A>
errc key_value_text(typename A::value v, std::string_view& out, std::string& message, std::string& scratch) {
    ddb_type t;
    typename A::value p;
    const errc e = classify<A>(v, t, p, message, scratch);
    if (e != errc::ok) return e;
    std::string_view text;
    switch (t) {
        case ddb_type::S:
            if (string_text<A>(p, scratch, text, message) != errc::ok) return errc::utf8_invalid;
            out = text;
            return errc::ok;
        case ddb_type::N: {
            if (string_text<A>(p, scratch, text, message) != errc::ok) return errc::number_invalid;
            number_parts parts;
            const number_status st = parse_number(text, parts);
            if (st != number_status::ok) {
                message = number_message(st, text);
                return st == number_status::invalid ? errc::number_invalid : errc::number_out_of_range;
            }
            out = text;
            return errc::ok;
        }
        case ddb_type::B: {
            if (A::kind(p) == value_kind::binary) {
                const std::string_view bytes = A::binary(p);
                scratch.clear();
                base64_encode(scratch, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
                out = scratch;
                return errc::ok;
            }
            if (string_text<A>(p, scratch, text, message) != errc::ok) return errc::base64_invalid;
            const std::string_view problem = base64_problem(text);
            if (!problem.empty()) {
                message.clear();
                quote_for_message(message, text);
                message += " is not valid base64: " + std::string(problem);
                return errc::base64_invalid;
            }
            out = text;
            return errc::ok;
        }
        default:
            message = "a key attribute is S, N or B, not " + std::string(type_name(t));
            return errc::key_bad_type;
    }
}

}  // namespace detail

// The _id for a record's Keys (an object of attribute values). `schema` is the table's ordered
// key attribute names, or null when unknown: then Keys must hold exactly one attribute.
// `table` only names the table in messages. On failure fills `err` (path relative to `prefix`).
template <class A>
bool document_id(typename A::value keys, const key_schema* schema, std::string_view table, std::string& id,
                 path_error& err, std::string_view prefix = {}) {
    std::string scratch, message;
    auto fail = [&](errc code, std::string path, std::string msg) {
        id.clear();
        err.code = code;
        err.path = std::move(path);
        err.message = std::move(msg);
        return false;
    };
    auto join = [&](std::string_view name) {
        std::string p(prefix);
        if (!p.empty()) p += '.';
        p.append(name.data(), name.size());
        return p;
    };
    if (A::kind(keys) != value_kind::object)
        return fail(errc::record_bad_field, std::string(prefix), "Keys must be an object, not " + detail::a_kind_of<A>(keys));
    const std::size_t n = A::size(keys);
    if (n == 0) return fail(errc::key_empty, std::string(prefix), "Keys is empty");

    id.clear();
    std::string_view text;
    if (schema == nullptr || schema->empty()) {
        string_ref key;
        typename A::value only{};
        if (n == 1) A::only_member(keys, key, only);
        else if (!detail::one_name_repeated<A>(keys, key, only))  // a name written twice counts once
            return fail(errc::key_no_schema, std::string(prefix),
                        detail::table_label(table) + " has a composite key (Keys holds " + std::to_string(n) +
                            " attributes) and no key schema is known for it");
        // Its name is not in the _id, but is checked as any name is (a dict's key that is not a str
        // reads as invalid UTF-8).
        std::string name_scratch;
        std::string_view name_text;
        if (detail::decoded_text(key, name_scratch, name_text, message) != errc::ok)
            return fail(errc::utf8_invalid, std::string(prefix), "a key attribute's name: " + message);
        const std::string name(name_text);
        const errc e = detail::key_value_text<A>(only, text, message, scratch);
        if (e != errc::ok) return fail(e, join(name), message);
        if (text.empty())
            return fail(errc::key_empty, join(name),
                        detail::table_label(table) + ": key attribute '" + name + "' is empty (an _id cannot be)");
        detail::append_id_part(id, text, false, true);
    } else {
        const bool composite = schema->size() > 1;
        for (const std::string& name : *schema) {
            typename A::value v{};
            if (!A::find(keys, name, v))
                return fail(errc::key_missing, join(name),
                            detail::table_label(table) + ": key attribute '" + name + "' is missing from Keys");
            const errc e = detail::key_value_text<A>(v, text, message, scratch);
            if (e != errc::ok) return fail(e, join(name), message);
            if (text.empty() && !composite)
                return fail(errc::key_empty, join(name),
                            detail::table_label(table) + ": key attribute '" + name + "' is empty (an _id cannot be)");
            detail::append_id_part(id, text, composite, &name == &schema->front());
        }
        if (n > schema->size()) {
            bool found = false;
            string_ref extra;
            A::each_member(keys, [&](string_ref k, typename A::value) {
                std::string kn = k.escaped && detail::unescape_json(k.text, scratch) ? scratch : std::string(k.text);
                found = std::find(schema->begin(), schema->end(), kn) == schema->end();
                if (found) extra = k;
                return !found;
            });
            // No name outside the schema: one was written twice (raw JSON only), and find() read its last.
            if (found) {
                std::string names;
                for (const std::string& s : *schema) names += (names.empty() ? "" : ", ") + s;
                // Named as it came, U+FFFD for what cannot be decoded: a report's JSON writer would
                // stop at the first bad byte, mid-name and mid-message.
                const std::string shown(detail::unescape_json_replacing(extra.text, extra.escaped, scratch));
                return fail(errc::key_unexpected, join(shown),
                            detail::table_label(table) + ": Keys holds '" + shown +
                                "', which is not in the key schema (" + names + ")");
            }
        }
    }
    detail::finish_id(id);
    return true;
}

DDB2OS_END_NAMESPACE
