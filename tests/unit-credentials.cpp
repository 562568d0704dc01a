// Credentials (credentials.hpp): each source, the order between them, profiles, half-set and
// missing sources with their exact messages, and secrets that never show.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <doctest/doctest.h>

#include <ddb2os/credentials.hpp>

#include "test_support.hpp"

namespace fs = std::filesystem;
using ddb2os::credentials;
using env_map = std::map<std::string, std::string>;

namespace {

using test::error_of;

constexpr const char* secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr const char* token = "FwoGZXIvYXdzEXAMPLETOKEN//+=";

// A fresh directory standing in for $HOME, removed afterwards.
struct temp_home {
    fs::path dir;
    temp_home() {
        static std::atomic<int> n{0};
        dir = fs::temp_directory_path() /
              ("ddb2os-credentials-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) +
               "-" + std::to_string(n++));
        fs::create_directories(dir / ".aws");
    }
    ~temp_home() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    temp_home(const temp_home&) = delete;
    temp_home& operator=(const temp_home&) = delete;

    std::string path(const std::string& rel) const { return (dir / rel).string(); }
    std::string write(const std::string& rel, const std::string& text) const {
        std::ofstream(dir / rel, std::ios::binary) << text;
        return path(rel);
    }
    env_map env(env_map extra = {}) const {
        extra.emplace("HOME", dir.string());
        return extra;
    }
};

ddb2os::credentials_lookup env_lookup(env_map vars) {
    return ddb2os::environment_credentials(ddb2os::environment_from(std::move(vars))).lookup();
}

credentials load_profile(const env_map& vars) {
    return ddb2os::profile_credentials(ddb2os::environment_from(vars)).load();
}

}  // namespace

TEST_CASE("credentials: the key id shows, the secret and token never do") {
    const credentials c("AKIDEXAMPLE", secret, token);
    CHECK(c.access_key_id() == "AKIDEXAMPLE");
    CHECK(c.secret_access_key() == secret);
    CHECK(c.session_token() == token);
    CHECK(c.has_session_token());
    CHECK_FALSE(c.expiration().has_value());
    CHECK(c.to_string() == "credentials(access_key_id=AKIDEXAMPLE, secret_access_key=****, session_token=****)");
    std::ostringstream os;
    os << c;
    CHECK(os.str() == c.to_string());
    CHECK(os.str().find(secret) == std::string::npos);
    CHECK(os.str().find(token) == std::string::npos);

    const credentials plain("AKIDEXAMPLE", secret);
    CHECK_FALSE(plain.has_session_token());
    CHECK(plain.session_token().empty());
    CHECK(plain.to_string() == "credentials(access_key_id=AKIDEXAMPLE, secret_access_key=****)");
    CHECK(plain != c);
    CHECK(plain == credentials("AKIDEXAMPLE", secret));

    const auto expiry = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
    const credentials temporary("ASIA1", secret, token, expiry);
    CHECK(temporary.expiration() == expiry);
    CHECK(temporary != credentials("ASIA1", secret, token));

    CHECK(error_of([] { credentials("", secret); }) == "[ddb2os.credentials.incomplete] access key id is empty");
    CHECK(error_of([] { credentials("AKID", ""); }) == "[ddb2os.credentials.incomplete] secret access key is empty");
}

TEST_CASE("credentials: from the environment, as Lambda sets it") {
    const auto r = env_lookup({{"AWS_ACCESS_KEY_ID", "ASIAENV"}, {"AWS_SECRET_ACCESS_KEY", secret}, {"AWS_SESSION_TOKEN", token}});
    REQUIRE(r.found.has_value());
    CHECK(*r.found == credentials("ASIAENV", secret, token));

    const auto no_token = env_lookup({{"AWS_ACCESS_KEY_ID", "AKIAENV"}, {"AWS_SECRET_ACCESS_KEY", secret}, {"AWS_SESSION_TOKEN", ""}});
    REQUIRE(no_token.found.has_value());
    CHECK_FALSE(no_token.found->has_session_token());

    const auto none = env_lookup({{"AWS_ACCESS_KEY_ID", ""}, {"AWS_REGION", "us-east-1"}});
    CHECK_FALSE(none.found.has_value());
    CHECK(none.tried == "environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (not set)");
}

TEST_CASE("credentials: AWS_SECURITY_TOKEN, the older name, is read first, as botocore does") {
    // Without it, temporary keys given under the older name signed without their token: every request a 403.
    const auto legacy = env_lookup({{"AWS_ACCESS_KEY_ID", "ASIAENV"}, {"AWS_SECRET_ACCESS_KEY", secret}, {"AWS_SECURITY_TOKEN", token}});
    REQUIRE(legacy.found.has_value());
    CHECK(*legacy.found == credentials("ASIAENV", secret, token));
    const auto both = env_lookup({{"AWS_ACCESS_KEY_ID", "ASIAENV"}, {"AWS_SECRET_ACCESS_KEY", secret},
                                  {"AWS_SECURITY_TOKEN", "older"}, {"AWS_SESSION_TOKEN", token}});
    CHECK(*both.found == credentials("ASIAENV", secret, "older"));
    const auto empty = env_lookup({{"AWS_ACCESS_KEY_ID", "ASIAENV"}, {"AWS_SECRET_ACCESS_KEY", secret},
                                   {"AWS_SECURITY_TOKEN", ""}, {"AWS_SESSION_TOKEN", token}});
    CHECK(*empty.found == credentials("ASIAENV", secret, token));
    // Alone, what older tools leave behind: passed over, as botocore does, so the chain goes on to the profiles.
    const auto lone = env_lookup({{"AWS_SECURITY_TOKEN", token}});
    CHECK_FALSE(lone.found.has_value());
    CHECK(lone.tried == "environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (not set)");
    CHECK(error_of([] { env_lookup({{"AWS_SECRET_ACCESS_KEY", secret}, {"AWS_SECURITY_TOKEN", token}}); }) ==
          "[ddb2os.credentials.incomplete] environment sets AWS_SECRET_ACCESS_KEY and AWS_SECURITY_TOKEN but not "
          "AWS_ACCESS_KEY_ID");
}

TEST_CASE("credentials: AWS_DEFAULT_PROFILE before AWS_PROFILE, and aws_security_token, as botocore reads them") {
    temp_home home;
    home.write(".aws/credentials",
               "[a]\naws_access_key_id = AKIA_A\naws_secret_access_key = sa\naws_security_token = older\n"
               "[b]\naws_access_key_id = AKIA_B\naws_secret_access_key = sb\n"
               "aws_security_token = older\naws_session_token = newer\n");
    CHECK(load_profile(home.env({{"AWS_DEFAULT_PROFILE", "a"}, {"AWS_PROFILE", "b"}})) == credentials("AKIA_A", "sa", "older"));
    CHECK(load_profile(home.env({{"AWS_DEFAULT_PROFILE", "a"}})) == credentials("AKIA_A", "sa", "older"));
    CHECK(load_profile(home.env({{"AWS_DEFAULT_PROFILE", ""}, {"AWS_PROFILE", "b"}})) == credentials("AKIA_B", "sb", "older"));
    CHECK(error_of([&] { load_profile(home.env({{"AWS_DEFAULT_PROFILE", "c"}})); }).find("(named by AWS_DEFAULT_PROFILE)") !=
          std::string::npos);
}

TEST_CASE("credentials: a half-set environment names what is missing, and no secret") {
    const auto err = [](env_map vars) {
        return error_of([&] { env_lookup(std::move(vars)); });
    };
    CHECK(err({{"AWS_ACCESS_KEY_ID", "AKID"}}) ==
          "[ddb2os.credentials.incomplete] environment sets AWS_ACCESS_KEY_ID but not AWS_SECRET_ACCESS_KEY");
    CHECK(err({{"AWS_ACCESS_KEY_ID", "AKID"}, {"AWS_SECRET_ACCESS_KEY", ""}}) ==
          "[ddb2os.credentials.incomplete] environment sets AWS_ACCESS_KEY_ID but not AWS_SECRET_ACCESS_KEY");
    const std::string no_id = err({{"AWS_SECRET_ACCESS_KEY", secret}});
    CHECK(no_id == "[ddb2os.credentials.incomplete] environment sets AWS_SECRET_ACCESS_KEY but not AWS_ACCESS_KEY_ID");
    CHECK(no_id.find(secret) == std::string::npos);
    CHECK(err({{"AWS_SECRET_ACCESS_KEY", secret}, {"AWS_SESSION_TOKEN", token}}) ==
          "[ddb2os.credentials.incomplete] environment sets AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN but not "
          "AWS_ACCESS_KEY_ID");
    CHECK(err({{"AWS_SESSION_TOKEN", token}}) ==
          "[ddb2os.credentials.incomplete] environment sets AWS_SESSION_TOKEN but not AWS_ACCESS_KEY_ID and "
          "AWS_SECRET_ACCESS_KEY");
    CHECK(err({{"AWS_ACCESS_KEY_ID", "AKID"}, {"AWS_SESSION_TOKEN", token}}) ==
          "[ddb2os.credentials.incomplete] environment sets AWS_ACCESS_KEY_ID and AWS_SESSION_TOKEN but not "
          "AWS_SECRET_ACCESS_KEY");
}

TEST_CASE("credentials: the default profile from ~/.aws/credentials") {
    temp_home home;
    home.write(".aws/credentials",
               "# a comment\n"
               "; another\n"
               "\n"
               "[default]\n"
               "aws_access_key_id = AKIADEFAULT\n"
               "aws_secret_access_key=" + std::string(secret) + "\n"
               "region = us-east-1\n"
               "[dev]\n"
               "aws_access_key_id = AKIADEV\n"
               "aws_secret_access_key = devsecret\n"
               "aws_session_token = devtoken\n");
    CHECK(load_profile(home.env()) == credentials("AKIADEFAULT", secret));
    CHECK(load_profile(home.env({{"AWS_PROFILE", "dev"}})) == credentials("AKIADEV", "devsecret", "devtoken"));
    CHECK(ddb2os::profile_credentials(ddb2os::environment_from(home.env({{"AWS_PROFILE", "dev"}})), "default").load() ==
          credentials("AKIADEFAULT", secret));
}

TEST_CASE("credentials: the config file, with [profile name] sections") {
    temp_home home;
    home.write(".aws/config",
               "[default]\n"
               "region = eu-west-1\n"
               "aws_access_key_id = AKIACONFIGDEFAULT\n"
               "aws_secret_access_key = s1\n"
               "[profile dev]\n"
               "aws_access_key_id = AKIACONFIGDEV\n"
               "aws_secret_access_key = s2\n"
               "[prod]\n"  // not a profile in the config file
               "aws_access_key_id = AKIANOTAPROFILE\n"
               "aws_secret_access_key = s3\n"
               "[sso-session corp]\n"
               "sso_region = us-east-1\n"
               "[profile   spaced  ]\n"
               "aws_access_key_id = AKIASPACED\n"
               "aws_secret_access_key = s4\n"
               // Split as botocore splits it (shlex): a quoted name is one name, two words are no profile.
               "[profile \"my name\"]\n"
               "aws_access_key_id = AKIAQUOTED\n"
               "aws_secret_access_key = s5\n"
               "[profile 'single']\n"
               "aws_access_key_id = AKIASINGLE\n"
               "aws_secret_access_key = s6\n"
               "[profile two words]\n"
               "aws_access_key_id = AKIATWOWORDS\n"
               "aws_secret_access_key = s7\n");
    CHECK(load_profile(home.env()) == credentials("AKIACONFIGDEFAULT", "s1"));
    CHECK(load_profile(home.env({{"AWS_PROFILE", "dev"}})) == credentials("AKIACONFIGDEV", "s2"));
    CHECK(load_profile(home.env({{"AWS_PROFILE", "spaced"}})) == credentials("AKIASPACED", "s4"));
    CHECK(load_profile(home.env({{"AWS_PROFILE", "my name"}})) == credentials("AKIAQUOTED", "s5"));
    CHECK(load_profile(home.env({{"AWS_PROFILE", "single"}})) == credentials("AKIASINGLE", "s6"));
    CHECK(error_of([&] { load_profile(home.env({{"AWS_PROFILE", "two words"}})); }).find("profile_not_found") != std::string::npos);
    CHECK(error_of([&] { load_profile(home.env({{"AWS_PROFILE", "prod"}})); }) ==
          "[ddb2os.credentials.profile_not_found] profile \"prod\" (named by AWS_PROFILE) is in neither shared "
          "credentials file \"" + home.path(".aws/credentials") + "\" nor config file \"" + home.path(".aws/config") + "\"");
}

TEST_CASE("credentials: the credentials file comes before the config file") {
    temp_home home;
    home.write(".aws/credentials",
               "[default]\naws_access_key_id = AKIAFROMCREDENTIALS\naws_secret_access_key = a\n"
               "[dev]\nregion = us-west-2\n");
    home.write(".aws/config",
               "[default]\naws_access_key_id = AKIAFROMCONFIG\naws_secret_access_key = b\n"
               "[profile dev]\naws_access_key_id = AKIADEVCONFIG\naws_secret_access_key = c\n");
    CHECK(load_profile(home.env()).access_key_id() == "AKIAFROMCREDENTIALS");
    // A profile without keys in the credentials file: the config file's keys.
    CHECK(load_profile(home.env({{"AWS_PROFILE", "dev"}})).access_key_id() == "AKIADEVCONFIG");
}

TEST_CASE("credentials: AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE, with ~ expanded") {
    temp_home home;
    home.write(".aws/credentials", "[default]\naws_access_key_id = AKIAHOME\naws_secret_access_key = a\n");
    home.write("creds.ini", "[default]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = b\n");
    home.write("config.ini", "[profile x]\naws_access_key_id = AKIACFG\naws_secret_access_key = c\n");
    CHECK(load_profile(home.env({{"AWS_SHARED_CREDENTIALS_FILE", home.path("creds.ini")}})).access_key_id() == "AKIAOTHER");
    CHECK(load_profile(home.env({{"AWS_SHARED_CREDENTIALS_FILE", "~/creds.ini"}})).access_key_id() == "AKIAOTHER");
    CHECK(load_profile(home.env({{"AWS_CONFIG_FILE", "~/config.ini"}, {"AWS_PROFILE", "x"}})).access_key_id() == "AKIACFG");
    // No HOME and no variables: nothing to read, and the error says so.
    const auto r = ddb2os::profile_credentials(ddb2os::environment_from({})).lookup();
    CHECK_FALSE(r.found.has_value());
    CHECK(r.tried ==
          "profile \"default\" in shared credentials file (AWS_SHARED_CREDENTIALS_FILE and HOME are not set); "
          "profile \"default\" in config file (AWS_CONFIG_FILE and HOME are not set)");
    CHECK(error_of([] { ddb2os::profile_credentials(ddb2os::environment_from({{"AWS_PROFILE", "p"}})).lookup(); }) ==
          "[ddb2os.credentials.profile_not_found] profile \"p\" (named by AWS_PROFILE) is in no file "
          "(AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE and HOME are not set)");
    CHECK(error_of([&] {
              ddb2os::profile_credentials(ddb2os::environment_from({{"AWS_CONFIG_FILE", home.path("config.ini")}}), "y")
                  .lookup();
          }) == "[ddb2os.credentials.profile_not_found] profile \"y\" (named by the caller) is not in config file \"" +
                    home.path("config.ini") + "\"");
}

TEST_CASE("credentials: the file format: case, spacing, continuations, CRLF, BOM, repeated sections") {
    temp_home home;
    home.write(".aws/credentials",
               "\xEF\xBB\xBF[default]   # trailing comment\r\n"
               "AWS_Access_Key_ID=AKIAFIRST\r\n"
               "  \t\r\n"
               "aws_secret_access_key   =   with spaces inside   \r\n"
               "s3 =\r\n"
               "  max_concurrent_requests = 10\r\n"
               "    ; an indented comment\r\n"
               "[other]\r\n"
               "aws_access_key_id = AKIAOTHER\r\n"
               "[default]\r\n"
               "aws_access_key_id: AKIALAST\r\n");  // ':' as configparser reads it
    const credentials c = load_profile(home.env());
    CHECK(c.access_key_id() == "AKIALAST");
    CHECK(c.secret_access_key() == "with spaces inside");
    CHECK_FALSE(c.has_session_token());
}

TEST_CASE("credentials: sections that are not profiles are skipped whole; an indented first key is a key") {
    temp_home home;
    home.write(".aws/config",
               "[services local]\n"
               "s3 =\n"
               "  endpoint_url = http://localhost:4566\n"
               "  addressing_style = path\n"
               "[sso-session corp]\n"
               "sso_region = us-east-1\n"
               "[profile dev]\n"
               "  aws_access_key_id = AKIAINDENTED\n"
               "  aws_secret_access_key = s\n"
               "services = local\n");
    const credentials c = load_profile(home.env({{"AWS_PROFILE", "dev"}}));
    CHECK(c.access_key_id() == "AKIAINDENTED");
    CHECK(c.secret_access_key() == "s");
}

TEST_CASE("credentials: roles, SSO, web identity and credential_process are refused, not skipped") {
    temp_home home;
    const std::string config = home.path(".aws/config"), creds = home.path(".aws/credentials");
    const auto err = [&](const std::string& config_text, env_map extra = {}) {
        home.write(".aws/config", config_text);
        return error_of([&] { ddb2os::default_credentials_chain(ddb2os::environment_from(home.env(std::move(extra)))).load(); });
    };
    const std::string tail = "), which ddb2os does not do: give it static keys, or use the environment variables, "
                             "the container endpoint or instance metadata";
    // The SDKs assume the role even though the credentials file has static keys for the profile.
    home.write(".aws/credentials", "[dev]\naws_access_key_id = AKIASOURCE\naws_secret_access_key = s\n");
    CHECK(err("[profile dev]\nrole_arn = arn:aws:iam::123456789012:role/search\nsource_profile = base\n",
              {{"AWS_PROFILE", "dev"}}) ==
          "[ddb2os.credentials.unsupported] profile \"dev\" in config file \"" + config +
              "\" gets its credentials by assuming a role (role_arn" + tail);
    CHECK(err("[default]\nsso_session = corp\nsso_account_id = 123456789012\n") ==
          "[ddb2os.credentials.unsupported] profile \"default\" in config file \"" + config +
              "\" gets its credentials by IAM Identity Center (SSO) (sso_account_id" + tail);
    // As botocore: an empty role_arn is still a role; an sso_session alone is not SSO credentials.
    CHECK(err("[profile dev]\nrole_arn =\n", {{"AWS_PROFILE", "dev"}}).find("by assuming a role (role_arn") != std::string::npos);
    CHECK(err("[profile dev]\nsso_session = corp\nsso_start_url = https://x\n", {{"AWS_PROFILE", "dev"}}) == "no error");  // the keys
    home.write(".aws/credentials", "[default]\nweb_identity_token_file = /var/run/token\nrole_arn = r\n");
    CHECK(err("").find("[ddb2os.credentials.unsupported] profile \"default\" in shared credentials file \"" + creds +
                       "\" gets its credentials by assuming a role (role_arn") == 0);
    // Without role_arn too (botocore fails on it): the keys beside it are not used instead.
    home.write(".aws/credentials", "[default]\nweb_identity_token_file = /var/run/token\naws_access_key_id = AKIAKEYS\n"
                                   "aws_secret_access_key = s\n");
    CHECK(err("") == "[ddb2os.credentials.unsupported] profile \"default\" in shared credentials file \"" + creds +
                         "\" gets its credentials by a web identity token (web_identity_token_file" + tail);
    // credential_process comes after the credentials file's keys and before the config file's.
    home.write(".aws/credentials", "");
    CHECK(err("[default]\ncredential_process = /usr/bin/get-creds\n") ==
          "[ddb2os.credentials.unsupported] profile \"default\" in config file \"" + config +
              "\" gets its credentials by running a process (credential_process" + tail);
    CHECK(err("[default]\ncredential_process = /usr/bin/get-creds\naws_access_key_id = AKIAKEYS\n"
              "aws_secret_access_key = s\n")
              .find("by running a process (credential_process") != std::string::npos);
    home.write(".aws/credentials", "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = s\n");
    home.write(".aws/config", "[default]\ncredential_process = /usr/bin/get-creds\n");
    CHECK(load_profile(home.env()).access_key_id() == "AKIAFILE");
    // EKS service-account roles: before any profile, after the environment's own keys.
    const env_map irsa{{"AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"}, {"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"}};
    CHECK(error_of([&] { ddb2os::default_credentials_chain(ddb2os::environment_from(home.env(irsa))).load(); }) ==
          "[ddb2os.credentials.unsupported] environment sets AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN (a web identity "
          "role), which ddb2os does not assume: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use EKS Pod Identity "
          "(the container endpoint) or instance metadata");
    // The token file alone, as botocore takes it (it then wants a role ARN), is refused as well.
    CHECK(error_of([&] {
              ddb2os::default_credentials_chain(
                  ddb2os::environment_from(home.env({{"AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"}})))
                  .load();
          }) == "[ddb2os.credentials.unsupported] environment sets AWS_WEB_IDENTITY_TOKEN_FILE without AWS_ROLE_ARN (a "
                "web identity role), which ddb2os does not assume: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
                "use EKS Pod Identity (the container endpoint) or instance metadata");
    env_map with_keys = irsa;
    with_keys.insert({{"AWS_ACCESS_KEY_ID", "AKIAENV"}, {"AWS_SECRET_ACCESS_KEY", "e"}});
    CHECK(ddb2os::default_credentials_chain(ddb2os::environment_from(home.env(with_keys))).load().access_key_id() == "AKIAENV");
}

TEST_CASE("credentials: a malformed file is an error citing the line, never its text") {
    temp_home home;
    const std::string path = home.path(".aws/credentials");
    const auto err = [&](const std::string& text) {
        home.write(".aws/credentials", text);
        return error_of([&] { load_profile(home.env()); });
    };
    const std::string at = " of shared credentials file \"" + path + "\" ";
    CHECK(err("[default]\naws_secret_access_key " + std::string(secret) + "\n") ==
          "[ddb2os.credentials.bad_file] line 2" + at + "is not a [section], a key = value, or a comment");
    CHECK(err("aws_access_key_id = AKID\n") == "[ddb2os.credentials.bad_file] line 1" + at + "is outside any [section]");
    CHECK(err("\n[default\n") == "[ddb2os.credentials.bad_file] line 2" + at + "has a '[' without its ']'");
    CHECK(err("[default] x\n") == "[ddb2os.credentials.bad_file] line 1" + at + "has text after its [section]");
    CHECK(err("[ ]\n") == "[ddb2os.credentials.bad_file] line 1" + at + "has an empty [section] name");
    CHECK(err("[default]\n= AKID\n") == "[ddb2os.credentials.bad_file] line 2" + at + "has an empty key");
    CHECK(err("[default]\naws_secret_access_key " + std::string(secret) + "\n").find(secret) == std::string::npos);
}

TEST_CASE("credentials: a half-set profile names the profile, the file and what is missing") {
    temp_home home;
    const std::string path = home.path(".aws/credentials");
    const auto err = [&](const std::string& text, env_map extra = {}) {
        home.write(".aws/credentials", text);
        return error_of([&] { load_profile(home.env(std::move(extra))); });
    };
    const std::string where = "profile \"default\" in shared credentials file \"" + path + "\"";
    CHECK(err("[default]\naws_access_key_id = AKID\n") ==
          "[ddb2os.credentials.incomplete] " + where + " sets aws_access_key_id but not aws_secret_access_key");
    CHECK(err("[default]\naws_access_key_id = AKID\naws_secret_access_key =\n") ==
          "[ddb2os.credentials.incomplete] " + where + " sets aws_access_key_id but not aws_secret_access_key");
    const std::string e = err(std::string("[default]\naws_secret_access_key = ") + secret + "\naws_session_token = " + token + "\n");
    CHECK(e == "[ddb2os.credentials.incomplete] " + where +
                   " sets aws_secret_access_key and aws_session_token but not aws_access_key_id");
    CHECK(e.find(secret) == std::string::npos);
    CHECK(e.find(token) == std::string::npos);
    home.write(".aws/config", "[profile dev]\naws_access_key_id = AKID\n");
    CHECK(err("", {{"AWS_PROFILE", "dev"}}) == "[ddb2os.credentials.incomplete] profile \"dev\" in config file \"" +
                                                   home.path(".aws/config") +
                                                   "\" sets aws_access_key_id but not aws_secret_access_key");
}

TEST_CASE("credentials: a named profile without keys finds nothing, so the chain goes on") {
    // AWS_PROFILE for a profile that sets only a region, the credentials coming from the instance's
    // role: not the error for a profile that is in no file.
    temp_home home;
    home.write(".aws/config", "[profile dev]\nregion = eu-west-1\n");
    const auto r = ddb2os::profile_credentials(ddb2os::environment_from(home.env({{"AWS_PROFILE", "dev"}}))).lookup();
    CHECK_FALSE(r.found.has_value());
    CHECK(r.tried == "profile \"dev\" in shared credentials file \"" + home.path(".aws/credentials") +
                         "\" (no such file); profile \"dev\" in config file \"" + home.path(".aws/config") +
                         "\" (no aws_access_key_id)");
}

TEST_CASE("credentials: a file that exists but cannot be read is an error") {
    temp_home home;
    fs::create_directories(home.dir / "adir");
    CHECK(error_of([&] { load_profile(home.env({{"AWS_SHARED_CREDENTIALS_FILE", home.path("adir")}})); }) ==
          "[ddb2os.credentials.unreadable] cannot read shared credentials file \"" + home.path("adir") + "\"");
}

TEST_CASE("credentials: the chain takes the environment first, then profiles") {
    temp_home home;
    home.write(".aws/credentials", "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = f\n");
    const env_map with_env = home.env({{"AWS_ACCESS_KEY_ID", "AKIAENV"}, {"AWS_SECRET_ACCESS_KEY", "e"}});
    CHECK(ddb2os::default_credentials_chain(ddb2os::environment_from(with_env)).load().access_key_id() == "AKIAENV");
    CHECK(ddb2os::default_credentials_chain(ddb2os::environment_from(home.env())).load().access_key_id() == "AKIAFILE");
    // A half-set environment stops the chain: it never falls through to other credentials.
    const env_map half = home.env({{"AWS_ACCESS_KEY_ID", "AKIAENV"}});
    CHECK(error_of([&] { ddb2os::default_credentials_chain(ddb2os::environment_from(half)).load(); }) ==
          "[ddb2os.credentials.incomplete] environment sets AWS_ACCESS_KEY_ID but not AWS_SECRET_ACCESS_KEY");
    CHECK(ddb2os::default_credentials_chain(ddb2os::environment_from({})).size() == 2);
}

TEST_CASE("credentials: no source at all lists everything that was tried") {
    temp_home home;
    home.write(".aws/config", "[default]\nregion = us-east-1\n");
    const std::string message =
        error_of([&] { ddb2os::default_credentials_chain(ddb2os::environment_from(home.env())).load(); });
    CHECK(message ==
          "[ddb2os.credentials.missing] no AWS credentials found; tried: "
          "environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (not set); "
          "profile \"default\" in shared credentials file \"" + home.path(".aws/credentials") + "\" (no such file); "
          "profile \"default\" in config file \"" + home.path(".aws/config") + "\" (no aws_access_key_id)");
    home.write(".aws/credentials", "[other]\naws_access_key_id = A\naws_secret_access_key = B\n");
    CHECK(error_of([&] { ddb2os::default_credentials_chain(ddb2os::environment_from(home.env())).load(); })
              .find("shared credentials file \"" + home.path(".aws/credentials") + "\" (no such profile)") !=
          std::string::npos);
    CHECK(error_of([] { ddb2os::credentials_chain().load(); }) ==
          "[ddb2os.credentials.missing] no AWS credentials found; tried: no sources");
}

TEST_CASE("credentials: the chain takes more sources (the transport adds container and IMDS ones)") {
    struct fixed final : ddb2os::credentials_provider {
        int calls = 0;
        ddb2os::credentials_lookup lookup() override {
            ++calls;
            return {credentials("AKIAFIXED", "x"), {}};
        }
    };
    ddb2os::credentials_chain chain = ddb2os::default_credentials_chain(ddb2os::environment_from({}));
    auto source = std::make_unique<fixed>();
    fixed* seen = source.get();
    chain.add(std::move(source));
    CHECK(chain.load().access_key_id() == "AKIAFIXED");
    CHECK(seen->calls == 1);
}

TEST_CASE("credentials: process_environment reads the real environment") {
    // Read-only: PATH is set in any test environment; a made-up name is not.
    const ddb2os::environment env = ddb2os::process_environment();
    CHECK(env("PATH").has_value());
    CHECK_FALSE(env("DDB2OS_SURELY_UNSET_VARIABLE_9F3A").has_value());
}
