"""ddb2os.handler's configuration: read once at cold start, every invalid value a clear error."""
import decimal
import json
import pathlib
import re
import socket
import sys

import pytest

import ddb2os
from ddb2os import _core
from ddb2os._handler import config_from_environment, parse_table_keys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from local_server import LocalServer, all_succeeded  # noqa: E402

BASE = {"OPENSEARCH_ENDPOINT": "https://search-books.us-east-1.es.amazonaws.com", "AWS_REGION": "us-east-1"}


def config(**env):
    return config_from_environment({**BASE, **env})


def error(**env):
    with pytest.raises(ddb2os.OptionError) as e:
        config_from_environment(env)
    assert e.value.id == "option.invalid"
    return e.value.message


def test_defaults_for_a_managed_domain():
    c = config()
    assert c["endpoint"] == "https://search-books.us-east-1.es.amazonaws.com"
    assert (c["auth"], c["service"], c["region"]) == ("sigv4", "es", "us-east-1")
    assert (c["index"], c["refresh"], c["dlq_index"]) == ("", "", "{index}-dlq")
    assert (c["numbers"], c["lists"], c["max_bytes"], c["max_actions"]) == ("exact", "stringify", 5 * 2**20, 1000)
    assert c["first_body_bytes"] == 256 * 2**10
    assert config(FIRST_BULK_BYTES="0")["first_body_bytes"] == 0
    assert config(FIRST_BULK_BYTES="65536")["first_body_bytes"] == 65536
    assert c["dynamodb_endpoint"] == "https://dynamodb.us-east-1.amazonaws.com"
    assert config(OPENSEARCH_ENDPOINT="abc.us-east-1.aoss.amazonaws.com")["service"] == "aoss"
    # China regions' domains end in .amazonaws.com.cn (before: not signed, every request refused).
    cn = config(OPENSEARCH_ENDPOINT="search-x.cn-north-1.es.amazonaws.com.cn", AWS_REGION="cn-north-1")
    assert (cn["auth"], cn["service"]) == ("sigv4", "es")
    assert cn["dynamodb_endpoint"] == "https://dynamodb.cn-north-1.amazonaws.com.cn"
    assert config(OPENSEARCH_ENDPOINT="abc.cn-north-1.aoss.amazonaws.com.cn", AWS_REGION="cn-north-1")["service"] == "aoss"
    assert config(OPENSEARCH_ENDPOINT="http://localhost:9200")["auth"] == "none"


def test_the_founding_lambdas_variable_names():
    c = config_from_environment({"ES_ENDPOINT": "search-x.eu-west-1.es.amazonaws.com", "AWS_REGION": "eu-west-1",
                                 "ES_INDEX": "books", "DB_HASH_KEY": "author", "DB_SORT_KEY": "bookTitle"})
    assert c["endpoint"] == "https://search-x.eu-west-1.es.amazonaws.com"
    assert c["index"] == "books"
    assert c["default_keys"] == ["author", "bookTitle"]
    assert config_from_environment({"HOST": "http://127.0.0.1:9200"})["endpoint"] == "http://127.0.0.1:9200"


def test_table_keys():
    assert parse_table_keys("books=author,bookTitle; users=id;") == {"books": ["author", "bookTitle"], "users": ["id"]}
    for bad in ["books", "books=", "=id", "t=a,b,c", "t=a,"]:
        with pytest.raises(ddb2os.OptionError, match="must look like table=partitionKey"):
            parse_table_keys(bad)
    # A table given twice: which entry was meant cannot be known (the last one was kept, silently).
    for twice in ["books=a;books=b,c", "books=a; books =a"]:
        with pytest.raises(ddb2os.OptionError) as e:
            parse_table_keys(twice)
        assert e.value.message == "TABLE_KEYS names table 'books' twice"


def test_every_invalid_setting_is_named():
    assert error() == "OPENSEARCH_ENDPOINT is not set (also read as ES_ENDPOINT or HOST): the OpenSearch URL to write to"
    assert error(OPENSEARCH_ENDPOINT="ftp://x") == "OPENSEARCH_ENDPOINT 'ftp://x' is not an http(s) URL"
    assert error(**BASE, INDEX_TEMPLATE="books") == "INDEX_TEMPLATE must contain {table}"
    assert error(**BASE, INDEX_NAME="books", INDEX_TEMPLATE="search-{table}") == (
        "INDEX_NAME and INDEX_TEMPLATE are both set: set one (a fixed index, or a template with {table})")
    assert error(**BASE, DB_SORT_KEY="s") == "DB_SORT_KEY is set but DB_HASH_KEY is not"
    # Index names are checked at the cold start by the engine's rules, the message naming the variable (before,
    # the engine refused them without naming it, or, for a template in INDEX_NAME, took it as a template).
    assert error(**BASE, INDEX_NAME="Books") == 'INDEX_NAME: index name "Books" is invalid: it must be lowercase'
    assert error(**BASE, ES_INDEX="_books") == (
        "ES_INDEX: index name \"_books\" is invalid: it must not start with '_', '-' or '+'")
    assert error(**BASE, INDEX_TEMPLATE="X-{table}").startswith('INDEX_TEMPLATE: index template "X-{table}" gives no valid')
    assert error(**BASE, DLQ_INDEX="{index}-DLQ") == 'DLQ_INDEX: index name "{index}-DLQ" is invalid: it must be lowercase'
    assert config(DLQ_INDEX="dead-{index}")["dlq_index"] == "dead-{index}"
    assert error(**BASE, DLQ_INDEX="dead-{table}") == (
        "DLQ_INDEX must not contain {table}: only {index} is replaced (by the record's index name)")
    # A fixed index stands for {index}: 252 bytes fit, its default dead-letter index (+ "-dlq") does not.
    assert error(**BASE, INDEX_NAME="a" * 252) == (
        'the default DLQ_INDEX ({index}-dlq): index name "{index}-dlq" with INDEX_NAME\'s index (252 bytes) as {index} '
        'is invalid: it is longer than 255 bytes')
    assert error(**BASE, ES_INDEX="é" * 126, DLQ_INDEX="{index}-dead") == (
        'DLQ_INDEX: index name "{index}-dead" with ES_INDEX\'s index (252 bytes) as {index} is invalid: '
        'it is longer than 255 bytes')
    assert config(INDEX_NAME="a" * 252, DLQ_INDEX="dead")["dlq_index"] == "dead"
    assert config(INDEX_NAME="x-{table}")["index"] == "x-{table}"  # a template, as INDEX_TEMPLATE
    assert error(**BASE, INDEX_TEMPLATE="x-{table}", ES_INDEX="y") == (
        "INDEX_TEMPLATE and ES_INDEX are both set: set one (a fixed index, or a template with {table})")
    assert error(**BASE, INDEX_NAME="a", INDEX_TEMPLATE="x-{table}", ES_INDEX="y") == (
        "INDEX_NAME, INDEX_TEMPLATE and ES_INDEX are all set: set one (a fixed index, or a template with {table})")
    # An alias is named as it was set.
    assert error(OPENSEARCH_AUTH="none", ES_ENDPOINT="http://u:p@localhost:9200") == (
        "ES_ENDPOINT must not hold a user name or password (user:password@host): "
        "set OPENSEARCH_USERNAME and OPENSEARCH_PASSWORD instead")
    assert config(DYNAMODB_ENDPOINT="http://localhost:8000", AWS_REGION="", AWS_DEFAULT_REGION="eu-west-1")[
        "region"] == "eu-west-1"
    assert error(**BASE, DB_HASH_KEY="id", DB_SORT_KEY="id") == "DB_HASH_KEY and DB_SORT_KEY name the same attribute 'id'"
    assert error(**BASE, TABLE_KEYS="books=author,bookTitle;t=a,a") == "TABLE_KEYS entry 't=a,a' names 'a' twice"
    assert error(**BASE, OPENSEARCH_USERNAME="u") == (
        "OPENSEARCH_USERNAME and OPENSEARCH_PASSWORD go together: one is set without the other")
    assert error(**BASE, OPENSEARCH_AUTH="kerberos") == "OPENSEARCH_AUTH must be sigv4, basic or none, not 'kerberos'"
    assert error(**BASE, OPENSEARCH_SERVICE="s3") == "OPENSEARCH_SERVICE must be es or aoss, not 's3'"
    assert error(OPENSEARCH_ENDPOINT=BASE["OPENSEARCH_ENDPOINT"]) == "AWS_REGION is not set: SigV4 signing needs the region"
    assert error(**BASE, REFRESH="sometimes") == "REFRESH must be false (the default), true or wait_for, not 'sometimes'"
    assert error(**BASE, SKIP_TTL_DELETES="maybe") == "SKIP_TTL_DELETES must be true or false, not 'maybe'"
    assert error(**BASE, NUMBERS="float") == "NUMBERS must be exact, string or double, not 'float'"
    assert error(**BASE, LISTS="merge") == "LISTS must be stringify or keep, not 'merge'"
    assert error(**BASE, EXCLUDE_ATTRIBUTES="ssn,,x") == "EXCLUDE_ATTRIBUTES must be attribute names separated by commas, not 'ssn,,x'"
    assert config(EXCLUDE_ATTRIBUTES=" ssn , card number ")["exclude"] == ["ssn", "card number"]
    # ASCII whitespace only, as the CLI's --exclude and --keys trim: U+00A0 and \x1f are part of a name.
    names = config(EXCLUDE_ATTRIBUTES="\tssn\r,\v\fcard\n,\u00a0x,\x1fy")["exclude"]
    assert names == ["ssn", "card", "\u00a0x", "\x1fy"]
    assert parse_table_keys("\u00a0t = a ,\x1fb") == {"\u00a0t": ["a", "\x1fb"]}
    assert config()["exclude"] == config(EXCLUDE_ATTRIBUTES=" ")["exclude"] == []
    assert config(INCLUDE_ATTRIBUTES="title, author")["include"] == ["title", "author"] and config()["include"] == []
    assert error(**BASE, INCLUDE_ATTRIBUTES=",title") == "INCLUDE_ATTRIBUTES must be attribute names separated by commas, not ',title'"
    assert error(**BASE, MAX_BULK_BYTES="5MB") == "MAX_BULK_BYTES must be a whole number, not '5MB'"
    # int() would take these: no shell or CLI reading the same setting would.
    assert error(**BASE, MAX_BULK_BYTES="1_000_000") == "MAX_BULK_BYTES must be a whole number, not '1_000_000'"
    assert error(**BASE, MAX_BULK_BYTES="+-1") == "MAX_BULK_BYTES must be a whole number, not '+-1'"
    assert error(**BASE, MAX_BULK_BYTES="\u0663\u0662\u0660\u0660") == \
        "MAX_BULK_BYTES must be a whole number, not '\u0663\u0662\u0660\u0660'"
    assert error(**BASE, MAX_BULK_ACTIONS="0") == "MAX_BULK_ACTIONS must be positive, not '0'"
    # More than 4300 digits, which int() refuses in words of its own from Python 3.11 on: still the setting's error.
    huge = "9" * 5000
    assert error(**BASE, MAX_BULK_BYTES=huge) == f"MAX_BULK_BYTES must be at most {2**31 - 1}, not {huge!r}"
    assert error(**BASE, MAX_BULK_BYTES="-" + huge) == f"MAX_BULK_BYTES must be at least 64, not {'-' + huge!r}"
    assert error(**BASE, MAX_BULK_ACTIONS="-" + huge) == f"MAX_BULK_ACTIONS must be positive, not {'-' + huge!r}"
    assert config(MAX_BULK_ACTIONS="0" * 5000 + "7")["max_actions"] == 7
    assert error(**BASE, FIRST_BULK_BYTES="-1") == "FIRST_BULK_BYTES must be at least 64, not '-1'"
    # The engine's own lower bounds, named by the variable (not the engine's option name).
    assert error(**BASE, MAX_BULK_BYTES="10") == "MAX_BULK_BYTES must be at least 64, not '10'"
    assert error(**BASE, FIRST_BULK_BYTES="10") == "FIRST_BULK_BYTES must be at least 64, not '10'"
    # A path would be dropped (requests go to /_bulk at the root), not used.
    assert error(**{**BASE, "OPENSEARCH_ENDPOINT": "https://proxy.example.com/opensearch"}) == (
        "OPENSEARCH_ENDPOINT 'https://proxy.example.com/...' must be a scheme, host and port only, "
        "without a path or query (not shown: it could hold a token)")
    # A query or path can carry a token: no message quotes it, whatever else is wrong.
    for url, problem, head in (
            ("https://h.example.com/?api_key=S3CRET", "must be a scheme, host and port only", "'https://h.example.com/...'"),
            ("https://h.example.com:abc/?api_key=S3CRET", "has a port that is not a number", "'https://h.example.com:abc/...'"),
            ("ftp://h.example.com/x?token=S3CRET", "is not an http(s) URL", "'ftp://h.example.com/...'"),
            ("https://h.example.com#S3CRET", "must be a scheme, host and port only", "'https://h.example.com/...'"),
            # "://" in the query is no scheme: https:// is assumed, and the query still not quoted
            ("h.example.com/?api_key=S3CRET&next=https://x", "must be a scheme, host and port only",
             "'https://h.example.com/...'")):
        message = error(**{**BASE, "OPENSEARCH_ENDPOINT": url})
        assert problem in message and "S3CRET" not in message and f"OPENSEARCH_ENDPOINT {head} " in message, message
    assert config(OPENSEARCH_ENDPOINT="https://os.example.com:9200/")["endpoint"] == "https://os.example.com:9200"
    # Two endpoints that differ: which was meant cannot be known (before, OPENSEARCH_ENDPOINT silently won).
    assert error(**BASE, ES_ENDPOINT="https://other.example.com") == (
        "OPENSEARCH_ENDPOINT and ES_ENDPOINT are both set, to different URLs: set one")
    # The same cluster written differently is one URL: no scheme, a trailing slash, the default port, upper case.
    for same in ("search-books.us-east-1.es.amazonaws.com", BASE["OPENSEARCH_ENDPOINT"] + "/",
                 BASE["OPENSEARCH_ENDPOINT"] + ":443", "https://Search-Books.us-east-1.es.amazonaws.com"):
        assert config(ES_ENDPOINT=same)["endpoint"] == BASE["OPENSEARCH_ENDPOINT"]
    for other in ("http://search-books.us-east-1.es.amazonaws.com", BASE["OPENSEARCH_ENDPOINT"] + ":9200"):
        assert error(**BASE, ES_ENDPOINT=other) == "OPENSEARCH_ENDPOINT and ES_ENDPOINT are both set, to different URLs: set one"
    assert config(HOST="myhost")["endpoint"] == BASE["OPENSEARCH_ENDPOINT"]  # shells set HOST: not compared
    assert error(**BASE, OPENSEARCH_CA_FILE="/nonexistent/ca.pem") == "OPENSEARCH_CA_FILE '/nonexistent/ca.pem' is not a readable file"


def test_endpoints_ports_and_sizes_are_checked_at_cold_start():
    assert error(**{**BASE, "OPENSEARCH_ENDPOINT": "https://h:abc"}) == (
        "OPENSEARCH_ENDPOINT 'https://h:abc' has a port that is not a number from 1 to 65535")
    assert error(**{**BASE, "OPENSEARCH_ENDPOINT": "https://h:99999"}) == (
        "OPENSEARCH_ENDPOINT 'https://h:99999' has a port that is not a number from 1 to 65535")
    assert error(**{**BASE, "OPENSEARCH_ENDPOINT": "https://h:0"}) == "OPENSEARCH_ENDPOINT 'https://h:0' is not an http(s) URL"
    assert error(**{**BASE, "OPENSEARCH_ENDPOINT": "https://h:"}) == (
        "OPENSEARCH_ENDPOINT 'https://h:' has a port that is not a number from 1 to 65535")
    assert error(**BASE, DYNAMODB_ENDPOINT="dynamodb.local:abc") == (
        "DYNAMODB_ENDPOINT 'https://dynamodb.local:abc' has a port that is not a number from 1 to 65535")
    assert error(**BASE, DYNAMODB_ENDPOINT="http://localhost:8000/ddb") == (
        "DYNAMODB_ENDPOINT 'http://localhost:8000/...' must be a scheme, host and port only, without a path or query "
        "(not shown: it could hold a token)")
    message = error(**BASE, DYNAMODB_ENDPOINT="http://u:Pa55word@localhost:8000")
    assert message == "DYNAMODB_ENDPOINT must not hold a user name or password (user:password@host)"
    assert config(DYNAMODB_ENDPOINT="http://localhost:8000/")["dynamodb_endpoint"] == "http://localhost:8000"
    assert config(DYNAMODB_ENDPOINT="localhost:8000")["dynamodb_endpoint"] == "https://localhost:8000"
    # urlsplit's own ValueError (an unbalanced bracket) named no variable; a space in the host failed every batch.
    assert error(**{**BASE, "OPENSEARCH_ENDPOINT": "http://[::1"}) == (
        "OPENSEARCH_ENDPOINT 'http://[::1' is not a URL (an unbalanced '[' or ']')")
    assert error(**BASE, DYNAMODB_ENDPOINT="http://::1]:8000") == (
        "DYNAMODB_ENDPOINT 'http://::1]:8000' is not a URL (an unbalanced '[' or ']')")
    assert error(**{**BASE, "OPENSEARCH_ENDPOINT": "https://admin:pa[ss@host"}).startswith(
        "OPENSEARCH_ENDPOINT must not hold a user name or password")
    assert error(**{**BASE, "OPENSEARCH_ENDPOINT": "http://exa mple.com"}) == (
        "OPENSEARCH_ENDPOINT 'http://exa mple.com' has a space or control character in its host")
    assert config(OPENSEARCH_ENDPOINT="http://[::1]:9200")["endpoint"] == "http://[::1]:9200"
    assert error(**BASE, MAX_BULK_BYTES="99999999999999999999999") == (
        "MAX_BULK_BYTES must be at most 2147483647, not '99999999999999999999999'")
    assert error(**BASE, MAX_BULK_BYTES="2147483648") == "MAX_BULK_BYTES must be at most 2147483647, not '2147483648'"
    assert config(MAX_BULK_BYTES="2147483647")["max_bytes"] == 2**31 - 1
    assert error(**BASE, OPENSEARCH_CONNECT_TIMEOUT_MS="1000000") == (
        "OPENSEARCH_CONNECT_TIMEOUT_MS must be at most 900000, not '1000000'")


def test_options_the_engine_checks_fail_at_cold_start_too(monkeypatch):
    # The handler's config refuses these already (test_every_invalid_setting_is_named); the engine checks a config built otherwise.
    c = config(OPENSEARCH_AUTH="none")
    c["dlq_index"] = "Bad Name"
    with pytest.raises(ddb2os.OptionError, match=r'dead-letter index "Bad Name" is invalid: it must be lowercase'):
        _core.SyncEngine(c, {})
    c = config(OPENSEARCH_AUTH="none")
    c["index"] = "Books"
    with pytest.raises(ddb2os.OptionError, match=r'index name "Books" is invalid: it must be lowercase'):
        _core.SyncEngine(c, {})


def test_switches_and_secrets():
    c = config(REFRESH="wait_for", DLQ_INDEX="off", SKIP_TTL_DELETES="true", OPENSEARCH_USERNAME="admin",
               OPENSEARCH_PASSWORD="hunter2-secret", OPENSEARCH_ENDPOINT="https://os.internal:9200")
    assert (c["refresh"], c["dlq_index"], c["skip_ttl_deletes"], c["auth"]) == ("wait_for", "", True, "basic")
    # The configuration holds no password, so no copy of it can show one (only repr masked it: a review
    # found it in dict(c), c.copy(), c | {} and json.dumps(c)); the engine reads it from the environment.
    for shown in (repr(c), str(dict(c)), str(c.copy()), str(c | {}), json.dumps(c)):
        assert "hunter2-secret" not in shown
    assert config(REFRESH="true")["refresh"] == "true"
    # Dead letters off as every switch is off (0 and no named indexes "0" and "no"); the data index refused.
    for off in ("0", "no", "false", "off", "none", " ", ""):
        assert config(DLQ_INDEX=off)["dlq_index"] == ""
    for same in ("{index}", " {index} "):
        assert error(**BASE, DLQ_INDEX=same) == f"DLQ_INDEX {same!r} is the data index itself: give the dead letters an index of their own"
    assert error(**BASE, INDEX_NAME="books", DLQ_INDEX="books") == (
        "DLQ_INDEX 'books' is the data index itself: give the dead letters an index of their own")
    assert config(INDEX_NAME="books", DLQ_INDEX="books-dlq")["dlq_index"] == "books-dlq"


def test_switch_spellings_and_defaults_the_readme_gives():
    """README: REFRESH off as false, 0, no, off (and unset); true as 1, yes, on; the other switches alike."""
    for off in ("false", "0", "no", "off", "FALSE", " Off "):
        assert config(REFRESH=off)["refresh"] == ""
        assert config(SKIP_TTL_DELETES=off)["skip_ttl_deletes"] is False
        assert config(OPENSEARCH_GZIP=off)["gzip"] is False
    for on in ("true", "1", "yes", "on", "TRUE", " Yes "):
        assert config(REFRESH=on)["refresh"] == "true"
        assert config(SKIP_TTL_DELETES=on)["skip_ttl_deletes"] is True
        assert config(OPENSEARCH_GZIP=on)["gzip"] is True
    c = config()
    assert (c["refresh"], c["skip_ttl_deletes"], c["gzip"], c["connect_timeout_ms"]) == ("", False, False, 3000)
    assert config(OPENSEARCH_CONNECT_TIMEOUT_MS="250")["connect_timeout_ms"] == 250


def test_a_user_name_means_basic_authentication_on_an_aws_host_too():
    """README: unset OPENSEARCH_AUTH is basic when OPENSEARCH_USERNAME is set, whatever the host (a managed
    domain's fine-grained access control master user); SigV4 there would be refused every batch."""
    for endpoint, region in (("https://search-books.us-east-1.es.amazonaws.com", "us-east-1"),
                             ("search-x.cn-north-1.es.amazonaws.com.cn", "cn-north-1")):
        c = config(OPENSEARCH_ENDPOINT=endpoint, AWS_REGION=region, OPENSEARCH_USERNAME="master",
                   OPENSEARCH_PASSWORD="pw")
        assert (c["auth"], c["username"]) == ("basic", "master")
    assert config(OPENSEARCH_USERNAME="master", OPENSEARCH_PASSWORD="pw", OPENSEARCH_AUTH="sigv4")["auth"] == "sigv4"


def test_region_user_name_host_and_ca_file():
    # Trimmed, and a blank AWS_REGION leaves AWS_DEFAULT_REGION (before: "us-east-1 " was signed into every
    # request's scope and DynamoDB's host, and " " hid AWS_DEFAULT_REGION).
    c = config(AWS_REGION="us-east-1 ")
    assert (c["region"], c["dynamodb_endpoint"]) == ("us-east-1", "https://dynamodb.us-east-1.amazonaws.com")
    assert config(AWS_REGION=" ", AWS_DEFAULT_REGION="eu-west-1")["region"] == "eu-west-1"
    assert error(**{**BASE, "AWS_REGION": "US-EAST-1"}) == (
        "AWS_REGION must be a region name such as us-east-1 (lowercase letters, digits and '-'), not 'US-EAST-1'")
    assert error(**{**BASE, "AWS_REGION": "", "AWS_DEFAULT_REGION": "us east"}) == (
        "AWS_DEFAULT_REGION must be a region name such as us-east-1 (lowercase letters, digits and '-'), not 'us east'")
    # HTTP Basic joins user and password with ':': such a user name is refused every request (401).
    assert error(OPENSEARCH_ENDPOINT="http://localhost:9200", OPENSEARCH_USERNAME="a:b", OPENSEARCH_PASSWORD="p") == (
        "OPENSEARCH_USERNAME must not hold ':' (HTTP Basic authentication cannot carry it)")
    # ... only when Basic is what is used: a leftover user name with another authentication is never sent.
    assert config(OPENSEARCH_AUTH="none", OPENSEARCH_USERNAME="svc:x", OPENSEARCH_PASSWORD="p")["auth"] == "none"
    # A fully qualified host name (a trailing dot) is the same host: signed (it was sent unsigned).
    c = config(OPENSEARCH_ENDPOINT="https://search-books.us-east-1.es.amazonaws.com.")
    assert (c["auth"], c["service"]) == ("sigv4", "es")
    assert config(OPENSEARCH_ENDPOINT="abc.us-east-1.aoss.amazonaws.com.")["service"] == "aoss"
    assert error(**BASE, OPENSEARCH_CA_FILE="/nonexistent/ca.pem") == "OPENSEARCH_CA_FILE '/nonexistent/ca.pem' is not a readable file"
    assert error(**BASE, OPENSEARCH_CA_FILE="/tmp") == "OPENSEARCH_CA_FILE '/tmp' is not a readable file"


def test_a_password_in_the_endpoint_is_refused_and_never_quoted():
    for url in ("https://admin:S3cr3tPass@search.example.com", "ftp://admin:S3cr3tPass@search.example.com",
                "admin:S3cr3tPass@search.example.com:9200"):
        message = error(**{**BASE, "OPENSEARCH_ENDPOINT": url})
        assert "S3cr3tPass" not in message
        assert message.startswith("OPENSEARCH_ENDPOINT must not hold a user name or password")
    # A password holding "/", "?" or "#" ends the URL's host part early: urlsplit then sees no user, and the
    # port or path check quoted the whole URL (found by a review).
    for secret in ("Pa/ss#w0rd", "S3cr?t", "12345/678", "hunter#2"):
        for var in ("OPENSEARCH_ENDPOINT", "DYNAMODB_ENDPOINT"):
            for url in (f"https://admin:{secret}@search.example.com", f"admin:{secret}@search.example.com"):
                message = error(**{**BASE, var: url})
                assert secret not in message
                assert message.startswith(f"{var} must not hold a user name or password")
    # urlsplit reads the host after NFKC normalization, where a full-width @ is one: "@" in the URL missed it,
    # and the error for the normalized host quoted the password (found by a review).
    for at in ("\uff20", "\ufe6b"):
        for var in ("OPENSEARCH_ENDPOINT", "DYNAMODB_ENDPOINT"):
            message = error(**{**BASE, var: f"https://admin:S3cr3tPass{at}search.example.com"})
            assert "S3cr3tPass" not in message
            assert message.startswith(f"{var} must not hold a user name or password")
    # A host character that normalizes to / ? # or : is said to be one (not "an unbalanced [ or ]").
    assert error(**{**BASE, "OPENSEARCH_ENDPOINT": "https://search\uff0fbooks.example.com"}) == (
        "OPENSEARCH_ENDPOINT 'https://search\uff0fbooks.example.com' is not a URL "
        "(a character of its host is one of / ? # : once normalized)")
    assert error(**{**BASE, "OPENSEARCH_ENDPOINT": "https://[::1"}) == (
        "OPENSEARCH_ENDPOINT 'https://[::1' is not a URL (an unbalanced '[' or ']')")


def test_key_names_that_are_not_unicode_are_refused_by_their_variable():
    """os.environ gives bytes that are not UTF-8 as lone surrogates: TABLE_KEYS, DB_HASH_KEY and DB_SORT_KEY were
    taken, and the engine then refused them at the cold start with pybind11's RuntimeError, naming nothing."""
    for var, value in (("TABLE_KEYS", "bo\udcffoks=id"), ("TABLE_KEYS", "books=i\udcffd"), ("DB_HASH_KEY", "i\udcffd"),
                       ("DB_SORT_KEY", "s\udcff")):
        env = {**BASE, "DB_HASH_KEY": "id", var: value}
        assert error(**env) == f"{var} is not valid Unicode (it holds a lone surrogate: bytes that are not UTF-8)"


def test_the_engine_never_quotes_its_arguments():
    env = {"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-SECRET"}
    for args in ((None, env), (config(OPENSEARCH_AUTH="none"), list(env.items()))):
        with pytest.raises(ddb2os.OptionError) as e:
            _core.SyncEngine(*args)
        assert "SECRET" not in str(e.value) and "SECRET" not in repr(e.value)
    # A call that matches no signature: pybind11's own TypeError would quote every argument.
    for make, message in ((lambda: _core.SyncEngine(config(OPENSEARCH_AUTH="none"), env, extra=1),
                           "SyncEngine() got an unexpected keyword argument 'extra'"),
                          (lambda: _core.SyncEngine(env), "SyncEngine() missing required argument 'environment'"),
                          (lambda: _core.SyncEngine(config(OPENSEARCH_AUTH="none"), env, env),
                           "SyncEngine() takes at most 2 positional arguments"),
                          (lambda: _core.SyncEngine(config(OPENSEARCH_AUTH="none"), env, credentials_from=env),
                           "a SyncEngine object is needed, not dict")):
        with pytest.raises(TypeError) as e:
            make()
        assert str(e.value) == message
    # Environment values as os.environ gives bytes that are not UTF-8 (lone surrogates): taken as the bytes
    # they were (before, an unrelated variable stopped the engine with pybind11's RuntimeError), and a
    # configured password that cannot be UTF-8 is refused by name, never quoted.
    _core.SyncEngine(config(OPENSEARCH_AUTH="none"), {"LANG_X": "caf\udce9", "AWS_SECRET_ACCESS_KEY": "wJal\udcffSECRET"})
    # The password is read from the environment (the configuration holds none): as the bytes it was.
    basic = config(OPENSEARCH_ENDPOINT="http://localhost:9200", OPENSEARCH_USERNAME="u", OPENSEARCH_PASSWORD="pw\udcffSECRET")
    _core.SyncEngine(basic, {"OPENSEARCH_PASSWORD": "pw\udcffSECRET"})
    for env in ({}, {"OPENSEARCH_PASSWORD": ""}):
        with pytest.raises(ddb2os.OptionError) as e:
            _core.SyncEngine(basic, env)
        assert e.value.message == "OPENSEARCH_PASSWORD is not set in the environment: basic authentication needs it"
    with pytest.raises(ddb2os.OptionError) as e:
        _core.SyncEngine(config(OPENSEARCH_AUTH="none"), {"X": 5})
    assert e.value.message == "an environment variable's value must be a str, not int"
    engine = _core.SyncEngine(config(OPENSEARCH_AUTH="none", OPENSEARCH_ENDPOINT="http://127.0.0.1:9"), {})
    event = {"Records": [{"dynamodb": {"NewImage": {"ssn": {"S": "123-45-6789"}}}}]}
    for seconds in ("5", True, 0, -5, float("nan")):
        with pytest.raises(ddb2os.OptionError) as e:
            engine.process(event, seconds)
        assert str(e.value) == f"[ddb2os.option.invalid] seconds must be a positive number, not {type(seconds).__name__}"
    with pytest.raises(TypeError) as e:
        engine.process(event)
    assert str(e.value) == "process() missing required argument 'seconds'"


def test_process_counts_ttl_deletes_skipped_without_a_request():
    """SKIP_TTL_DELETES: a batch of TTL removes only sends nothing (the endpoint is closed), and process()
    and its log line say how many there were and were skipped."""
    engine = _core.SyncEngine(config(OPENSEARCH_AUTH="none", OPENSEARCH_ENDPOINT="http://127.0.0.1:9",
                                     SKIP_TTL_DELETES="true", TABLE_KEYS="T=id"), {})
    ttl = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    arn = "arn:aws:dynamodb:us-east-1:1:table/T/stream/x"
    records = [{"eventID": f"e{i}", "eventName": "REMOVE", "eventSourceARN": arn, "userIdentity": ttl,
                "dynamodb": {"ApproximateCreationDateTime": 1, "SequenceNumber": str(i), "Keys": {"id": {"S": f"k{i}"}}}}
               for i in range(3)]
    out = engine.process({"Records": records}, 5)
    assert (out["ttl_deletes"], out["skipped_ttl"], out["requests"], out["failed"]) == (3, 3, 0, 0), out
    log = json.loads(out["log_line"])
    assert (log["TTLDeletes"], log["SkippedTTL"], log["Deleted"]) == (3, 3, 0)


def test_records_from_another_source_fail_the_invocation(monkeypatch):
    """A Kinesis data stream's records would each become a dead letter and the batch be acknowledged."""
    from ddb2os import _handler
    monkeypatch.setattr(_handler.os, "environ", {"OPENSEARCH_ENDPOINT": "http://127.0.0.1:9", "OPENSEARCH_AUTH": "none"})
    _handler._reset_for_tests()
    try:
        kinesis = {"Records": [{"eventSource": "aws:kinesis", "eventID": "shardId-000:1",
                                "kinesis": {"sequenceNumber": "1", "data": "e30="}}]}
        expected = ('[ddb2os.event.shape] Records[0].eventSource: ddb2os reads DynamoDB Streams records; this one\'s '
                    'eventSource is "aws:kinesis" (a Kinesis data stream\'s: read the table\'s DynamoDB stream instead)')
        with pytest.raises(ddb2os.EventError) as e:
            ddb2os.handler(kinesis, None)
        assert str(e.value) == expected
        assert (e.value.path, e.value.id) == ("Records[0].eventSource", "event.shape")
        with pytest.raises(ddb2os.EventError, match=r'Records\[1\].eventSource: .* eventSource is "aws:sqs"$'):
            ddb2os.handler({"Records": [{"eventSource": "aws:dynamodb"}, {"eventSource": "aws:sqs"}]}, None)
        # A bare list of records, as EventBridge Pipes sends them, is checked alike (it was not: a review
        # found each Kinesis record dead-lettered and the batch acknowledged).
        with pytest.raises(ddb2os.EventError) as e:
            ddb2os.handler(kinesis["Records"], None)
        assert str(e.value) == expected.replace("] Records[0]", "] [0]")
        with pytest.raises(ddb2os.EventError, match=r'^\[ddb2os.event.shape\] \[1\].eventSource: .* eventSource is "aws:sqs"$'):
            ddb2os.handler(({"eventSource": "aws:dynamodb"}, {"eventSource": "aws:sqs"}), None)
        with pytest.raises(ddb2os.EventError, match=r"^\[ddb2os.event.shape\] Records\[0\].eventSource: ddb2os reads DynamoDB "
                                                    r"Streams records; this one's eventSource is not the string "
                                                    r'"aws:dynamodb" but a number$'):
            ddb2os.handler({"Records": [{"eventSource": 5}]}, None)
        # The event's raw JSON (what ddb2os.lambda_runtime hands over), as bytes or str, in any spacing, is
        # checked alike, by the engine as it reads each record (it went to the engine unchecked, so a Kinesis
        # batch as bytes was dead-lettered and acknowledged).
        with pytest.raises(ddb2os.EventError) as raw:
            ddb2os.handler(json.dumps(kinesis).encode(), None)
        assert str(raw.value) == expected
        with pytest.raises(ddb2os.EventError, match=r'^\[ddb2os.event.shape\] Records\[1\].eventSource: .* "aws:sqs"$'):
            ddb2os.handler(json.dumps({"Records": [{"eventSource": "aws:dynamodb"}, {"eventSource": "aws:sqs"}]},
                                      indent=2), None)
        with pytest.raises(ddb2os.EventError, match=r'^\[ddb2os.event.shape\] \[0\].eventSource: .* "aws:sqs"$'):
            ddb2os.handler(b'[ {"eventSource" :\t"aws:sqs"} ]', None)
        # A value written with escapes is read as its text (here SQS's).
        with pytest.raises(ddb2os.EventError, match=r'eventSource is "aws:sqs"$'):
            ddb2os.handler(b'{"Records": [{"eventSource": "aws:\\u0073qs"}]}', None)
        # Passed: DynamoDB's records (escaped or not), also with an item attribute named eventSource.
        record = {"eventSource": "aws:dynamodb", "eventName": "REMOVE", "eventID": "1",
                  "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/t/stream/x",
                  "dynamodb": {"Keys": {"id": {"S": "a"}}, "NewImage": {"eventSource": {"S": "aws:kinesis"}},
                               "SequenceNumber": "1", "ApproximateCreationDateTime": 1}}
        for ok in ({"Records": [record]}, [record], json.dumps({"Records": [record]}).encode(),
                   json.dumps({"Records": [record]}).replace('"aws:dynamodb"', '"aws:dynam\\u006fdb"')):
            assert len(ddb2os.bulk_bodies(ok).errors) == 0, ok
    finally:
        _handler._reset_for_tests()


class _Server(LocalServer):
    """For the handler's requests (OpenSearch's _bulk, DynamoDB's DescribeTable); the handler's cold-start state
    is forgotten on leaving."""

    def __exit__(self, *exc):
        from ddb2os import _handler
        _handler._reset_for_tests()
        super().__exit__(*exc)


# A REMOVE of item "a" of table books: a record the handler sends as one delete.
_REMOVE = {"eventID": "e1", "eventName": "REMOVE", "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/books/stream/x",
           "dynamodb": {"Keys": {"id": {"S": "a"}}, "SequenceNumber": "100", "ApproximateCreationDateTime": 1700000000}}


def _run_handler(monkeypatch, env, event):
    from ddb2os import _handler
    monkeypatch.setattr(_handler.os, "environ", env)
    _handler._reset_for_tests()
    return ddb2os.handler(event, None)


def test_basic_authentication_reads_the_password_from_the_environment(monkeypatch, capsys):
    """The configuration holds no password; the engine takes it from the environment and sends it."""
    import base64
    seen = []

    def bulk(path, headers, body):
        seen.append((path, headers.get("Authorization")))
        return 200, all_succeeded(body)

    with _Server(bulk) as server:
        env = {"OPENSEARCH_ENDPOINT": server.url, "OPENSEARCH_USERNAME": "admin", "OPENSEARCH_PASSWORD": "pa55:w0rd-never-shown"}
        event = {"Records": [_REMOVE]}
        assert _run_handler(monkeypatch, env, event) == {"batchItemFailures": []}
        assert seen == [("/_bulk?filter_path=errors,items.*.status,items.*.error",
                         "Basic " + base64.b64encode(b"admin:pa55:w0rd-never-shown").decode())]
        assert "never-shown" not in capsys.readouterr().out


def test_describetable_is_asked_by_the_streams_table_arn(monkeypatch, capsys):
    """A stream from another account names its table by ARN: asked by name alone, DynamoDB answers with
    the caller's own table of that name (a different key here), and every _id would be wrong. The server
    stands in for both DynamoDB (answering by name or ARN as AWS does) and OpenSearch's _bulk."""
    asked, bulks = [], []
    theirs = "arn:aws:dynamodb:us-east-1:222222222222:table/books"

    def serving(describe):
        """_bulk, and DescribeTable answered by describe(TableName) -> (status, key names or an error body)."""
        def answer(path, headers, body):
            if headers.get("X-Amz-Target") != "DynamoDB_20120810.DescribeTable":
                bulks.append(body.decode())
                return 200, all_succeeded(body)
            name = json.loads(body)["TableName"]
            asked.append(name)
            status, keys = describe(name)
            if status != 200:
                return status, keys
            schema = [{"AttributeName": k, "KeyType": t} for k, t in zip(keys, ("HASH", "RANGE"))]
            return 200, json.dumps({"Table": {"TableName": name, "KeySchema": schema}}).encode()
        return _Server(answer)

    # As AWS answers: by ARN, the other account's table; by name, the caller's own "books".
    with serving(lambda name: (200, ["pk", "sk"] if name == theirs else ["id"])) as server:
        env = {"OPENSEARCH_ENDPOINT": server.url, "OPENSEARCH_AUTH": "none", "DYNAMODB_ENDPOINT": server.url,
               "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret-never-shown"}
        keys = {"pk": {"S": "p"}, "sk": {"N": "2"}}
        event = {"Records": [{"eventID": "e1", "eventName": "INSERT", "eventSourceARN": theirs + "/stream/2024-01-01T00:00:00.000",
                              "dynamodb": {"Keys": keys, "NewImage": {**keys, "v": {"S": "x"}}, "SequenceNumber": "100",
                                           "ApproximateCreationDateTime": 1700000000}}]}
        assert _run_handler(monkeypatch, env, event) == {"batchItemFailures": []}
        assert asked == [theirs]
        (bulk,) = bulks
        assert json.loads(bulk.splitlines()[0])["index"]["_id"] == "p|2"
        assert "secret-never-shown" not in capsys.readouterr().out

    # An endpoint that refuses an ARN as a table name (a DynamoDB-compatible one): asked by name then.
    def by_name_only(name):
        if name.startswith("arn:"):
            return 400, b'{"__type":"com.amazon.coral.validate#ValidationException","message":"Invalid table name"}'
        if name == "gone":
            return 400, b'{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"}'
        return 200, ["pk", "sk"]

    asked.clear()
    bulks.clear()
    with serving(by_name_only) as server:
        env.update(OPENSEARCH_ENDPOINT=server.url, DYNAMODB_ENDPOINT=server.url)
        assert _run_handler(monkeypatch, env, event) == {"batchItemFailures": []}
        assert asked == [theirs, "books"]
        assert json.loads(bulks[0].splitlines()[0])["index"]["_id"] == "p|2"
        gone = json.loads(json.dumps(event).replace("table/books/", "table/gone/"))
        assert _run_handler(monkeypatch, env, gone) == {"batchItemFailures": [{"itemIdentifier": "100"}]}
        assert asked[2:] == ["arn:aws:dynamodb:us-east-1:222222222222:table/gone", "gone"]
        out = capsys.readouterr().out
        assert "ValidationException" in out and "; then DescribeTable gone: HTTP 400" in out


def test_db_hash_and_sort_key_give_every_unlisted_table_its_key_and_describetable_is_never_asked(monkeypatch):
    """README: DB_HASH_KEY/DB_SORT_KEY give one key schema to every table TABLE_KEYS does not list, in that
    order whatever the order of the record's Keys, and DescribeTable is then never asked."""
    bulks = []

    def answer(path, headers, body):
        assert headers.get("X-Amz-Target") is None, "DescribeTable was asked"
        bulks.append(body.decode())
        return 200, all_succeeded(body)

    def record(table, keys, seq):
        return {"eventID": "e" + seq, "eventName": "INSERT", "eventSourceARN": f"arn:aws:dynamodb:us-east-1:1:table/{table}/stream/x",
                "dynamodb": {"Keys": keys, "NewImage": dict(keys), "SequenceNumber": seq, "ApproximateCreationDateTime": 1700000000}}

    with _Server(answer) as server:
        env = {"OPENSEARCH_ENDPOINT": server.url, "OPENSEARCH_AUTH": "none", "DYNAMODB_ENDPOINT": server.url,
               "DB_HASH_KEY": "author", "DB_SORT_KEY": "bookTitle", "TABLE_KEYS": "users=id"}
        event = {"Records": [record("books", {"bookTitle": {"S": "Inferno"}, "author": {"S": "Dan Brown"}}, "100"),
                             record("films", {"author": {"S": "a|b"}, "bookTitle": {"N": "7"}}, "101"),
                             record("users", {"id": {"S": "u1"}}, "102")]}
        assert _run_handler(monkeypatch, env, event) == {"batchItemFailures": []}
        ids = {json.loads(line)["index"]["_index"]: json.loads(line)["index"]["_id"]
               for body in bulks for line in body.splitlines()[::2]}
        assert ids == {"books": "Dan Brown|Inferno", "films": "a\\|b|7", "users": "u1"}
        # A hash key alone: one-attribute _ids, the value as it is.
        bulks.clear()
        one = {**env, "DB_HASH_KEY": "isbn"}
        del one["DB_SORT_KEY"]
        assert _run_handler(monkeypatch, one, {"Records": [record("books", {"isbn": {"S": "a|b"}}, "103")]}) == {
            "batchItemFailures": []}
        assert json.loads(bulks[0].splitlines()[0])["index"]["_id"] == "a|b"


def test_the_connect_timeout_bounds_each_connection_to_opensearch_and_to_dynamodb():
    """README: OPENSEARCH_CONNECT_TIMEOUT_MS bounds a connection attempt (DescribeTable's too). A listener whose
    backlog is full drops the SYNs, so a connection neither completes nor fails before its timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    url = "http://127.0.0.1:%d" % listener.getsockname()[1]
    queued = []
    for _ in range(3):  # never accepted: the backlog fills
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(listener.getsockname())
        queued.append(c)
    try:
        env = {"OPENSEARCH_ENDPOINT": url, "OPENSEARCH_AUTH": "none", "OPENSEARCH_CONNECT_TIMEOUT_MS": "200",
               "DYNAMODB_ENDPOINT": url, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
               "AWS_SECRET_ACCESS_KEY": "secret"}
        engine = _core.SyncEngine(config_from_environment(env), env)
        composite = {**_REMOVE, "dynamodb": {**_REMOVE["dynamodb"], "Keys": {"a": {"S": "1"}, "b": {"S": "2"}}}}
        (bulk,) = [f["reason"] for f in engine.process({"Records": [_REMOVE]}, 2.0)["failures"]]  # its _bulk
        (describe,) = [f["reason"] for f in engine.process({"Records": [composite]}, 2.0)["failures"]]  # DescribeTable
        # Each attempt gives up after 200 ms (curl: "after 200 ms"; the last may be cut shorter by the deadline,
        # "after 80 milliseconds"); with the default 3000, one attempt would wait the 2 s out.
        for reason in (bulk, describe):
            waits = [int(ms) for ms in re.findall(r"after (\d+) m(?:s|illiseconds)\b", reason)]
            assert waits and max(waits) < 1000, reason
        assert int(re.search(r"after (\d+) attempts", bulk).group(1)) >= 3, bulk
    finally:
        for c in queued:
            c.close()
        listener.close()


def test_a_dead_letter_keeps_a_refused_strings_text_around_a_lone_surrogate(monkeypatch):
    """A str holding a lone surrogate (json.loads makes one of "\\ud800", as Lambda's runtime does) cannot be
    indexed: its record is a dead letter whose copy keeps the rest of the string (it held one U+FFFD)."""
    bulks = []

    def bulk(path, headers, body):
        bulks.append(body.decode())
        return 200, all_succeeded(body)

    with _Server(bulk) as server:
        event = json.loads('{"Records": [{"eventID": "e1", "eventName": "INSERT", "eventSourceARN": '
                           '"arn:aws:dynamodb:us-east-1:1:table/books/stream/x", "dynamodb": {"Keys": {"id": {"S": "a"}}, '
                           '"NewImage": {"id": {"S": "a"}, "s": {"S": "ab\\ud800cd"}, "t\\udc00": {"S": "x"}}, '
                           '"SequenceNumber": "100", "ApproximateCreationDateTime": 1700000000}}]}')
        env = {"OPENSEARCH_ENDPOINT": server.url, "OPENSEARCH_AUTH": "none"}
        assert _run_handler(monkeypatch, env, event) == {"batchItemFailures": []}
        (body,) = bulks
        action, letter = (json.loads(line) for line in body.splitlines())
        assert action["index"]["_index"] == "books-dlq"
        assert letter["error"]["type"] == "ddb2os.utf8.invalid"
        image = json.loads(letter["record"])["dynamodb"]["NewImage"]
        assert image["s"] == {"S": "ab\ufffdcd"}
        assert image["\ufffd"] == {"S": "x"}  # a name: U+FFFD alone (the adapter gives no text for one)


# Python 3.12+ warns that forking a process with threads (the server's here) may deadlock the child: that
# process is the case under test.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded, use of fork:DeprecationWarning")
def test_a_child_forked_after_the_engine_was_made_makes_its_own(monkeypatch):
    """The engine's kept-alive connections are the parent's sockets: a forked child (a host's multiprocessing)
    that used them could read the parent's answers as its own. The child forgets the engine, keeps it alive
    (closing the parent's TLS sessions would end them) and makes its own."""
    import os
    from ddb2os import _handler
    with _Server(lambda path, headers, body: (200, all_succeeded(body))) as server:
        event = {"Records": [_REMOVE]}
        assert _run_handler(monkeypatch, {"OPENSEARCH_ENDPOINT": server.url, "OPENSEARCH_AUTH": "none"}, event) == {
            "batchItemFailures": []}
        parents = _handler._engine
        assert parents is not None
        pid = os.fork()
        if pid == 0:  # the child: report by exit status only (pytest's machinery is the parent's)
            try:
                ok = _handler._engine is None and _handler._inherited[-1] is parents
                ok = ok and ddb2os.handler(event, None) == {"batchItemFailures": []}
                ok = ok and _handler._engine is not None and _handler._engine is not parents
            except BaseException:
                ok = False
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert _handler._engine is parents and parents not in _handler._inherited  # the parent's is its own


def test_a_context_without_the_remaining_time_gets_60_seconds(monkeypatch, capsys):
    """A local harness's stand-in for Lambda's context (a dict, a bare object) raised AttributeError."""
    from ddb2os import _handler
    monkeypatch.setattr(_handler.os, "environ", {"OPENSEARCH_ENDPOINT": "http://127.0.0.1:9", "OPENSEARCH_AUTH": "none"})
    _handler._reset_for_tests()
    try:
        for context in (None, {}, object()):
            assert ddb2os.handler({"Records": []}, context) == {"batchItemFailures": []}
        assert capsys.readouterr().out.count('"message":"ddb2os batch"') == 3

        # A stand-in whose answer is no number escaped as TypeError or OverflowError (found by a review).
        class Answers:
            def __init__(self, value):
                self.value = value

            def get_remaining_time_in_millis(self):
                return self.value

        for value in (None, "soon", 10**400, float("nan"), decimal.Decimal(5000), "5000", 5000.5):
            assert ddb2os.handler({"Records": []}, Answers(value)) == {"batchItemFailures": []}, value
        assert _handler._remaining_ms(Answers(None)) == _handler._remaining_ms(Answers(10**400)) == 60_000
        assert _handler._remaining_ms(Answers(float("nan"))) == 60_000
        assert _handler._remaining_ms(Answers(decimal.Decimal(5000))) == _handler._remaining_ms(Answers("5000")) == 5000
    finally:
        _handler._reset_for_tests()


def test_threads_calling_the_handler_at_once_share_one_engine(monkeypatch):
    """Checked and set without a lock, the cached engine was built by each of several threads arriving at once."""
    import threading
    import time
    from ddb2os import _handler
    monkeypatch.setattr(_handler.os, "environ", {"OPENSEARCH_ENDPOINT": "http://127.0.0.1:9", "OPENSEARCH_AUTH": "none"})
    built = []
    real = _handler._core.SyncEngine

    def slow_engine(*args):
        built.append(1)
        time.sleep(0.05)  # a cold start: the other threads arrive meanwhile
        return real(*args)

    monkeypatch.setattr(_handler._core, "SyncEngine", slow_engine)
    _handler._reset_for_tests()
    try:
        start = threading.Barrier(6)
        engines = []

        def call():
            start.wait()
            engines.append(_handler._get_engine())

        threads = [threading.Thread(target=call) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(built) == 1 and len(engines) == 6 and all(e is engines[0] for e in engines)
    finally:
        _handler._reset_for_tests()


def test_dynamodb_endpoint_without_a_region_says_so_when_a_key_schema_is_needed():
    """Accepted at the cold start (TABLE_KEYS may cover every table), but DescribeTable cannot be signed: a
    composite-key record of a table not in TABLE_KEYS is reported with that reason (it named AWS_REGION or
    DYNAMODB_ENDPOINT, as if DYNAMODB_ENDPOINT were not set)."""
    env = {"OPENSEARCH_ENDPOINT": "http://127.0.0.1:9", "OPENSEARCH_AUTH": "none",
           "DYNAMODB_ENDPOINT": "http://127.0.0.1:9", "TABLE_KEYS": "other=id"}
    engine = _core.SyncEngine(config_from_environment(env), env)
    arn = "arn:aws:dynamodb:us-east-1:1:table/pairs/stream/2024-01-01T00:00:00.000"
    record = {"eventID": "e1", "eventName": "REMOVE", "eventSourceARN": arn,
              "dynamodb": {"ApproximateCreationDateTime": 1700000000, "SequenceNumber": "1",
                           "Keys": {"pk": {"S": "a"}, "sk": {"N": "1"}}}}
    report = engine.process({"Records": [record]}, 5.0)
    (failure,) = report["failures"]
    assert "DYNAMODB_ENDPOINT is set but AWS_REGION is not" in failure["reason"], failure


def test_an_index_name_holding_the_dead_letter_placeholder_ends():
    """INDEX_NAME="a{index}" made the engine's dead-letter name endless ({index} put in, found again, for
    ever: the process spun at full CPU). Run in a child process, so a regression fails by its timeout."""
    import subprocess
    import sys
    code = """
import ddb2os
from ddb2os import _core
from ddb2os._handler import config_from_environment
env = {"OPENSEARCH_ENDPOINT": "http://127.0.0.1:9", "OPENSEARCH_AUTH": "none", "INDEX_NAME": "a{index}",
       "TABLE_KEYS": "t=id"}
engine = _core.SyncEngine(config_from_environment(env), env)
arn = "arn:aws:dynamodb:us-east-1:1:table/t/stream/2024-01-01T00:00:00.000"
record = {"eventID": "e1", "eventName": "INSERT", "eventSourceARN": arn,
          "dynamodb": {"ApproximateCreationDateTime": 1700000000, "SequenceNumber": "1",
                       "Keys": {"id": {"S": "a"}}, "NewImage": {"id": {"S": "a"}, "n": {"N": "x"}}}}
report = engine.process({"Records": [record]}, 1.0)
print(len(report["failures"]))
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "1"  # the dead letter could not be written (no OpenSearch): reported


# ------------------------------------------------------------ from a mutation run of the pure-Python files
# Each test below fails for a change to _handler.py that the other tests let through.

def test_a_password_without_a_user_name_is_refused():
    for half in ({"OPENSEARCH_PASSWORD": "p"}, {"OPENSEARCH_USERNAME": "u"}):
        assert error(OPENSEARCH_ENDPOINT="http://localhost:9200", **half) == (
            "OPENSEARCH_USERNAME and OPENSEARCH_PASSWORD go together: one is set without the other")


def test_ttl_deletes_are_written_unless_asked_not_to():
    assert config()["skip_ttl_deletes"] is False
    assert config(SKIP_TTL_DELETES="true")["skip_ttl_deletes"] is True


def test_the_smallest_sizes_allowed_are_accepted():
    assert config(MAX_BULK_ACTIONS="1")["max_actions"] == 1
    assert config(MAX_BULK_BYTES="64")["max_bytes"] == 64
    assert config(FIRST_BULK_BYTES="64")["first_body_bytes"] == 64
    assert error(**BASE, MAX_BULK_BYTES="63") == "MAX_BULK_BYTES must be at least 64, not '63'"
    assert error(**BASE, MAX_BULK_ACTIONS="0") == "MAX_BULK_ACTIONS must be positive, not '0'"


def test_two_endpoint_variables_are_compared_with_their_schemes_default_ports():
    same = {"AWS_REGION": "us-east-1", "OPENSEARCH_ENDPOINT": "http://h"}
    assert config_from_environment({**same, "ES_ENDPOINT": "http://H:80/"})["endpoint"] == "http://h"
    assert config_from_environment({**same, "OPENSEARCH_ENDPOINT": "h", "ES_ENDPOINT": "https://h:443"})["endpoint"] == "https://h"
    for other in ("http://h:443", "https://h", "http://h:8080"):
        assert error(**same, ES_ENDPOINT=other) == "OPENSEARCH_ENDPOINT and ES_ENDPOINT are both set, to different URLs: set one"


def test_a_delete_character_in_the_host_is_refused():
    assert error(**{**BASE, "OPENSEARCH_ENDPOINT": "http://exa\x7fmple.com"}) == (
        "OPENSEARCH_ENDPOINT 'http://exa\\x7fmple.com' has a space or control character in its host")


class _RecordingEngine:
    def __init__(self, report):
        self.report, self.budgets = report, []

    def process(self, event, seconds):
        self.budgets.append(seconds)
        return self.report


class _Context:
    def __init__(self, ms):
        self.ms = ms

    def get_remaining_time_in_millis(self):
        return self.ms


def _report(failures=(), batch_item_failures=()):
    return {"log_line": '{"message":"ddb2os batch"}', "failures": list(failures),
            "batch_item_failures": list(batch_item_failures)}


def test_the_engine_gets_lambdas_time_less_a_margin_for_the_answer(monkeypatch, capsys):
    """The smaller of 3 s and a fifth of the time is kept for the answer and the log line: without it Lambda
    times out first and retries the whole batch."""
    from ddb2os import _handler
    engine = _RecordingEngine(_report())
    monkeypatch.setattr(_handler, "_get_engine", lambda: engine)
    for ms in (60_000, 10_000, 100, 0):
        ddb2os.handler({"Records": []}, _Context(ms))
    assert engine.budgets == [57.0, 8.0, 0.1, 0.1]


def test_every_failed_record_is_returned_and_the_log_line_flushed(monkeypatch, capsys):
    """Lambda retries from the lowest itemIdentifier: each one the engine reports goes back, in order."""
    import sys
    from ddb2os import _handler
    monkeypatch.setattr(_handler, "_get_engine", lambda: _RecordingEngine(_report(batch_item_failures=["3", "4", "9"])))
    flushed = []

    class Out:
        def __init__(self):
            self.text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            flushed.append(self.text)

    out = Out()
    monkeypatch.setattr(sys, "stdout", out)
    assert ddb2os.handler({"Records": []}, _Context(60_000)) == {
        "batchItemFailures": [{"itemIdentifier": "3"}, {"itemIdentifier": "4"}, {"itemIdentifier": "9"}]}
    # Flushed with the batch's line, before the answer goes back (a later line would land in the next invocation).
    assert flushed and '"message":"ddb2os batch"' in flushed[0]


def test_failed_records_are_logged_twenty_then_a_count_with_reasons_cut_at_500(monkeypatch, capsys):
    from ddb2os import _handler
    failures = [{"sequence_number": str(i), "reason": ("x" * 600 if i == 0 else f"why {i}")} for i in range(25)]
    monkeypatch.setattr(_handler, "_get_engine", lambda: _RecordingEngine(_report(failures, [str(i) for i in range(25)])))
    ddb2os.handler({"Records": []}, _Context(60_000))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0] == {"message": "ddb2os batch"}
    logged = [line for line in lines if line.get("message") == "ddb2os record failed"]
    assert [line["sequence_number"] for line in logged] == [str(i) for i in range(20)]
    assert logged[0]["reason"] == "x" * 500 + "..." and logged[1]["reason"] == "why 1"
    assert lines[-1] == {"Service": "ddb2os", "message": "ddb2os records failed", "not_shown": 5}
    assert _handler.shorten_reason("y" * 500) == "y" * 500


def test_process_counts_ttl_deletes_written_and_none_skipped():
    """Without SKIP_TTL_DELETES a TTL remove is deleted as any other: process() counts it among ttl_deletes and
    deleted, and skips none (skipped_ttl and ttl_deletes are two counts, equal only when every one is skipped)."""

    def deleted(path, headers, body):
        n = len(body.decode().splitlines())  # delete actions only: one line each
        return 200, json.dumps({"errors": False, "items": [{"delete": {"status": 200}}] * n}).encode()

    ttl = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    arn = "arn:aws:dynamodb:us-east-1:1:table/T/stream/x"
    records = [{"eventID": f"e{i}", "eventName": "REMOVE", "eventSourceARN": arn, "userIdentity": ttl,
                "dynamodb": {"ApproximateCreationDateTime": 1, "SequenceNumber": str(i), "Keys": {"id": {"S": f"k{i}"}}}}
               for i in range(3)]
    with _Server(deleted) as server:
        engine = _core.SyncEngine(config(OPENSEARCH_AUTH="none", OPENSEARCH_ENDPOINT=server.url, TABLE_KEYS="T=id"), {})
        out = engine.process({"Records": records}, 5)
    assert (out["ttl_deletes"], out["skipped_ttl"], out["deleted"], out["requests"], out["failed"]) == (3, 0, 3, 1, 0), out
    log = json.loads(out["log_line"])
    assert (log["TTLDeletes"], log["SkippedTTL"], log["Deleted"]) == (3, 0, 3)


def test_an_argument_given_twice_is_a_type_error_that_quotes_nothing():
    """By position and by name at once: refused as Python refuses it, without quoting the arguments (the
    event's values, the environment's secrets)."""
    env = {"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-SECRET"}
    with pytest.raises(TypeError) as e:
        _core.SyncEngine(config(OPENSEARCH_AUTH="none"), env, config=config(OPENSEARCH_AUTH="none"))
    assert str(e.value) == "SyncEngine() got multiple values for argument 'config'"
    engine = _core.SyncEngine(config(OPENSEARCH_AUTH="none", OPENSEARCH_ENDPOINT="http://127.0.0.1:9"), {})
    event = {"Records": [{"dynamodb": {"NewImage": {"ssn": {"S": "123-45-6789"}}}}]}
    for kwargs, name in (({"seconds": 0.5}, "seconds"), ({"event": event}, "event")):
        with pytest.raises(TypeError) as e:
            engine.process(event, 0.5, **kwargs)
        assert str(e.value) == f"process() got multiple values for argument '{name}'"
        assert "123-45-6789" not in str(e.value)


def test_a_time_of_another_number_type_is_never_read_through_its_own_str():
    """Only an exact int, float or Decimal has its text read: an int subclass's __str__ is the event's own Python
    code, which could change the event while the engine reads it. Its ApproximateCreationDateTime is refused (the
    version cannot be taken from it) and the record dead-lettered, with null for the value: __str__ never runs."""

    class Stamp(int):
        calls = 0

        def __str__(self):
            Stamp.calls += 1
            return "1700000000"

    bodies = []

    def answer(path, headers, body):
        bodies.append(body.decode())
        return 200, all_succeeded(body)

    arn = "arn:aws:dynamodb:us-east-1:1:table/T/stream/x"
    record = {"eventID": "e1", "eventName": "INSERT", "eventSourceARN": arn,
              "dynamodb": {"ApproximateCreationDateTime": Stamp(1700000000), "SequenceNumber": "1",
                           "Keys": {"id": {"S": "k"}}, "NewImage": {"id": {"S": "k"}}}}
    with _Server(answer) as server:
        engine = _core.SyncEngine(config(OPENSEARCH_AUTH="none", OPENSEARCH_ENDPOINT=server.url, TABLE_KEYS="T=id"), {})
        out = engine.process({"Records": [record]}, 5)
    assert Stamp.calls == 0
    assert (out["indexed"], out["dead_lettered"], out["failed"]) == (0, 1, 0), out
    (letter,) = [json.loads(b.splitlines()[1]) for b in bodies if '"t-dlq"' in b]
    assert letter["error"]["type"] == "ddb2os.record.bad_field"
    assert json.loads(letter["record"])["dynamodb"]["ApproximateCreationDateTime"] is None


def test_a_budget_past_a_year_or_infinite_is_a_year():
    """seconds beyond what a clock can add to now (inf, 1e300, a thousand years) is taken as a year: the batch is
    written, never refused as past its deadline by a time that overflowed."""
    arn = "arn:aws:dynamodb:us-east-1:1:table/T/stream/x"
    record = {"eventID": "e1", "eventName": "INSERT", "eventSourceARN": arn,
              "dynamodb": {"ApproximateCreationDateTime": 1, "SequenceNumber": "1", "Keys": {"id": {"S": "a"}},
                           "NewImage": {"id": {"S": "a"}}}}
    with _Server(lambda path, headers, body: (200, all_succeeded(body))) as server:
        engine = _core.SyncEngine(config(OPENSEARCH_AUTH="none", OPENSEARCH_ENDPOINT=server.url, TABLE_KEYS="T=id"), {})
        for seconds in (float("inf"), 1e300, 86400.0 * 365 * 1000, 86400 * 365 + 1):
            out = engine.process({"Records": [record]}, seconds)
            assert (out["indexed"], out["requests"], out["failed"]) == (1, 1, 0), (seconds, out)
            assert json.loads(out["log_line"])["Indexed"] == 1
