// index_name.hpp: which OpenSearch index a record goes to.
//
// By default the table's name (from the record's eventSourceARN), lowercased; or a fixed
// name; or a template in which `{table}` stands for that lowercased name. Every name is checked
// against OpenSearch's index-name rules before a request can fail on it.
#pragma once

#include <string>
#include <string_view>

#include "config.hpp"
#include "detail/utf8.hpp"
#include "error.hpp"

DDB2OS_BEGIN_NAMESPACE

// "arn:aws:dynamodb:us-east-1:123456789012:table/Books/stream/2024-..." -> "Books".
inline std::string_view table_from_arn(std::string_view arn) noexcept {
    const std::size_t t = arn.find(":table/");
    if (t == std::string_view::npos) return {};
    const std::string_view rest = arn.substr(t + 7);
    return rest.substr(0, rest.find('/'));
}

// "arn:aws:dynamodb:us-east-1:123456789012:table/Books/stream/2024-..." ->
// "arn:aws:dynamodb:us-east-1:123456789012:table/Books": the table's own ARN, which names its
// account (DescribeTable takes it as TableName; a name alone is looked up in the caller's account).
inline std::string_view table_arn_from_arn(std::string_view arn) noexcept {
    const std::size_t t = arn.find(":table/");
    if (t == std::string_view::npos) return {};
    return arn.substr(0, t + 7 + table_from_arn(arn).size());
}

// Empty when OpenSearch accepts `name` as an index name; otherwise why not.
inline std::string index_name_problem(std::string_view name) {
    if (name.empty()) return "it is empty";
    if (name == "." || name == "..") return "it must not be '.' or '..'";
    if (name.size() > 255) return "it is longer than 255 bytes";
    if (name[0] == '_' || name[0] == '-' || name[0] == '+') return "it must not start with '_', '-' or '+'";
    if (!detail::is_valid_utf8(name.data(), name.size())) return "it is not valid UTF-8";
    for (char c : name) {
        const auto u = static_cast<unsigned char>(c);
        if (c >= 'A' && c <= 'Z') return "it must be lowercase";
        if (u < 0x20 || u == 0x7F) return "it must not contain control characters";
        switch (c) {
            case '\\': case '/': case '*': case '?': case '"': case '<': case '>': case '|':
            case ' ': case ',': case '#': case ':':
                return std::string("it must not contain '") + c + "'";
            default: break;
        }
    }
    return {};
}

namespace detail {
// A name in a message: quoted, any invalid UTF-8 shown as U+FFFD (a message is valid UTF-8).
inline std::string quoted_name(std::string_view name) {
    std::string s = "\"";
    append_sanitized_utf8(s, name);
    return s + "\"";
}
}  // namespace detail

// Maps a table name to its index name.
class index_namer {
public:
    // `pattern`: empty (the table's name), a fixed name, or a template containing {table}.
    // Throws error(option.invalid) when a fixed name is invalid, or a template gives no valid
    // name for any table: tried with "aaa", the shortest table name, of letters any name allows.
    explicit index_namer(std::string pattern = {}) : pattern_(std::move(pattern)) {
        templated_ = pattern_.empty() || pattern_.find("{table}") != std::string::npos;
        if (!templated_) {
            const std::string problem = index_name_problem(pattern_);
            if (!problem.empty())
                throw error(errc::option_invalid, "index name " + detail::quoted_name(pattern_) + " is invalid: " + problem);
        } else if (!pattern_.empty()) {
            std::string name, problem;
            if (!name_for("aaa", name, problem))
                throw error(errc::option_invalid, "index template " + detail::quoted_name(pattern_) +
                                                      " gives no valid name: for table \"aaa\", " + problem);
        }
    }

    bool uses_table() const noexcept { return templated_; }

    // The index for `table`, or false with the reason in `problem`.
    bool name_for(std::string_view table, std::string& name, std::string& problem) const {
        if (!templated_) {
            name = pattern_;
            return true;
        }
        std::string lower(table);
        for (char& c : lower)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (pattern_.empty()) {
            name = std::move(lower);
        } else {
            name.clear();
            std::size_t at = 0;
            for (std::size_t hit; (hit = pattern_.find("{table}", at)) != std::string::npos; at = hit + 7)
                name.append(pattern_, at, hit - at).append(lower);
            name.append(pattern_, at, std::string::npos);
        }
        problem = index_name_problem(name);
        if (problem.empty()) return true;
        problem = "index name " + detail::quoted_name(name) + " is invalid: " + problem;
        return false;
    }

private:
    std::string pattern_;
    bool templated_ = true;
};

DDB2OS_END_NAMESPACE
