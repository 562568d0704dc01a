"""The ready Lambda handler: ``ddb2os.handler`` (set the function's handler to ``ddb2os.handler``).

Configuration comes from environment variables, read and checked once per container (cold start);
anything invalid raises :class:`ddb2os.OptionError` naming the variable. Use with an event source
mapping that has ``FunctionResponseTypes: [ReportBatchItemFailures]``.
"""
from __future__ import annotations

import math
import os
import re
import sys
import threading
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

from ._errors import OptionError
from . import _core

__all__ = ["handler", "Config", "config_from_environment"]

# Time kept back from Lambda's deadline to return the answer and write the log line.
_MARGIN_MS = 3000

# Names (tables, key and other attributes) are trimmed of ASCII whitespace only, as the CLI trims
# them (ddb2os::detail::trim_ascii_space) (str.strip() would also take U+00A0 and \x1c-\x1f).
_SPACE = " \t\n\r\v\f"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def _fail(message: str) -> OptionError:
    return OptionError("option.invalid", "", message)


def _first(env: Mapping[str, str], *names: str) -> Tuple[Optional[str], Optional[str]]:
    for n in names:
        v = env.get(n)
        if v is not None and v.strip() != "":
            return n, v.strip()
    return None, None


def _flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    v = env.get(name)
    if v is None:
        return default
    v = v.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise _fail(f"{name} must be true or false, not {env[name]!r}")


def _size(env: Mapping[str, str], name: str, default: int, least: int = 1, most: int = 2**40) -> int:
    v = env.get(name)
    if v is None or v.strip() == "":
        return default
    text = v.strip()
    # ASCII digits only: int() also takes "1_000" and other scripts' digits ("٣٢٠٠"), which no other
    # reader of the same setting (a shell, the CLI) would.
    if re.fullmatch(r"[+-]?[0-9]+", text) is None:
        raise _fail(f"{name} must be a whole number, not {v!r}")
    # Read without leading zeros, and past the bound by its length alone: from Python 3.11 on (and in
    # 3.9's and 3.10's later releases) int() refuses text of more than 4300 digits, leading zeros
    # included, in words of its own, which would not name the setting.
    negative, digits = text.startswith("-"), text.lstrip("+-").lstrip("0") or "0"
    n = int(digits) if len(digits) <= len(str(most)) else most + 1
    n = -n if negative else n
    if n < least:
        raise _fail(f"{name} must be {'positive' if least == 1 else f'at least {least}'}, not {v!r}")
    if n > most:
        raise _fail(f"{name} must be at most {most}, not {v!r}")
    return n


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")  # a URL's scheme, at its start only


def _url_head(url: str) -> str:
    """What a message may quote of a URL: its scheme and host part, and "/..." for anything after them,
    which is never quoted (a query or path can carry a token: ?api_key=...)."""
    scheme = _SCHEME.match(url)
    start = scheme.end() if scheme else 0
    rest = url[start:]
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    return url[:start] + rest[:cut] + ("/..." if cut < len(rest) else "")


def _endpoint(name: str, value: str) -> Tuple[str, str]:
    """A URL variable checked and reduced to ``scheme://host[:port]`` (``https://`` assumed without a
    scheme); returns it and its host name. Messages quote only its scheme and host (_url_head)."""
    import unicodedata  # here, not at import: only a cold start's configuration needs it

    if not _SCHEME.match(value):  # "://" later on, in a query, is no scheme
        value = "https://" + value
    shown = _url_head(value)
    # Never quoted back whole: a URL can carry a password (user:password@host). Any "@" is taken for
    # one: a password holding "/", "?" or "#" ends urlsplit's host part early, so that it sees no user,
    # and a later message would quote it. (No path or query is allowed, so "@" has no other place.)
    # urlsplit reads the host part after NFKC normalization, where a full-width @ (U+FF20, U+FE6B) is one.
    if "@" in value or "@" in unicodedata.normalize("NFKC", value):
        hint = ": set OPENSEARCH_USERNAME and OPENSEARCH_PASSWORD instead" if name != "DYNAMODB_ENDPOINT" else ""
        raise _fail(f"{name} must not hold a user name or password (user:password@host){hint}")
    try:
        parts = urlsplit(value)
    except ValueError:  # "Invalid IPv6 URL", or a host character NFKC makes one of / ? # :
        why = "an unbalanced '[' or ']'" if "[" in value or "]" in value else "a character of its host is one of / ? # : once normalized"
        raise _fail(f"{name} {shown!r} is not a URL ({why})") from None
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in parts.netloc):
        # Every request would fail ("URL using bad/illegal format"): said at the cold start instead.
        raise _fail(f"{name} {shown!r} has a space or control character in its host")
    try:
        parts.port  # raises for a port that is not a number from 0 to 65535
    except ValueError:
        raise _fail(f"{name} {shown!r} has a port that is not a number from 1 to 65535") from None
    if parts.netloc.endswith(":"):
        raise _fail(f"{name} {shown!r} has a port that is not a number from 1 to 65535")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.port == 0:
        raise _fail(f"{name} {shown!r} is not an http(s) URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        # The requests go to the host's root (/_bulk, DynamoDB's /); a path here would be dropped, not used.
        raise _fail(f"{name} {shown!r} must be a scheme, host and port only, without a path or query (not shown: it could hold a token)")
    return f"{parts.scheme}://{parts.netloc}", parts.hostname


def _endpoint_key(name: str, value: str) -> Tuple[str, str, int]:
    """What a URL variable names, however it is written: scheme, host (in lower case) and port."""
    url, host = _endpoint(name, value)
    parts = urlsplit(url)
    return parts.scheme, host.lower(), parts.port or (443 if parts.scheme == "https" else 80)


def _index_name_problem(value: str) -> Optional[str]:
    """What the engine's own rules say is wrong with an index name or template, or None."""
    try:
        _core.bulk_bodies({"Records": []}, index=value)
    except OptionError as e:
        return e.message
    return None


def _check_index_name(name: str, value: str, shown: Optional[str] = None, note: str = "") -> None:
    """An index name or template checked by the engine's own rules, the error naming the variable.
    ``shown``: the name as the variable gives it ({index} not replaced); ``note``: what stood for {index}."""
    problem = _index_name_problem(value)
    if problem is not None:
        if shown is not None:
            problem = problem.replace(f'"{value}"', f'"{shown}"{note}')
        raise _fail(f"{name}: {problem}")


def _unicode(env: Mapping[str, str], name: str) -> str:
    """A variable whose text the engine takes as attribute names: bytes that are not UTF-8 (a lone
    surrogate in os.environ) are refused here, naming it, rather than by the engine without a name."""
    value = env.get(name, "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail(f"{name} is not valid Unicode (it holds a lone surrogate: bytes that are not UTF-8)") from None
    return value


def parse_table_keys(text: str) -> Dict[str, List[str]]:
    """``books=author,bookTitle;users=id`` -> ``{"books": ["author", "bookTitle"], "users": ["id"]}``."""
    out: Dict[str, List[str]] = {}
    for part in text.split(";"):
        part = part.strip(_SPACE)
        if not part:
            continue
        table, eq, keys = part.partition("=")
        table = table.strip(_SPACE)
        names = [k.strip(_SPACE) for k in keys.split(",")]
        if not eq or not table or not 1 <= len(names) <= 2 or not all(names):
            raise _fail(f"TABLE_KEYS entry {part!r} must look like table=partitionKey[,sortKey]")
        if len(names) == 2 and names[0] == names[1]:
            raise _fail(f"TABLE_KEYS entry {part!r} names {names[0]!r} twice")
        if table in out:  # which one was meant cannot be known (the CLI's --keys refuses it too)
            raise _fail(f"TABLE_KEYS names table {table!r} twice")
        out[table] = names
    return out


class Config(dict):
    """The checked configuration (a dict the native engine reads). Holds no secret: the engine reads
    OPENSEARCH_PASSWORD from the environment it is given, so no copy of this dict (``dict(c)``,
    ``json.dumps(c)``) can show it."""

    def __repr__(self) -> str:
        return f"Config({dict(self)!r})"


def config_from_environment(env: Mapping[str, str]) -> Config:
    """Reads and checks the handler's environment variables (see the README for the list)."""
    endpoint_var, endpoint = _first(env, "OPENSEARCH_ENDPOINT", "ES_ENDPOINT", "HOST")
    _, es_endpoint = _first(env, "ES_ENDPOINT")
    if endpoint_var == "OPENSEARCH_ENDPOINT" and es_endpoint is not None and (
            _endpoint_key("OPENSEARCH_ENDPOINT", endpoint) != _endpoint_key("ES_ENDPOINT", es_endpoint)):
        # Which one was meant cannot be known. HOST is not compared: shells and containers set it for
        # their own use, and it is read only when neither of these is set.
        raise _fail("OPENSEARCH_ENDPOINT and ES_ENDPOINT are both set, to different URLs: set one")
    if endpoint_var is None:
        raise _fail("OPENSEARCH_ENDPOINT is not set (also read as ES_ENDPOINT or HOST): the OpenSearch URL to write to")
    endpoint, host = _endpoint(endpoint_var, endpoint)

    c = Config()
    c["endpoint"] = endpoint
    index_vars = [n for n in ("INDEX_NAME", "INDEX_TEMPLATE", "ES_INDEX") if _first(env, n)[1] is not None]
    if len(index_vars) > 1:
        raise _fail(f"{', '.join(index_vars[:-1])} and {index_vars[-1]} are {'both' if len(index_vars) == 2 else 'all'} set: "
                    "set one (a fixed index, or a template with {table})")
    index_var, index = _first(env, "INDEX_NAME", "INDEX_TEMPLATE", "ES_INDEX")
    c["index"] = index or ""
    if index_var == "INDEX_TEMPLATE" and "{table}" not in index:
        raise _fail("INDEX_TEMPLATE must contain {table}")
    if index:
        _check_index_name(index_var, index)

    keys = parse_table_keys(_unicode(env, "TABLE_KEYS"))
    hash_key, sort_key = _unicode(env, "DB_HASH_KEY").strip(_SPACE), _unicode(env, "DB_SORT_KEY").strip(_SPACE)
    if sort_key and not hash_key:
        raise _fail("DB_SORT_KEY is set but DB_HASH_KEY is not")
    if sort_key and sort_key == hash_key:
        raise _fail(f"DB_HASH_KEY and DB_SORT_KEY name the same attribute {hash_key!r}")
    c["table_keys"] = keys
    c["default_keys"] = [k for k in (hash_key, sort_key) if k]

    # Trimmed, and a blank AWS_REGION does not hide AWS_DEFAULT_REGION: "us-east-1 " would be signed
    # into every request's scope (and the DynamoDB endpoint's host) and refused there, batch after batch.
    region_var, region = _first(env, "AWS_REGION", "AWS_DEFAULT_REGION")
    if region is not None and not all(ch.isascii() and (ch.islower() or ch.isdigit() or ch == "-") for ch in region):
        raise _fail(f"{region_var} must be a region name such as us-east-1 (lowercase letters, digits and "
                    f"'-'), not {env[region_var]!r}")
    c["region"] = region or ""
    username, password = env.get("OPENSEARCH_USERNAME", ""), env.get("OPENSEARCH_PASSWORD", "")
    if bool(username) != bool(password):
        raise _fail("OPENSEARCH_USERNAME and OPENSEARCH_PASSWORD go together: one is set without the other")
    auth = env.get("OPENSEARCH_AUTH", "").strip().lower()
    aws_host = host.rstrip(".")  # a fully qualified name ("...amazonaws.com.") is the same host
    if not auth:
        auth = "basic" if username else ("sigv4" if aws_host.endswith((".amazonaws.com", ".amazonaws.com.cn")) else "none")
    if auth not in ("sigv4", "basic", "none"):
        raise _fail(f"OPENSEARCH_AUTH must be sigv4, basic or none, not {auth!r}")
    if auth == "basic" and not username:
        raise _fail("OPENSEARCH_AUTH=basic needs OPENSEARCH_USERNAME and OPENSEARCH_PASSWORD")
    if auth == "basic" and ":" in username:
        # HTTP Basic joins them with ':' (RFC 7617): every request would be refused with 401.
        raise _fail("OPENSEARCH_USERNAME must not hold ':' (HTTP Basic authentication cannot carry it)")
    service = env.get("OPENSEARCH_SERVICE", "").strip() or (
        "aoss" if aws_host.endswith((".aoss.amazonaws.com", ".aoss.amazonaws.com.cn")) else "es")
    if service not in ("es", "aoss"):
        raise _fail(f"OPENSEARCH_SERVICE must be es or aoss, not {service!r}")
    if auth == "sigv4" and not c["region"]:
        raise _fail("AWS_REGION is not set: SigV4 signing needs the region")
    c.update(auth=auth, service=service, username=username)  # the password: from the environment, by the engine

    refresh = env.get("REFRESH", "").strip().lower()
    if refresh in _FALSE:
        refresh = ""
    elif refresh in _TRUE:
        refresh = "true"
    elif refresh != "wait_for":
        raise _fail(f"REFRESH must be false (the default), true or wait_for, not {env['REFRESH']!r}")
    c["refresh"] = refresh

    dlq = env.get("DLQ_INDEX")
    # Off as every other switch is (0, no, false, off, empty), and none: "0" or "no" named an index.
    c["dlq_index"] = "{index}-dlq" if dlq is None else ("" if dlq.strip().lower() in _FALSE | {"none"} else dlq.strip())
    if "{table}" in c["dlq_index"]:
        raise _fail("DLQ_INDEX must not contain {table}: only {index} is replaced (by the record's index name)")
    fixed_index = c["index"] if c["index"] and "{table}" not in c["index"] else None
    if c["dlq_index"] == "{index}" or (fixed_index and c["dlq_index"].replace("{index}", fixed_index) == fixed_index):
        raise _fail(f"DLQ_INDEX {dlq!r} is the data index itself: give the dead letters an index of their own")
    if c["dlq_index"]:
        # {index} stands for the index itself when it is fixed (a long one can make the dead-letter name too
        # long), else for a valid name.
        fixed = bool(c["index"]) and "{table}" not in c["index"]
        note = (f" with {index_var}'s index ({len(c['index'].encode())} bytes) as {{index}}"
                if fixed and "{index}" in c["dlq_index"] else "")
        _check_index_name("DLQ_INDEX" if dlq is not None else "the default DLQ_INDEX ({index}-dlq)",
                          c["dlq_index"].replace("{index}", c["index"] if fixed else "books"), shown=c["dlq_index"],
                          note=note)
    c["skip_ttl_deletes"] = _flag(env, "SKIP_TTL_DELETES")
    for key, name in (("exclude", "EXCLUDE_ATTRIBUTES"), ("include", "INCLUDE_ATTRIBUTES")):
        text = env.get(name, "")
        c[key] = [n.strip(_SPACE) for n in text.split(",")] if text.strip(_SPACE) else []
        if not all(c[key]):
            raise _fail(f"{name} must be attribute names separated by commas, not {text!r}")
    c["numbers"] = env.get("NUMBERS", "exact").strip() or "exact"
    c["lists"] = env.get("LISTS", "stringify").strip() or "stringify"
    if c["numbers"] not in ("exact", "string", "double"):
        raise _fail(f"NUMBERS must be exact, string or double, not {c['numbers']!r}")
    if c["lists"] not in ("stringify", "keep"):
        raise _fail(f"LISTS must be stringify or keep, not {c['lists']!r}")
    c["max_bytes"] = _size(env, "MAX_BULK_BYTES", 5 * 2**20, least=64, most=2**31 - 1)
    c["max_actions"] = _size(env, "MAX_BULK_ACTIONS", 1000)
    # The first body of a batch is cut here so OpenSearch starts on it while the rest is written; 0: off.
    c["first_body_bytes"] = 0 if env.get("FIRST_BULK_BYTES", "").strip() == "0" else _size(env, "FIRST_BULK_BYTES", 256 * 2**10, least=64)
    c["gzip"] = _flag(env, "OPENSEARCH_GZIP")
    c["ca_file"] = env.get("OPENSEARCH_CA_FILE", "").strip()
    if c["ca_file"] and not (os.path.isfile(c["ca_file"]) and os.access(c["ca_file"], os.R_OK)):
        raise _fail(f"OPENSEARCH_CA_FILE {c['ca_file']!r} is not a readable file")
    c["connect_timeout_ms"] = _size(env, "OPENSEARCH_CONNECT_TIMEOUT_MS", 3000, most=900_000)
    ddb_endpoint = env.get("DYNAMODB_ENDPOINT", "").strip()
    china = ".cn" if c["region"].startswith("cn-") else ""  # China regions' endpoints end in .com.cn
    c["dynamodb_endpoint"] = _endpoint("DYNAMODB_ENDPOINT", ddb_endpoint)[0] if ddb_endpoint else (
        f"https://dynamodb.{c['region']}.amazonaws.com{china}" if c["region"] else "")
    return c


_engine = None
_engine_lock = threading.Lock()


_inherited: list = []


def _forget_engine_after_fork() -> None:
    """In a child forked after the engine was made (a host's multiprocessing, not Lambda): the engine's
    kept-alive connections are the parent's sockets, and a request on one could read the parent's answer.
    The child makes its own. The parent's engine is kept, never destroyed here: closing its TLS
    connections would end the parent's sessions too."""
    global _engine, _engine_lock
    if _engine is not None:
        _inherited.append(_engine)
    _engine = None
    _engine_lock = threading.Lock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_engine_after_fork)


def _get_engine():
    # One engine a process, also when a host calls the handler from several threads at once (Lambda's
    # Python runtime does not; a second engine would redo the cold start and drop the first's caches).
    global _engine
    engine = _engine
    if engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = _core.SyncEngine(config_from_environment(os.environ), dict(os.environ))
            engine = _engine
    return engine


def _remaining_ms(context: Any) -> float:
    """The invocation's remaining milliseconds. Lambda's context has them; a local harness's stand-in
    may not (None, a dict) or may answer with no number (None, NaN, an int past a float): 60 s then."""
    get = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(get):
        return 60_000
    value = get()
    try:
        remaining = float(value)
    except (TypeError, ValueError, OverflowError):
        return 60_000
    return 60_000 if math.isnan(remaining) else remaining


def handler(event: Union[Mapping[str, Any], bytes, str], context: Any = None) -> Dict[str, List[Dict[str, str]]]:
    """Syncs one DynamoDB Streams batch into OpenSearch and tells Lambda which records to retry:
    ``{"batchItemFailures": [{"itemIdentifier": "<SequenceNumber>"}, ...]}``.

    The event is Lambda's dict, or its raw JSON as bytes or str (ddb2os.lambda_runtime's). An event
    that is not a DynamoDB Streams batch (not JSON, no Records, a record whose eventSource is another
    service's) raises EventError, failing the invocation rather than acknowledging what was not synced.

    Writes one JSON log line per batch (counts and milliseconds, CloudWatch Embedded Metric Format),
    and one per record reported failed (its sequence number and why, the first 20); never document
    bodies or secrets."""
    engine = _get_engine()
    remaining = _remaining_ms(context)
    budget = max(remaining - min(_MARGIN_MS, remaining // 5), 100)
    report = engine.process(event, budget / 1000.0)
    print(report["log_line"], file=sys.stdout, flush=True)
    _log_failures(report["failures"])
    return {"batchItemFailures": [{"itemIdentifier": s} for s in report["batch_item_failures"]]}


_FAILURES_LOGGED = 20
_REASON_CHARS = 500


def shorten_reason(reason: str) -> str:
    """A failure's reason as logged: at most 500 characters (OpenSearch's can quote a whole value)."""
    return reason if len(reason) <= _REASON_CHARS else reason[:_REASON_CHARS] + "..."


def _log_failures(failures: List[Dict[str, Any]]) -> None:
    """Why records go back to Lambda: a refused request (403, 413), a deadline, a key schema that
    could not be asked for. Without it a stuck shard shows only its Failed count."""
    import json  # only when something failed: not part of the cold start
    for f in failures[:_FAILURES_LOGGED]:
        print(json.dumps({"Service": "ddb2os", "message": "ddb2os record failed",
                          "sequence_number": f["sequence_number"], "reason": shorten_reason(f["reason"])}),
              file=sys.stdout)
    if len(failures) > _FAILURES_LOGGED:
        print(json.dumps({"Service": "ddb2os", "message": "ddb2os records failed",
                          "not_shown": len(failures) - _FAILURES_LOGGED}), file=sys.stdout)
    if failures:
        sys.stdout.flush()


def _reset_for_tests() -> None:
    """Forget the cold-start state (tests change the environment between runs)."""
    global _engine
    _engine = None
