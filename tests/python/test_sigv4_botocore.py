"""Differential test: ddb2os's SigV4 signer (through build/tools/sigv4_sign) against botocore's.

Generated requests (seeded): paths with spaces, unicode, '%', dot segments and repeated slashes;
query strings with repeated keys, empty values and reserved characters; header values with runs
of spaces and line folds; bodies from empty to several MiB; services es, aoss and dynamodb; with
and without a session token. Every request must get botocore's Authorization header (or, for
presigned URLs, its X-Amz-Signature), and the same canonical request.

botocore reads the query of a URL as already encoded (it does not re-encode it), so queries are
generated in canonical encoded form, as an HTTP client would send them.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import json
import random
import subprocess
from urllib.parse import parse_qsl, quote, urlsplit

import botocore.auth
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SEED = 20150830
HEADER_CASES = 420
QUERY_CASES = 120
LARGE_BODY = 1 << 20  # bodies at least this big are generated on both sides, not piped

PATH_SEGMENTS = [
    "idx", "_doc", "_bulk", "my index", "my  index", "ሴ", "é", "日本語", "😀", "a%2Fb", "100%", "%",
    "%41", ".", "..", "", "", "a+b", "~tilde", "x:y", "a;b", "a=b", "a@b", "a!b*'()", "$&,", "-._~",
    "UPPER", "...", ".hidden", "a b c", "tab\u00a0nbsp",
]
QUERY_CHARS = "abcXYZ019-._~ :/?#[]@!$&'()*+,;=%\"<>\\^`{|}" + "éሴ😀"
HEADER_NAMES = [
    "X-Custom", "x-custom", "X-CUSTOM", "X-Amz-Meta-Color", "Content-Type", "Accept", "If-Match",
    "X-Amz-Target", "My-Header1", "my-header2", "X-Opaque-Id", "Cache-Control",
]
IGNORED_NAMES = ["User-Agent", "Expect", "Transfer-Encoding", "X-Amzn-Trace-Id", "Connection", "TE"]
SERVICES = ["es", "aoss", "dynamodb"]
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1"]


def generated_body(size: int, seed: int) -> bytes:
    """The tool's body_gen: SHA-256("<seed>:0") || SHA-256("<seed>:1") || ..., cut to size."""
    blocks = (size + 31) // 32
    return b"".join(hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(blocks))[:size]


def random_word(rng: random.Random, alphabet: str, lo: int, hi: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def random_path(rng: random.Random) -> str:
    if rng.random() < 0.05:
        return ""
    segments = [rng.choice(PATH_SEGMENTS) for _ in range(rng.randint(0, 6))]
    path = "/" + "/".join(segments)
    if rng.random() < 0.3:
        path += "/"
    if rng.random() < 0.15:
        path = "/" + path
    return path


def encode(s: str) -> str:
    return quote(s, safe="-_.~")


def random_query(rng: random.Random, unique_keys: bool) -> str:
    keys = ["a", "b", "Param", "param", "X-Key", "é", "k k", "k/=&", "refresh", "size", "q"]
    if unique_keys:
        keys = rng.sample(keys, rng.randint(0, len(keys)))
    else:
        keys = [rng.choice(keys) for _ in range(rng.randint(0, 7))]
    pieces = []
    for key in keys:
        r = rng.random()
        if r < 0.15:
            pieces.append(encode(key))  # no '=' at all
        elif r < 0.3:
            pieces.append(encode(key) + "=")
        else:
            pieces.append(encode(key) + "=" + encode(random_word(rng, QUERY_CHARS, 1, 12)))
    return "&".join(pieces)


def random_header_value(rng: random.Random) -> str:
    words = [random_word(rng, "abcdefXYZ0123456789-_.:;/=,\"'()[]{}!#$%&*+?@^`|~<>\\", 1, 10)
             for _ in range(rng.randint(0, 4))]
    seps = [" ", "   ", "\t", " \t ", "\r\n ", "\n\t", "\r\n   "]
    value = ""
    for i, w in enumerate(words):
        if i:
            value += rng.choice(seps)
        value += w
    if rng.random() < 0.3:
        value = rng.choice([" ", "  ", "\t"]) + value
    if rng.random() < 0.3:
        value += rng.choice([" ", "   ", "\t "])
    return value


def random_url(rng: random.Random, unique_keys: bool) -> tuple[str, str]:
    host = rng.choice([
        "search-domain-abc.us-east-1.es.amazonaws.com", "Search-Domain.EU-WEST-1.es.amazonaws.com",
        "abc123.us-east-1.aoss.amazonaws.com", "dynamodb.us-east-1.amazonaws.com", "localhost", "10.0.0.7",
        "[::1]", "user@host.example",
    ])
    scheme = rng.choice(["https", "https", "https", "http"])
    port = rng.choice(["", "", "", ":443", ":80", ":9200", ":8443"])
    query = random_query(rng, unique_keys) if rng.random() < 0.7 else ""
    url = f"{scheme}://{host}{port}{random_path(rng)}"
    if query or rng.random() < 0.1:
        url += "?" + query
    return url, scheme


def random_credentials(rng: random.Random) -> dict:
    creds = {
        "access_key_id": "AKIA" + random_word(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 16),
        "secret_access_key": random_word(rng, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/+", 40, 40),
    }
    if rng.random() < 0.5:
        creds["session_token"] = random_word(
            rng, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/+", 100, 400) + "=="
    return creds


def random_timestamp(rng: random.Random) -> int:
    return rng.randint(946684800, 2082758399)  # 2000-01-01 .. 2035-12-31


def random_body(rng: random.Random) -> bytes | tuple[int, int]:
    r = rng.random()
    if r < 0.25:
        return b""
    if r < 0.6:
        return rng.randbytes(rng.randint(1, 200))
    if r < 0.9:
        return rng.randbytes(rng.randint(200, 70000))
    if r < 0.97:
        return rng.randbytes(rng.randint(70000, 400000))
    return (rng.randint(LARGE_BODY, 6 << 20), rng.randint(0, 1 << 30))  # several MiB


def header_case(rng: random.Random, i: int) -> tuple[dict, dict]:
    """One header-mode request: (input for the tool, what botocore needs)."""
    service = rng.choice(SERVICES)
    url, scheme = random_url(rng, unique_keys=False)
    method = rng.choice(["GET", "PUT", "POST", "DELETE", "HEAD"])
    headers = []
    if rng.random() < 0.3:
        headers.append([rng.choice(["Host", "host"]), rng.choice(["example.amazonaws.com", "h:9200", " spaced  host "])])
    for _ in range(rng.randint(0, 6)):
        headers.append([rng.choice(HEADER_NAMES), random_header_value(rng)])
    if rng.random() < 0.2:
        headers.append([rng.choice(IGNORED_NAMES), random_header_value(rng)])
    if rng.random() < 0.1:
        headers.append([rng.choice(["Authorization", "X-Amz-Date"]), "stale"])
    body = random_body(rng)
    size = body[0] if isinstance(body, tuple) else len(body)
    if rng.random() < 0.5 and size:
        headers.append(["Content-Length", str(size)])
    unsigned = service != "aoss" and scheme == "https" and rng.random() < 0.1
    creds = random_credentials(rng)
    if "session_token" in creds and rng.random() < 0.2:
        headers.append(["X-Amz-Security-Token", "stale"])
    req = {
        "id": i, "method": method, "url": url, "headers": headers, "region": rng.choice(REGIONS),
        "service": service, "credentials": creds, "timestamp": random_timestamp(rng),
    }
    if isinstance(body, tuple):
        req["body_gen"] = {"size": body[0], "seed": body[1]}
        body = generated_body(*body)
    else:
        req["body_b64"] = base64.b64encode(body).decode()
    if unsigned:
        req["payload_hash"] = "UNSIGNED-PAYLOAD"
        req["options"] = {"checksum": "x-amz-content-sha256"}
    elif rng.random() < 0.1:
        req["payload_hash"] = hashlib.sha256(body).hexdigest()
    return req, {"body": body, "unsigned": unsigned}


def query_case(rng: random.Random, i: int) -> dict:
    """One presigned-URL request (SigV4QueryAuth: no body, no repeated query keys)."""
    url, _ = random_url(rng, unique_keys=True)
    headers = [[rng.choice(HEADER_NAMES), random_header_value(rng)] for _ in range(rng.randint(0, 3))]
    return {
        "id": i, "method": rng.choice(["GET", "PUT", "DELETE"]), "url": url, "headers": headers,
        "region": rng.choice(REGIONS), "service": rng.choice(["es", "dynamodb"]),
        "credentials": random_credentials(rng), "timestamp": random_timestamp(rng),
        "options": {"location": "query", "expires": rng.randint(1, 604800)},
    }


class Capturing:
    """Keeps the canonical request botocore computed, for a readable failure."""

    def canonical_request(self, request):
        self.captured = super().canonical_request(request)
        return self.captured


class CapturingSigV4Auth(Capturing, SigV4Auth):
    pass


class CapturingSigV4QueryAuth(Capturing, SigV4QueryAuth):
    pass


def botocore_sign(req: dict, body: bytes, unsigned: bool, query: bool, monkeypatch):
    when = datetime.datetime.fromtimestamp(req["timestamp"], datetime.timezone.utc).replace(tzinfo=None)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: when)
    c = req["credentials"]
    creds = Credentials(c["access_key_id"], c["secret_access_key"], c.get("session_token"))
    request = AWSRequest(method=req["method"], url=req["url"], data=body)
    for name, value in req["headers"]:
        if req["service"] == "aoss" and name.lower() == "content-length":
            continue  # the client is told not to sign it; ddb2os is given it and must leave it out
        request.headers[name] = value  # appends: repeated names stay repeated
    if req["service"] == "aoss" and not query:
        request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
    if unsigned:
        request.context["payload_signing_enabled"] = False
    if query:
        auth = CapturingSigV4QueryAuth(creds, req["service"], req["region"], expires=req["options"]["expires"])
    else:
        auth = CapturingSigV4Auth(creds, req["service"], req["region"])
    auth.add_auth(request)
    return auth.captured, request


def run_tool(build_dir, requests: list[dict]) -> dict:
    tool = build_dir / "tools" / "sigv4_sign"
    assert tool.exists(), f"{tool} is not built"
    stdin = "".join(json.dumps(r) + "\n" for r in requests)
    done = subprocess.run([str(tool)], input=stdin.encode(), capture_output=True, check=True, timeout=60)
    out = {}
    for line in done.stdout.decode().splitlines():
        o = json.loads(line)
        out[o["id"]] = o
    assert len(out) == len(requests)
    return out


def test_header_signatures_match_botocore(build_dir, monkeypatch):
    rng = random.Random(SEED)
    cases = [header_case(rng, i) for i in range(HEADER_CASES)]
    results = run_tool(build_dir, [req for req, _ in cases])
    kinds = {"token": 0, "large": 0, "folded": 0, "repeated_keys": 0, "pct_path": 0, "dots": 0, "unicode": 0}
    for req, extra in cases:
        got = results[req["id"]]
        assert "error" not in got, (req["url"], got["error"])
        want_creq, signed = botocore_sign(req, extra["body"], extra["unsigned"], False, monkeypatch)
        assert got["canonical_request"] == want_creq, req["url"]
        ours = dict((n.lower(), v) for n, v in got["headers"])
        assert ours["authorization"] == signed.headers["Authorization"], req["url"]
        assert ours["x-amz-date"] == signed.headers["X-Amz-Date"]
        if "session_token" in req["credentials"]:
            assert ours["x-amz-security-token"] == req["credentials"]["session_token"]
            kinds["token"] += 1
        if req["service"] == "aoss" or extra["unsigned"]:
            assert ours["x-amz-content-sha256"] == signed.headers["X-Amz-Content-SHA256"]
        kinds["large"] += len(extra["body"]) >= LARGE_BODY
        kinds["folded"] += any("\n" in v for _, v in req["headers"])
        keys = [p.partition("=")[0] for p in urlsplit(req["url"]).query.split("&") if p]
        kinds["repeated_keys"] += len(keys) != len(set(keys))
        path = urlsplit(req["url"]).path
        kinds["pct_path"] += "%" in path
        kinds["dots"] += "/./" in path or "/../" in path or "//" in path
        kinds["unicode"] += any(ord(ch) > 127 for ch in path)
    # The generator covers what it promises.
    assert all(n >= 3 for n in kinds.values()), kinds
    assert {r["service"] for r, _ in cases} == set(SERVICES)


def test_presigned_signatures_match_botocore(build_dir, monkeypatch):
    rng = random.Random(SEED + 1)
    cases = [query_case(rng, i) for i in range(QUERY_CASES)]
    results = run_tool(build_dir, cases)
    with_token = 0
    for req in cases:
        got = results[req["id"]]
        assert "error" not in got, (req["url"], got["error"])
        want_creq, signed = botocore_sign(req, b"", False, True, monkeypatch)
        assert got["canonical_request"] == want_creq, req["url"]
        theirs = dict(parse_qsl(urlsplit(signed.url).query, keep_blank_values=True))
        ours = {k: v for k, v in parse_qsl("&".join(f"{k}={v}" for k, v in got["query"]), keep_blank_values=True)}
        for key in ["X-Amz-Signature", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders"]:
            assert ours[key] == theirs[key], (key, req["url"])
        if "session_token" in req["credentials"]:
            assert ours["X-Amz-Security-Token"] == theirs["X-Amz-Security-Token"]
            with_token += 1
    assert with_token >= 10


def test_tool_reports_errors_per_line(build_dir):
    good = {"id": 0, "method": "GET", "url": "https://h/", "region": "us-east-1", "service": "es",
            "credentials": {"access_key_id": "AKID", "secret_access_key": "s3cr3t"}, "timestamp": 0}
    bad = dict(good, id=1, url="/no-host")
    out = run_tool(build_dir, [good, bad])
    assert out[0]["signature"]
    assert out[1]["error"] == "[ddb2os.sigv4.no_host] request has no Host header and its URL has no host"
