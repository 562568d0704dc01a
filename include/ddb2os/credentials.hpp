// credentials.hpp: AWS credentials and where they come from.
//
// Sources, in the AWS SDKs' order: the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN, as Lambda sets them, or the older AWS_SECURITY_TOKEN), then the shared
// credentials and config files with profiles. The container endpoint and EC2 instance metadata come later, with the transport,
// as more credentials_provider implementations added to the same chain. Sources that need a call
// to STS, SSO or a process (role_arn, web identity, SSO, credential_process) are refused with
// credentials.unsupported rather than skipped: the next source would sign as someone else.
//
// The secret key and session token never leave: no error message and no printed form holds them.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "config.hpp"
#include "error.hpp"

DDB2OS_BEGIN_NAMESPACE

class credentials {
public:
    using time_point = std::chrono::system_clock::time_point;

    // Throws credentials.incomplete when the key id or the secret is empty.
    credentials(std::string access_key_id, std::string secret_access_key, std::string session_token = {},
                std::optional<time_point> expiration = std::nullopt)
        : access_key_id_(std::move(access_key_id)),
          secret_access_key_(std::move(secret_access_key)),
          session_token_(std::move(session_token)),
          expiration_(expiration) {
        if (access_key_id_.empty()) throw error("credentials.incomplete", "access key id is empty");
        if (secret_access_key_.empty()) throw error("credentials.incomplete", "secret access key is empty");
    }

    const std::string& access_key_id() const noexcept { return access_key_id_; }
    const std::string& secret_access_key() const noexcept { return secret_access_key_; }
    // Empty when there is none (long-term credentials).
    const std::string& session_token() const noexcept { return session_token_; }
    bool has_session_token() const noexcept { return !session_token_.empty(); }
    // When temporary credentials stop working; none for static ones.
    const std::optional<time_point>& expiration() const noexcept { return expiration_; }

    // The printable form: the key id, and **** for what is secret.
    std::string to_string() const {
        std::string s = "credentials(access_key_id=" + access_key_id_ + ", secret_access_key=****";
        if (has_session_token()) s += ", session_token=****";
        s += ')';
        return s;
    }

    friend std::ostream& operator<<(std::ostream& os, const credentials& c) { return os << c.to_string(); }

    friend bool operator==(const credentials& a, const credentials& b) noexcept {
        return a.access_key_id_ == b.access_key_id_ && a.secret_access_key_ == b.secret_access_key_ &&
               a.session_token_ == b.session_token_ && a.expiration_ == b.expiration_;
    }
    friend bool operator!=(const credentials& a, const credentials& b) noexcept { return !(a == b); }

private:
    std::string access_key_id_;
    std::string secret_access_key_;
    std::string session_token_;
    std::optional<time_point> expiration_;
};

// How sources read environment variables: injectable, so tests never touch the real environment.
// Returns nullopt for an unset variable.
using environment = std::function<std::optional<std::string>(const std::string& name)>;

inline environment process_environment() {
    return [](const std::string& name) -> std::optional<std::string> {
        const char* value = std::getenv(name.c_str());
        if (value == nullptr) return std::nullopt;
        return std::string(value);
    };
}

inline environment environment_from(std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
        const auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

// What one source found: credentials, or nothing and a note of what was looked at (for the
// "no credentials" error).
struct credentials_lookup {
    std::optional<credentials> found;
    std::string tried;
};

class credentials_provider {
public:
    virtual ~credentials_provider() = default;

    // Nothing found means "this source is not configured". A source that is configured but
    // unusable (half-set, unreadable, malformed) throws ddb2os::error instead of falling through,
    // so a typo never silently selects other credentials.
    virtual credentials_lookup lookup() = 0;

    // lookup(), giving up waiting at `deadline` (a steady-clock time, as http::clock's): the sources
    // that ask over the network (container endpoint, instance metadata) and the cache in front of
    // them override it, so a request's credentials cannot outlast the request's deadline. The others
    // have nothing to wait for. (Its own name: an overload would hide lookup() in every override.)
    virtual credentials_lookup lookup_within(std::chrono::steady_clock::time_point deadline) {
        (void)deadline;
        return lookup();
    }

    // A server refused the credentials as expired or invalid before their Expiration (a revoked
    // session, this machine's clock behind): a cache drops them, so that the next lookup asks its
    // source again. A source without a cache has nothing to drop.
    virtual void invalidate() {}

    // The credentials, or credentials.missing naming every place that was tried.
    credentials load() { return found(lookup()); }
    credentials load(std::chrono::steady_clock::time_point deadline) { return found(lookup_within(deadline)); }

private:
    static credentials found(credentials_lookup r) {
        if (!r.found) throw error("credentials.missing", "no AWS credentials found; tried: " + r.tried);
        return std::move(*r.found);
    }
};

namespace detail {

// An environment variable that is set and not empty (the SDKs treat empty as unset).
inline std::optional<std::string> env_value(const environment& env, const std::string& name) {
    std::optional<std::string> v = env(name);
    if (v && v->empty()) v.reset();
    return v;
}

// "a", "a and b", "a, b and c"
inline std::string join_names(const std::vector<std::string_view>& names) {
    std::string out;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i != 0) out += (i + 1 == names.size()) ? " and " : ", ";
        out += names[i];
    }
    return out;
}

// Either both key id and secret are set (credentials), or none of the three is (nothing), or it is
// the half-set error naming what is set and what is missing. `where` starts the message.
inline std::optional<credentials> complete_or_throw(const std::string& where, std::string_view id_name,
                                                    std::optional<std::string> id, std::string_view secret_name,
                                                    std::optional<std::string> secret, std::string_view token_name,
                                                    std::optional<std::string> token) {
    if (id && secret) return credentials(std::move(*id), std::move(*secret), token ? std::move(*token) : std::string());
    if (!id && !secret && !token) return std::nullopt;
    std::vector<std::string_view> set, missing;
    (id ? set : missing).push_back(id_name);
    (secret ? set : missing).push_back(secret_name);
    if (token) set.push_back(token_name);
    throw error("credentials.incomplete", where + " sets " + join_names(set) + " but not " + join_names(missing));
}

inline std::string_view trim(std::string_view s) noexcept {
    const auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; };
    while (!s.empty() && ws(s.front())) s.remove_prefix(1);
    while (!s.empty() && ws(s.back())) s.remove_suffix(1);
    return s;
}

enum class profile_file_kind : unsigned char {
    credentials,  // sections are profile names: [name]
    config,       // [default] and [profile name]; other sections ([sso-session x], ...) are not profiles
};

using profile_properties = std::map<std::string, std::string>;
using profile_map = std::map<std::string, profile_properties, std::less<>>;

// Parses the AWS shared file format (INI-like, as botocore's configparser reads it): full-line
// comments start with '#' or ';'; "key = value" (or "key: value") with keys case-insensitive and
// values taken as written (no inline comments: values never are cut); a line indented deeper than
// the last key's line continues its value (the nested "s3 =\n  max_concurrent_requests = 20"
// form), any other line is a key of its own, however indented; sections that are not profiles
// ([services x], [sso-session x]) are skipped whole. Repeated sections merge and the last value of
// a key wins. `what` names the file in errors, which cite line numbers and never line contents
// (those may hold secrets).
inline profile_map parse_profile_file(std::string_view text, profile_file_kind kind, const std::string& what) {
    profile_map profiles;
    profile_properties* section = nullptr;  // null: before any section, or in a non-profile one
    bool in_section = false;
    std::size_t key_indent = std::string_view::npos;  // the last key line's indent; npos: none yet
    std::string* last_value = nullptr;  // null after a key of a non-profile section
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte order mark
    std::size_t line_no = 0;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        const std::string_view raw = text.substr(start, end - start);
        start = end + 1;
        ++line_no;
        const std::string_view line = trim(raw);
        if (line.empty() || line.front() == '#' || line.front() == ';') continue;
        const auto bad = [&](const char* why) {
            return error("credentials.bad_file", "line " + std::to_string(line_no) + " of " + what + " " + why);
        };
        if (line.front() == '[') {
            const std::size_t close = line.find(']');
            if (close == std::string_view::npos) throw bad("has a '[' without its ']'");
            const std::string_view after = trim(line.substr(close + 1));
            if (!after.empty() && after.front() != '#' && after.front() != ';')
                throw bad("has text after its [section]");
            const std::string_view name = trim(line.substr(1, close - 1));
            if (name.empty()) throw bad("has an empty [section] name");
            in_section = true;
            key_indent = std::string_view::npos;
            last_value = nullptr;
            section = nullptr;
            if (kind == profile_file_kind::credentials || name == "default") {
                section = &profiles[std::string(name)];
            } else if (name.substr(0, 7) == "profile" && name.size() > 7 && (name[7] == ' ' || name[7] == '\t')) {
                // As botocore splits it (shlex): one word, or one quoted name ([profile "my name"]);
                // more than one word is not a profile.
                std::string_view profile = trim(name.substr(8));
                char quote = 0;
                if (profile.size() >= 2 && (profile.front() == '"' || profile.front() == '\'') &&
                    profile.back() == profile.front()) {
                    quote = profile.front();
                    profile = profile.substr(1, profile.size() - 2);
                }
                const bool one_name = quote != 0 ? profile.find(quote) == std::string_view::npos
                                                 : profile.find_first_of(" \t\"'") == std::string_view::npos;
                if (!profile.empty() && one_name) section = &profiles[std::string(profile)];
            }
            continue;
        }
        const std::size_t indent = raw.find_first_not_of(" \t");
        if (key_indent != std::string_view::npos && indent > key_indent) {  // continues the last value
            if (last_value == nullptr) continue;  // of a section that is not a profile
            if (!last_value->empty()) last_value->push_back('\n');
            last_value->append(line);
            continue;
        }
        const std::size_t eq = line.find_first_of("=:");  // configparser takes either
        if (eq == std::string_view::npos) throw bad("is not a [section], a key = value, or a comment");
        if (!in_section) throw bad("is outside any [section]");
        std::string key(trim(line.substr(0, eq)));
        if (key.empty()) throw bad("has an empty key");
        for (char& c : key) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
        key_indent = indent;
        if (section == nullptr) {  // a property of a section that is not a profile
            last_value = nullptr;
            continue;
        }
        std::string& value = (*section)[key];
        value.assign(trim(line.substr(eq + 1)));
        last_value = &value;
    }
    return profiles;
}

// The profile settings by which the SDKs get credentials that ddb2os cannot (it signs, it does not
// call STS, SSO or a process), as botocore detects them: by the key's presence, a web identity by a
// non-empty token file. `before_static_keys`: the settings botocore takes before any static keys
// (roles, web identity, SSO), else the one it takes after the credentials file's keys and before
// the config file's (credential_process).
inline void refuse_unsupported_profile(const std::string& where, const profile_properties& p, bool before_static_keys) {
    struct setting {
        const char* key;
        const char* means;
        bool when_empty;
    };
    static constexpr setting preferred[] = {
        {"role_arn", "assuming a role", true},
        {"web_identity_token_file", "a web identity token", false},
        {"sso_role_name", "IAM Identity Center (SSO)", true},
        {"sso_account_id", "IAM Identity Center (SSO)", true},
    };
    static constexpr setting after[] = {{"credential_process", "running a process", true}};
    const setting* first = before_static_keys ? std::begin(preferred) : std::begin(after);
    const setting* last = before_static_keys ? std::end(preferred) : std::end(after);
    for (const setting* s = first; s != last; ++s) {
        const auto it = p.find(s->key);
        if (it == p.end() || (it->second.empty() && !s->when_empty)) continue;
        throw error("credentials.unsupported",
                    where + " gets its credentials by " + s->means + " (" + s->key +
                        "), which ddb2os does not do: give it static keys, or use the environment variables, "
                        "the container endpoint or instance metadata");
    }
}

// The file's text; nullopt if it does not exist. credentials.unreadable if it exists but cannot be read.
inline std::optional<std::string> read_optional_file(const std::string& path, const std::string& what) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (status.type() == std::filesystem::file_type::not_found) return std::nullopt;
    if (ec || std::filesystem::is_directory(status)) throw error("credentials.unreadable", "cannot read " + what);
    std::ifstream in(path, std::ios::binary);
    if (!in) throw error("credentials.unreadable", "cannot read " + what);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw error("credentials.unreadable", "cannot read " + what);
    return text;
}

inline std::optional<std::string> home_directory(const environment& env) {
    if (auto home = env_value(env, "HOME")) return home;
    return env_value(env, "USERPROFILE");  // Windows
}

// The path from `variable`, with a leading "~" expanded, else <home>/.aws/<file_name>.
// nullopt when neither is known.
inline std::optional<std::string> aws_file_path(const environment& env, const std::string& variable,
                                                const char* file_name) {
    const std::optional<std::string> home = home_directory(env);
    if (std::optional<std::string> path = env_value(env, variable)) {
        if (home && ((*path)[0] == '~') && (path->size() == 1 || (*path)[1] == '/' || (*path)[1] == '\\'))
            return *home + path->substr(1);
        return path;
    }
    if (!home) return std::nullopt;
    return *home + "/.aws/" + file_name;
}

}  // namespace detail

// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and (optional) AWS_SESSION_TOKEN, or its older name
// AWS_SECURITY_TOKEN, which botocore reads first.
class environment_credentials final : public credentials_provider {
public:
    explicit environment_credentials(environment env = process_environment()) : env_(std::move(env)) {}

    credentials_lookup lookup() override {
        credentials_lookup r;
        std::optional<std::string> id = detail::env_value(env_, "AWS_ACCESS_KEY_ID"),
                                   secret = detail::env_value(env_, "AWS_SECRET_ACCESS_KEY");
        // The older name counts only beside a key: alone it is what older tools leave behind, and
        // botocore passes it over (refusing it would stop the chain before the profiles).
        std::optional<std::string> token = id || secret ? detail::env_value(env_, "AWS_SECURITY_TOKEN") : std::nullopt;
        const char* token_name = "AWS_SECURITY_TOKEN";
        if (!token) {
            token = detail::env_value(env_, "AWS_SESSION_TOKEN");
            token_name = "AWS_SESSION_TOKEN";
        }
        r.found = detail::complete_or_throw("environment", "AWS_ACCESS_KEY_ID", std::move(id), "AWS_SECRET_ACCESS_KEY",
                                            std::move(secret), token_name, std::move(token));
        if (r.found) return r;
        // EKS service accounts (IRSA): the SDKs take this before any profile, so falling through to
        // a profile or the instance's role would sign as someone else. The token file alone is refused
        // too, as botocore refuses it (a web identity without a role ARN).
        if (detail::env_value(env_, "AWS_WEB_IDENTITY_TOKEN_FILE"))
            throw error("credentials.unsupported",
                        std::string("environment sets AWS_WEB_IDENTITY_TOKEN_FILE") +
                            (detail::env_value(env_, "AWS_ROLE_ARN") ? " and AWS_ROLE_ARN" : " without AWS_ROLE_ARN") +
                            " (a web identity role), which ddb2os does not assume: set AWS_ACCESS_KEY_ID and "
                            "AWS_SECRET_ACCESS_KEY, or use EKS Pod Identity (the container endpoint) or instance metadata");
        r.tried = "environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (not set)";
        return r;
    }

private:
    environment env_;
};

// Static keys of one profile (AWS_DEFAULT_PROFILE, else AWS_PROFILE, as botocore reads them; else
// "default") in the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials),
// then in the config file (AWS_CONFIG_FILE, else ~/.aws/config). A profile named explicitly (by a
// variable or the constructor) that is in neither file is an error; the default profile may be
// absent. The session token is aws_security_token, else aws_session_token (botocore's order).
class profile_credentials final : public credentials_provider {
public:
    explicit profile_credentials(environment env = process_environment()) : env_(std::move(env)) {}
    profile_credentials(environment env, std::string profile)
        : env_(std::move(env)), explicit_profile_(std::move(profile)) {}

    credentials_lookup lookup() override {
        std::string profile = "default";
        std::string named_by;  // who chose the profile, when someone did
        if (explicit_profile_) {
            profile = *explicit_profile_;
            named_by = "the caller";
        } else {
            for (const char* variable : {"AWS_DEFAULT_PROFILE", "AWS_PROFILE"}) {
                if (std::optional<std::string> p = detail::env_value(env_, variable)) {
                    profile = std::move(*p);
                    named_by = variable;
                    break;
                }
            }
        }
        struct file {
            const char* variable;
            const char* name;
            const char* label;
            detail::profile_file_kind kind;
        };
        static constexpr file files[] = {
            {"AWS_SHARED_CREDENTIALS_FILE", "credentials", "shared credentials file", detail::profile_file_kind::credentials},
            {"AWS_CONFIG_FILE", "config", "config file", detail::profile_file_kind::config},
        };
        const std::string quoted_profile = "profile \"" + profile + "\"";
        struct in_file {
            std::string what;
            detail::profile_file_kind kind;
            detail::profile_properties properties;
        };
        credentials_lookup r;
        std::vector<std::string> where;
        std::vector<in_file> found;  // the profile, in the files that have it, in order
        for (const file& f : files) {
            const std::optional<std::string> path = detail::aws_file_path(env_, f.variable, f.name);
            if (!r.tried.empty()) r.tried += "; ";
            if (!path) {
                r.tried += quoted_profile + " in " + f.label + " (" + f.variable + " and HOME are not set)";
                continue;
            }
            const std::string what = std::string(f.label) + " \"" + *path + "\"";
            where.push_back(what);
            r.tried += quoted_profile + " in " + what;
            const std::optional<std::string> text = detail::read_optional_file(*path, what);
            if (!text) {
                r.tried += " (no such file)";
                continue;
            }
            detail::profile_map profiles = detail::parse_profile_file(*text, f.kind, what);
            const auto it = profiles.find(profile);
            if (it == profiles.end()) {
                r.tried += " (no such profile)";
                continue;
            }
            r.tried += " (no aws_access_key_id)";
            found.push_back({what, f.kind, std::move(it->second)});
        }
        // A role, SSO or web identity in either file is how the SDKs get this profile's credentials,
        // even where static keys are there too: using those instead would act as someone else.
        for (const in_file& in : found)
            detail::refuse_unsupported_profile(quoted_profile + " in " + in.what, in.properties, true);
        const auto keys_in = [&](detail::profile_file_kind kind) -> std::optional<credentials> {
            for (const in_file& in : found) {
                if (in.kind != kind) continue;
                const auto get = [&](const char* key) -> std::optional<std::string> {
                    const auto p = in.properties.find(key);
                    if (p == in.properties.end() || p->second.empty()) return std::nullopt;
                    return p->second;
                };
                std::optional<std::string> token = get("aws_security_token");
                const char* token_name = "aws_security_token";
                if (!token) {
                    token = get("aws_session_token");
                    token_name = "aws_session_token";
                }
                return detail::complete_or_throw(quoted_profile + " in " + in.what, "aws_access_key_id",
                                                 get("aws_access_key_id"), "aws_secret_access_key",
                                                 get("aws_secret_access_key"), token_name, std::move(token));
            }
            return std::nullopt;
        };
        // botocore's order: the credentials file's keys, a credential_process (either file), the
        // config file's keys.
        r.found = keys_in(detail::profile_file_kind::credentials);
        if (!r.found) {
            for (const in_file& in : found)
                detail::refuse_unsupported_profile(quoted_profile + " in " + in.what, in.properties, false);
            r.found = keys_in(detail::profile_file_kind::config);
        }
        if (r.found) {
            r.tried.clear();
            return r;
        }
        if (found.empty() && !named_by.empty()) {
            std::string msg = "profile \"" + profile + "\" (named by " + named_by + ") is ";
            if (where.empty())
                msg += "in no file (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE and HOME are not set)";
            else if (where.size() == 1)
                msg += "not in " + where[0];
            else
                msg += "in neither " + where[0] + " nor " + where[1];
            throw error("credentials.profile_not_found", msg);
        }
        return r;
    }

private:
    environment env_;
    std::optional<std::string> explicit_profile_;
};

// Asks each source in turn; the first that has credentials wins.
class credentials_chain final : public credentials_provider {
public:
    credentials_chain& add(std::unique_ptr<credentials_provider> provider) {
        providers_.push_back(std::move(provider));
        return *this;
    }
    std::size_t size() const noexcept { return providers_.size(); }

    credentials_lookup lookup() override { return lookup_within(std::chrono::steady_clock::time_point::max()); }
    credentials_lookup lookup_within(std::chrono::steady_clock::time_point deadline) override {
        credentials_lookup r;
        for (const auto& p : providers_) {
            credentials_lookup one = p->lookup_within(deadline);
            if (one.found) return one;
            if (!r.tried.empty() && !one.tried.empty()) r.tried += "; ";
            r.tried += one.tried;
        }
        if (r.tried.empty()) r.tried = "no sources";
        return r;
    }

private:
    std::vector<std::unique_ptr<credentials_provider>> providers_;
};

// The SDK order as far as ddb2os goes without a network: environment, then profiles.
inline credentials_chain default_credentials_chain(const environment& env = process_environment()) {
    credentials_chain chain;
    chain.add(std::make_unique<environment_credentials>(env));
    chain.add(std::make_unique<profile_credentials>(env));
    return chain;
}

DDB2OS_END_NAMESPACE
