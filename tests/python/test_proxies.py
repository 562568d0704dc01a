"""The test proxies (tests/python/proxies.py) against a REAL OpenSearch from scripts/stack.py.

One OpenSearch for the module. If it cannot be fetched or started, every test here fails (no
skip, no fake). Clients are `requests` and `http.client`; requests are signed with botocore.
"""
import datetime
import gzip
import hashlib
import json
import os
import pathlib
import socket
import ssl
import sys
import threading
import time
from unittest import mock

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import stack  # noqa: E402
from proxies import FaultProxy, SigV4VerifyingProxy, TLSProxy, make_test_ca  # noqa: E402

REGION = "us-east-1"
AKID, SECRET, TOKEN = "AKIDDDB2OSTEST", "ddb2os/test+secret", "ddb2os-session-token//=="
CREDS = {"access_key": AKID, "secret_key": SECRET}
CREDS_TOKEN = {**CREDS, "session_token": TOKEN}
NDJSON = {"Content-Type": "application/x-ndjson"}
MISMATCH = "signature we calculated does not match"


@pytest.fixture(scope="module")
def opensearch():
    try:
        with stack.opensearch() as server:
            yield server
    except stack.StackError as e:
        pytest.fail(f"OpenSearch (scripts/stack.py) did not start: {e}")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_test_ca(tmp_path_factory.mktemp("test-ca"))


@pytest.fixture
def http():
    s = requests.Session()
    s.trust_env = False          # no proxy from the environment on loopback
    yield s
    s.close()


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def sign(method, url, body=b"", headers=None, *, creds=CREDS, service="es", region=REGION, at=None):
    """botocore's SigV4 headers for the request (at: the signing time, default now)."""
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    signer = SigV4Auth(Credentials(creds["access_key"], creds["secret_key"], creds.get("session_token")),
                       service, region)
    if at is None:
        signer.add_auth(req)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=at):
            signer.add_auth(req)
    return dict(req.headers.items())


def bulk(*docs, index):
    """NDJSON for index actions of (id, source) pairs."""
    lines = []
    for doc_id, source in docs:
        lines.append(json.dumps({"index": {"_index": index, "_id": doc_id}}))
        lines.append(json.dumps(source))
    return ("\n".join(lines) + "\n").encode()


def direct_get(opensearch, index, doc_id):
    r = requests.get(f"{opensearch.url}/{index}/_doc/{doc_id}", timeout=10)
    return r.json() if r.status_code == 200 else None


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def clean(proxy):
    assert proxy.errors == [], proxy.errors


# ---------------------------------------------------------------------------------------------
# SigV4VerifyingProxy
# ---------------------------------------------------------------------------------------------

def test_sigv4_signed_bulk_with_query_is_forwarded_over_one_connection(opensearch, http):
    with SigV4VerifyingProxy(opensearch.url, REGION, "es", CREDS) as p:
        for i in range(3):
            url = f"{p.url}/_bulk?refresh=wait_for"
            body = bulk((f"d{i}", {"n": i, "title": "Le Guin"}), index="sigv4-good")
            r = http.post(url, data=body, headers=sign("POST", url, body, NDJSON))
            assert r.status_code == 200, r.text
            assert r.json()["errors"] is False
        # The query is sent in canonical encoding (":" as %3A): botocore signs a URL query as is,
        # while AWS (and the proxy) decode and re-encode it.
        url = f"{p.url}/sigv4-good/_search?q=title%3Aguin&size=10"
        r = http.get(url, headers=sign("GET", url))
        assert r.status_code == 200, r.text
        assert r.json()["hits"]["total"]["value"] == 3
        assert (p.accepted, p.rejected, p.requests, p.forwarded) == (4, 0, 4, 4)
        assert p.connections == 1          # keep-alive: one client connection for all four
        clean(p)
    assert direct_get(opensearch, "sigv4-good", "d2")["_source"] == {"n": 2, "title": "Le Guin"}


def test_sigv4_escaped_path_is_verified_as_aws_does(opensearch, http):
    """Document ids with '/', ' ' and unicode: the path is signed double-encoded (botocore)."""
    with SigV4VerifyingProxy(opensearch.url, REGION, "es", CREDS) as p:
        url = f"{p.url}/sigv4-esc/_doc/a%2Fb%20c%C3%A9?refresh=true"
        body = b'{"x": 1}'
        hdrs = sign("PUT", url, body, {"Content-Type": "application/json"})
        r = http.put(url, data=body, headers=hdrs)
        assert r.status_code == 201, r.text
        assert r.json()["_id"] == "a/b cé"
        clean(p)


TAMPER = {
    # case: (what to change after signing, expected reason)
    "body": MISMATCH, "header": MISMATCH, "path": MISMATCH, "query": MISMATCH, "method": MISMATCH,
    "date-header": MISMATCH, "secret": MISMATCH,
    "access-key": "security token included in the request is invalid",
    "region": "valid region", "service": "correct service", "expired": "Signature expired",
    "future": "Signature not yet current", "unsigned": "Missing Authentication Token",
    "host-unsigned": "'Host' must be a signed header",
}


@pytest.mark.parametrize("case", sorted(TAMPER))
def test_sigv4_tampered_or_missing_signature_is_refused_with_403(opensearch, http, case):
    index, doc_id = "sigv4-tamper", case
    with SigV4VerifyingProxy(opensearch.url, REGION, "es", CREDS) as p:
        method, path, query = "PUT", f"/{index}/_doc/{doc_id}", "refresh=wait_for"
        body = json.dumps({"case": case}).encode()
        sign_kw, sign_headers = {}, {"Content-Type": "application/json", "X-Opaque-Id": "ddb2os"}
        if case == "secret":
            sign_kw["creds"] = {"access_key": AKID, "secret_key": "wrong"}
        if case == "access-key":
            sign_kw["creds"] = {"access_key": "AKIDOTHER", "secret_key": SECRET}
        if case == "region":
            sign_kw["region"] = "eu-west-1"
        if case == "service":
            sign_kw["service"] = "aoss"
        if case == "expired":
            sign_kw["at"] = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=16)
        if case == "future":
            sign_kw["at"] = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=16)
        url = f"{p.url}{path}?{query}"
        hdrs = sign(method, url, body, sign_headers, **sign_kw)
        if case == "body":
            body = json.dumps({"case": "tampered"}).encode()
        if case == "header":
            hdrs["X-Opaque-Id"] = "someone-else"
        if case == "path":
            url = f"{p.url}/{index}/_doc/{doc_id}-other?{query}"
        if case == "query":
            url = f"{p.url}{path}?refresh=true"
        if case == "method":
            method = "POST"
        if case == "date-header":
            d = datetime.datetime.strptime(hdrs["X-Amz-Date"], "%Y%m%dT%H%M%SZ") - datetime.timedelta(seconds=1)
            hdrs["X-Amz-Date"] = d.strftime("%Y%m%dT%H%M%SZ")
        if case == "unsigned":
            hdrs.pop("Authorization")
        if case == "host-unsigned":
            auth = hdrs["Authorization"].replace("SignedHeaders=content-type;host;", "SignedHeaders=content-type;")
            assert auth != hdrs["Authorization"]
            hdrs["Authorization"] = auth
        r = http.request(method, url, data=body, headers=hdrs)
        assert r.status_code == 403, r.text
        assert TAMPER[case] in r.json()["message"]
        assert (p.accepted, p.rejected, p.forwarded) == (0, 1, 0)
        assert TAMPER[case] in p.rejections[0][2]
        clean(p)
    assert direct_get(opensearch, index, doc_id) is None
    assert direct_get(opensearch, index, f"{doc_id}-other") is None


@pytest.mark.parametrize("decompress", [True, False], ids=["decompressed", "gzip-forwarded"])
def test_sigv4_gzip_body_signature_covers_compressed_bytes(opensearch, http, decompress):
    index = f"sigv4-gzip-{str(decompress).lower()}"
    with SigV4VerifyingProxy(opensearch.url, REGION, "es", CREDS, decompress=decompress) as p:
        url = f"{p.url}/_bulk?refresh=wait_for"
        plain = bulk(("g1", {"zipped": True}), ("g2", {"zipped": True}), index=index)
        body = gzip.compress(plain, mtime=0)
        hdrs = sign("POST", url, body, {**NDJSON, "Content-Encoding": "gzip"})
        r = http.post(url, data=body, headers=hdrs)
        # decompress=False: the gzip body reached OpenSearch as is, and OpenSearch took it.
        assert r.status_code == 200, r.text
        assert r.json()["errors"] is False and len(r.json()["items"]) == 2
        # Same decompressed content, other compressed bytes (gzip header mtime): refused.
        other = gzip.compress(plain, mtime=12345)
        assert gzip.decompress(other) == plain and other != body
        r = http.post(url, data=other, headers=hdrs)
        assert r.status_code == 403 and MISMATCH in r.json()["message"]
        assert (p.accepted, p.rejected) == (1, 1)
        clean(p)
    assert direct_get(opensearch, index, "g2")["_source"] == {"zipped": True}


def test_sigv4_session_token_must_be_present_equal_and_signed(opensearch, http):
    index = "sigv4-token"
    with SigV4VerifyingProxy(opensearch.url, REGION, "es", CREDS_TOKEN) as p:
        def put(doc_id, creds=CREDS_TOKEN, mutate=None):
            url = f"{p.url}/{index}/_doc/{doc_id}?refresh=wait_for"
            body = b'{"t": 1}'
            hdrs = sign("PUT", url, body, {"Content-Type": "application/json"}, creds=creds)
            if mutate:
                mutate(hdrs)
            return http.put(url, data=body, headers=hdrs)

        r = put("ok")
        assert r.status_code == 201, r.text
        r = put("stripped", mutate=lambda h: h.pop("X-Amz-Security-Token"))
        assert r.status_code == 403 and "security token" in r.json()["message"]
        r = put("unsigned", creds=CREDS, mutate=lambda h: h.update({"X-Amz-Security-Token": TOKEN}))
        assert r.status_code == 403 and "X-Amz-Security-Token' must be a signed header" in r.json()["message"]
        r = put("other", creds={**CREDS, "session_token": "another-token"})
        assert r.status_code == 403 and "security token" in r.json()["message"]
        assert (p.accepted, p.rejected) == (1, 3)
        clean(p)
    with SigV4VerifyingProxy(opensearch.url, REGION, "es", CREDS) as p:   # no token expected
        url = f"{p.url}/{index}/_doc/unexpected"
        r = http.put(url, data=b"{}", headers=sign("PUT", url, b"{}", {"Content-Type": "application/json"},
                                                   creds=CREDS_TOKEN))
        assert r.status_code == 403 and p.rejected == 1
    assert direct_get(opensearch, index, "ok") is not None
    for doc_id in ("stripped", "unsigned", "other", "unexpected"):
        assert direct_get(opensearch, index, doc_id) is None


def test_sigv4_aoss_requires_signed_content_sha256_and_unsigned_content_length(opensearch, http):
    index = "sigv4-aoss"
    with SigV4VerifyingProxy(opensearch.url, REGION, "aoss", CREDS_TOKEN) as p:
        url = f"{p.url}/_bulk?refresh=wait_for"
        body = bulk(("s1", {"serverless": 1}), index=index)
        sha = hashlib.sha256(body).hexdigest()

        def post(extra, send_body=body):
            hdrs = sign("POST", url, body, {**NDJSON, **extra}, service="aoss", creds=CREDS_TOKEN)
            return http.post(url, data=send_body, headers=hdrs)

        r = post({"x-amz-content-sha256": sha})
        assert r.status_code == 200 and r.json()["errors"] is False, r.text
        r = post({})
        assert r.status_code == 403 and "x-amz-content-sha256 header is required" in r.json()["message"]
        r = post({"x-amz-content-sha256": hashlib.sha256(b"other").hexdigest()})
        assert r.status_code == 403 and "x-amz-content-sha256' header does not match" in r.json()["message"]
        r = post({"x-amz-content-sha256": sha, "Content-Length": str(len(body))})
        assert r.status_code == 403 and "'content-length' must not be a signed header" in r.json()["message"]
        # a body changed after signing, header left alone: the header no longer matches the body
        r = post({"x-amz-content-sha256": sha}, send_body=body.replace(b"1", b"2"))
        assert r.status_code == 403 and "x-amz-content-sha256' header does not match" in r.json()["message"]
        assert (p.accepted, p.rejected) == (1, 4)
        clean(p)
    assert direct_get(opensearch, index, "s1")["_source"] == {"serverless": 1}


def test_sigv4_chunked_request_body_and_keep_alive(opensearch):
    import http.client
    with SigV4VerifyingProxy(opensearch.url, REGION, "es", CREDS) as p:
        conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=30)
        try:
            for i in range(2):
                target = "/_bulk?refresh=wait_for"
                body = bulk((f"c{i}", {"chunked": i}), index="sigv4-chunked")
                hdrs = sign("POST", p.url + target, body, NDJSON)
                parts = [body[:10], body[10:25], body[25:]]
                conn.request("POST", target, body=iter(parts), headers=hdrs)   # Transfer-Encoding: chunked
                r = conn.getresponse()
                data = r.read()
                assert r.status == 200, data
                assert json.loads(data)["errors"] is False
        finally:
            conn.close()
        assert p.accepted == 2 and p.connections == 1
        clean(p)


# ---------------------------------------------------------------------------------------------
# TLSProxy
# ---------------------------------------------------------------------------------------------

def test_tls_proxy_trusted_with_the_test_ca_only(opensearch, certs, http):
    ca_file, cert_file, key_file = certs
    with TLSProxy(opensearch.url, certs) as p:
        assert p.url.startswith("https://127.0.0.1:")
        for base in (p.url, p.url_localhost):   # the certificate names both
            r = http.get(base + "/", verify=ca_file, timeout=10)
            assert r.status_code == 200 and r.json()["cluster_name"] == "ddb2os-stack"
        for i in range(3):
            url = f"{p.url}/_bulk?refresh=wait_for"
            r = http.post(url, data=bulk((f"t{i}", {"tls": True}), index="tls"), headers=NDJSON, verify=ca_file)
            assert r.status_code == 200 and r.json()["errors"] is False
        assert p.connections == 2               # one per host name, reused (keep-alive)

        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            requests.get(p.url + "/", timeout=10)      # the system CAs do not know the test CA
        assert wait_for(lambda: p.handshake_failures == 1)
        assert "unknown ca" in p.handshake_errors[0].lower()

        ctx = ssl.create_default_context(cafile=ca_file)
        with socket.create_connection(("127.0.0.1", p.port), timeout=10) as raw:
            with pytest.raises(ssl.SSLCertVerificationError, match="match"):
                ctx.wrap_socket(raw, server_hostname="example.com")   # a name the cert does not have
        r = http.get(p.url + "/tls/_doc/t2", verify=ca_file)       # still serving after failures
        assert r.status_code == 200 and r.json()["found"] is True
        clean(p)
    for path in (ca_file, cert_file):
        assert pathlib.Path(path).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in pathlib.Path(key_file).read_text()


# ---------------------------------------------------------------------------------------------
# FaultProxy
# ---------------------------------------------------------------------------------------------

def test_fault_status_codes_for_the_next_n_matching_requests(opensearch, http):
    index = "fault-status"
    with FaultProxy(opensearch.url) as p:
        p.fail_next(2, 429, path=r"_bulk", retry_after=1)
        url = f"{p.url}/_bulk?refresh=wait_for"
        for i in range(2):
            r = http.post(url, data=bulk((f"s{i}", {}), index=index), headers=NDJSON)
            assert r.status_code == 429 and r.headers["Retry-After"] == "1"
            assert r.json()["error"]["type"] == "rejected_execution_exception" and r.json()["status"] == 429
            assert http.get(p.url + "/").status_code == 200      # not matching the pattern: forwarded
        r = http.post(url, data=bulk(("s2", {}), index=index), headers=NDJSON)
        assert r.status_code == 200 and r.json()["errors"] is False
        p.fail_next(1, 500).fail_next(1, 503, body={"message": "custom"})
        r = http.get(p.url + "/")
        assert r.status_code == 500 and r.json()["status"] == 500
        r = http.get(p.url + "/")
        assert r.status_code == 503 and r.json() == {"message": "custom"}
        assert p.pending() == 0 and p.injected["status"] == 4
        assert (p.requests, p.forwarded, p.connections) == (7, 3, 1)
        assert [s.status for s in p.log] == [429, 200, 429, 200, 200, 500, 503]
        clean(p)
    assert direct_get(opensearch, index, "s0") is None and direct_get(opensearch, index, "s1") is None
    assert direct_get(opensearch, index, "s2") is not None


def test_fault_reset_before_request_reaches_upstream(opensearch, http):
    with FaultProxy(opensearch.url) as p:
        p.reset_next(1, when="request", path="/fault-reset/")
        url = f"{p.url}/fault-reset/_doc/r1?refresh=wait_for"
        with pytest.raises(requests.exceptions.ConnectionError):
            http.put(url, json={"reset": "request"})
        assert p.injected["reset_request"] == 1 and p.forwarded == 0
        assert direct_get(opensearch, "fault-reset", "r1") is None
        r = http.put(url, json={"reset": "none"})             # a new connection works
        assert r.status_code == 201
        assert p.connections == 2
        clean(p)


def test_fault_reset_mid_response_after_upstream_applied_it(opensearch, http):
    with FaultProxy(opensearch.url) as p:
        p.reset_next(1, when="response", method="PUT")
        url = f"{p.url}/fault-reset/_doc/r2?refresh=wait_for"
        with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
            http.put(url, json={"reset": "response"})
        assert p.injected["reset_response"] == 1 and p.forwarded == 1 and p.log[0].forwarded
        # OpenSearch did get it: the client cannot know, which is the point of this fault.
        assert direct_get(opensearch, "fault-reset", "r2")["_source"] == {"reset": "response"}
        assert http.get(p.url + "/fault-reset/_doc/r2").json()["found"] is True
        clean(p)


def test_fault_delay_times_out_the_client_but_upstream_applied_it(opensearch, http):
    with FaultProxy(opensearch.url) as p:
        p.delay_next(1, 1.5, path="/fault-delay/")
        url = f"{p.url}/fault-delay/_doc/d1?refresh=wait_for"
        t0 = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            http.put(url, json={"slow": True}, timeout=0.4)
        assert time.monotonic() - t0 < 1.45  # the client gave up before the answer came
        # The proxy forwarded the request before delaying the answer: OpenSearch applies it, on
        # its own time (index creation, refresh=wait_for), even though the client gave up.
        assert wait_for(lambda: direct_get(opensearch, "fault-delay", "d1") is not None, timeout=15)
        assert direct_get(opensearch, "fault-delay", "d1")["_source"] == {"slow": True}
        p.delay_next(1, 0.5, before=True)
        t0 = time.monotonic()
        r = http.get(p.url + "/fault-delay/_doc/d1", timeout=10)
        assert r.status_code == 200 and time.monotonic() - t0 >= 0.5
        assert p.injected["delay"] == 2
        clean(p)


def test_fault_bulk_items_fail_and_are_not_sent_upstream(opensearch, http):
    index = "fault-bulk"
    with FaultProxy(opensearch.url) as p:
        p.fail_bulk_items({"b1": "429", 3: "mapper_parsing_exception", "b4": "es_rejected_execution_exception"})
        url = f"{p.url}/_bulk?refresh=wait_for"
        docs = [(f"b{i}", {"n": i}) for i in range(6)]
        r = http.post(url, data=bulk(*docs, index=index), headers=NDJSON)
        assert r.status_code == 200
        out = r.json()
        assert out["errors"] is True and len(out["items"]) == 6
        items = [it["index"] for it in out["items"]]
        assert [it["_id"] for it in items] == [d for d, _ in docs]
        assert [it["status"] for it in items] == [201, 429, 201, 400, 429, 201]
        assert items[1]["error"]["type"] == "rejected_execution_exception"
        assert items[3]["error"]["type"] == "mapper_parsing_exception"
        assert items[4]["error"]["type"] == "es_rejected_execution_exception"
        assert items[0]["result"] == "created" and "error" not in items[0]
        assert (p.bulk_items_failed, p.bulk_items_forwarded) == (3, 3)
        for doc_id, present in (("b0", True), ("b1", False), ("b2", True), ("b3", False), ("b4", False),
                                ("b5", True)):
            assert (direct_get(opensearch, index, doc_id) is not None) == present, doc_id

        # The rule was for one bulk: the retry of the failed items goes through.
        r = http.post(url, data=bulk(docs[1], docs[4], index=index), headers=NDJSON)
        assert r.json()["errors"] is False and [it["index"]["status"] for it in r.json()["items"]] == [201, 201]
        assert p.injected["bulk_items"] == 1

        # A bulk rule whose items are absent does not hide a later rule.
        p.fail_bulk_items(["not-in-this-bulk"]).fail_next(1, 503, path="_bulk")
        r = http.post(url, data=bulk(("b9", {}), index=index), headers=NDJSON)
        assert r.status_code == 503 and p.pending() == 1
        p.clear()

        # By id, twice: each retry of b7 fails until the count is spent; a bulk without b7 is untouched.
        p.fail_bulk_items(["b7"], error="503", n=2)
        r = http.post(url, data=bulk(("b6", {}), index=index), headers=NDJSON)
        assert r.json()["errors"] is False
        forwarded = p.forwarded
        for attempt in range(3):
            r = http.post(url, data=bulk(("b7", {"attempt": attempt}), index=index), headers=NDJSON)
            item = r.json()["items"][0]["index"]
            assert item["status"] == (503 if attempt < 2 else 201), (attempt, item)
        assert p.forwarded == forwarded + 1      # an all-failed bulk is answered by the proxy alone
        assert direct_get(opensearch, index, "b7")["_source"] == {"attempt": 2}

        # filter_path (as a lean client asks) is applied to the spliced response; gzip bodies work.
        p.fail_bulk_items([0], error={"status": 429, "type": "rejected_execution_exception", "reason": "full"})
        fp_url = f"{p.url}/{index}/_bulk?refresh=wait_for&filter_path=errors,items.*.status,items.*.error.type"
        body = gzip.compress(b'{"index":{"_id":"b8"}}\n{"x":1}\n{"delete":{"_id":"b0"}}\n')
        r = http.post(fp_url, data=body, headers={**NDJSON, "Content-Encoding": "gzip"})
        assert r.json() == {"errors": True, "items": [
            {"index": {"status": 429, "error": {"type": "rejected_execution_exception"}}},
            {"delete": {"status": 200}}]}
        assert direct_get(opensearch, index, "b8") is None and direct_get(opensearch, index, "b0") is None
        assert direct_get(opensearch, index, "b9") is None
        assert p.pending() == 0 and len(p.bulk_log) == 4 and p.injected["status"] == 1
        clean(p)


def test_unreachable_upstream_is_a_502(http):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]      # bound, not listening: connection refused
        with FaultProxy(f"http://127.0.0.1:{port}") as p:
            r = http.get(p.url + "/")
            assert r.status_code == 502 and "upstream" in r.json()["message"]
            assert p.forwarded == 0
            clean(p)


# ---------------------------------------------------------------------------------------------
# All: chained, and a clean stop
# ---------------------------------------------------------------------------------------------

def test_chain_tls_then_sigv4_then_faults(opensearch, certs, http):
    """client --TLS, SigV4--> TLSProxy -> SigV4VerifyingProxy -> FaultProxy -> OpenSearch: Host
    travels unchanged, so the signature made for the TLS proxy's address verifies behind it."""
    index = "chain"
    with FaultProxy(opensearch.url) as fault, \
            SigV4VerifyingProxy(fault.url, REGION, "es", CREDS_TOKEN) as sig, \
            TLSProxy(sig.url, certs) as tls:
        fault.fail_bulk_items(["c1"], error="429")
        url = f"{tls.url}/_bulk?refresh=wait_for"
        body = gzip.compress(bulk(("c0", {}), ("c1", {}), index=index))
        hdrs = sign("POST", url, body, {**NDJSON, "Content-Encoding": "gzip"}, creds=CREDS_TOKEN)
        r = http.post(url, data=body, headers=hdrs, verify=certs[0])
        assert r.status_code == 200, r.text
        assert [it["index"]["status"] for it in r.json()["items"]] == [201, 429]
        r = http.post(url, data=body, headers={**hdrs, "X-Amz-Date": "20200101T000000Z"}, verify=certs[0])
        assert r.status_code == 403 and "Signature expired" in r.json()["message"]
        assert (sig.accepted, sig.rejected, fault.requests, fault.bulk_items_failed) == (1, 1, 1, 1)
        for p in (fault, sig, tls):
            clean(p)
    assert direct_get(opensearch, index, "c0") is not None and direct_get(opensearch, index, "c1") is None


# ---------------------------------------------------------------------------------------------
# A clean stop
# ---------------------------------------------------------------------------------------------

def _fds():
    return len(os.listdir("/proc/self/fd"))


def test_stop_leaves_no_threads_or_sockets_even_with_idle_and_delayed_connections(opensearch, certs):
    ca_file = certs[0]
    time.sleep(0.1)
    threads0, fds0 = set(threading.enumerate()), _fds()
    sessions = [requests.Session() for _ in range(3)]
    for s in sessions:
        s.trust_env = False
    sig = SigV4VerifyingProxy(opensearch.url, REGION, "es", CREDS).start()
    tls = TLSProxy(opensearch.url, certs).start()
    fault = FaultProxy(opensearch.url).start()
    url = sig.url + "/"
    assert sessions[0].get(url, headers=sign("GET", url)).status_code == 200
    assert sessions[1].get(tls.url + "/", verify=ca_file).status_code == 200
    assert sessions[2].get(fault.url + "/").status_code == 200
    # a request held by a long delay while the proxy stops
    fault.delay_next(1, 30)
    outcome = []
    # and one waiting on an upstream that never answers (listening, never accepting)
    black_hole = socket.socket()
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(8)
    stuck = FaultProxy("http://127.0.0.1:%d" % black_hole.getsockname()[1]).start()

    def slow(url):
        try:
            outcome.append(requests.get(url, timeout=20).status_code)
        except requests.RequestException as e:
            outcome.append(type(e).__name__)
    clients = [threading.Thread(target=slow, args=(fault.url + "/",)),
               threading.Thread(target=slow, args=(stuck.url + "/",))]
    for c in clients:
        c.start()
    assert wait_for(lambda: fault.injected["delay"] == 1 and stuck.requests == 1)
    t0 = time.monotonic()
    for proxy in (sig, tls, fault, stuck):
        proxy.stop()          # the sessions still hold idle keep-alive connections
    stop_seconds = time.monotonic() - t0
    for c in clients:
        c.join(10)
        assert not c.is_alive()
    black_hole.close()
    assert len(outcome) == 2
    assert stop_seconds < 3.0, stop_seconds
    for s in sessions:
        s.close()
    for proxy in (sig, tls, fault, stuck):
        clean(proxy)
        proxy.stop()          # idempotent
    assert wait_for(lambda: set(threading.enumerate()) <= threads0, 5), set(threading.enumerate()) - threads0
    assert wait_for(lambda: _fds() <= fds0, 5), (_fds(), fds0)
