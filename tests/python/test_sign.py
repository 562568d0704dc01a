"""ddb2os.sign (the Python module) against botocore's SigV4Auth, on generated requests."""
import datetime
import random

import pytest

import ddb2os
from test_sigv4_botocore import SEED, botocore_sign, header_case


def as_sent(url: str) -> str:
    """A URL as requests (and urllib3, and the curl transport) sends it: a space, a control character or a
    non-ASCII character as the %XX of its UTF-8 bytes."""
    return "".join(c if " " < c < "\x7f" else "".join(f"%{b:02X}" for b in c.encode()) for c in url)


def botocore_as_sent(req, body, monkeypatch):
    """botocore's signature of the request as it is sent (botocore signs a URL as given: it is the caller's to
    encode, and a raw space sent as %20 is then encoded again by the service's canonical form, not signed)."""
    _, signed = botocore_sign({**req, "url": as_sent(req["url"])}, body, False, False, monkeypatch)
    return signed


def test_sign_agrees_with_botocore(monkeypatch):
    rng = random.Random(SEED + 1)
    checked = encoded = 0
    for i in range(200):
        req, extra = header_case(rng, i)
        if "payload_hash" in req:  # the Python API takes the body itself
            continue
        signed = botocore_as_sent(req, extra["body"], monkeypatch)
        encoded += as_sent(req["url"]) != req["url"]
        c = req["credentials"]
        when = datetime.datetime.fromtimestamp(req["timestamp"], datetime.timezone.utc)
        headers = [(n, v) for n, v in req["headers"] if not (req["service"] == "aoss" and n.lower() == "content-length")]
        ours = ddb2os.sign(req["method"], req["url"], headers, extra["body"], region=req["region"],
                           service=req["service"], access_key=c["access_key_id"], secret_key=c["secret_access_key"],
                           session_token=c.get("session_token"), timestamp=when)
        assert ours["Authorization"] == signed.headers["Authorization"], req["url"]
        assert ours["X-Amz-Date"] == signed.headers["X-Amz-Date"]
        assert ours.get("X-Amz-Security-Token") == c.get("session_token")
        if req["service"] == "aoss":
            assert ours["X-Amz-Content-Sha256"] == signed.headers["X-Amz-Content-SHA256"]
        else:
            assert "X-Amz-Content-Sha256" not in ours
        assert ours == ddb2os.sign(req["method"], as_sent(req["url"]), headers, extra["body"], region=req["region"],
                                   service=req["service"], access_key=c["access_key_id"],
                                   secret_key=c["secret_access_key"], session_token=c.get("session_token"),
                                   timestamp=when)
        checked += 1
    assert checked > 150 and encoded > 20


def test_sign_signs_what_requests_sends():
    """requests sends the method upper-cased and a URL's spaces and non-ASCII characters percent-encoded: a
    signature of the raw forms was refused (403)."""
    import requests
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    args = dict(region="us-east-1", service="es", access_key="AK", secret_key="SK", timestamp=when)
    for method, url in (("get", "https://h.example/idx/_doc/a b"), ("post", "https://h.example/caf\u00e9/_doc/\u65e5?q=1")):
        sent = requests.Request(method, url).prepare()
        assert ddb2os.sign(method, url, {}, b"", **args) == ddb2os.sign(sent.method, sent.url, {}, b"", **args)
        assert sent.method == method.upper() and sent.url == as_sent(url)


def test_sign_defaults_and_errors():
    h = ddb2os.sign("GET", "https://example.com/", {}, None, region="us-east-1", service="es",
                    access_key="AKID", secret_key="very-secret")
    assert set(h) == {"Authorization", "X-Amz-Date"}
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = datetime.datetime.strptime(h["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    assert abs((now - stamp).total_seconds()) < 120
    with pytest.raises(ddb2os.SigningError) as e:
        ddb2os.sign("GET", "https://example.com/", {}, None, region="r", service="es", access_key="A",
                    secret_key="very-secret", timestamp=datetime.datetime(2024, 1, 1))
    assert str(e.value) == "[ddb2os.sigv4.bad_time] timestamp must be a timezone-aware datetime"
    # Seconds since the epoch, or a date: named (an int raised AttributeError: 'int' object has no attribute 'utcoffset').
    for stamp, name in ((1700000000, "int"), (1.7e9, "float"), (datetime.date(2024, 1, 1), "datetime.date"),
                        ("20240101T000000Z", "str")):
        with pytest.raises(ddb2os.SigningError) as e:
            ddb2os.sign("GET", "https://example.com/", {}, None, region="r", service="es", access_key="A",
                        secret_key="very-secret", timestamp=stamp)
        assert str(e.value) == f"[ddb2os.sigv4.bad_time] timestamp must be a timezone-aware datetime, not {name}"
        with pytest.raises(ddb2os.SigningError):
            ddb2os.Signer(region="r", service="es", access_key="A", secret_key="very-secret").sign(
                "GET", "https://example.com/", timestamp=stamp)

    # An object that behaves as a datetime (arrow's, pendulum's) is taken as one.
    class Like:
        def __init__(self, at):
            self.at = at

        def utcoffset(self):
            return self.at.utcoffset()

        def timestamp(self):
            return self.at.timestamp()

    at = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    kw = dict(region="r", service="es", access_key="A", secret_key="very-secret")
    assert ddb2os.sign("GET", "https://example.com/", {}, None, timestamp=Like(at), **kw) == \
        ddb2os.sign("GET", "https://example.com/", {}, None, timestamp=at, **kw)
    with pytest.raises(ddb2os.SigningError) as e:
        ddb2os.sign("GET", "not a url", {}, None, region="r", service="es", access_key="A",
                    secret_key="very-secret", session_token="tok-secret")
    assert e.value.id.startswith("sigv4.")
    assert "very-secret" not in str(e.value) and "tok-secret" not in str(e.value)


def test_signer_agrees_with_botocore_and_sign(monkeypatch):
    """ddb2os.Signer (credentials bound once) signs exactly as botocore and as ddb2os.sign, one Signer per
    credentials/region/service reused across requests, large bodies included (hashed with the GIL released)."""
    rng = random.Random(SEED + 2)
    signers = {}
    checked = 0
    for i in range(200):
        req, extra = header_case(rng, i)
        if "payload_hash" in req:
            continue
        signed = botocore_as_sent(req, extra["body"], monkeypatch)
        c = req["credentials"]
        key = (req["region"], req["service"], c["access_key_id"], c["secret_access_key"], c.get("session_token"))
        signer = signers.get(key)
        if signer is None:
            signer = signers[key] = ddb2os.Signer(region=key[0], service=key[1], access_key=key[2], secret_key=key[3],
                                                  session_token=key[4])
        when = datetime.datetime.fromtimestamp(req["timestamp"], datetime.timezone.utc)
        headers = [(n, v) for n, v in req["headers"] if not (req["service"] == "aoss" and n.lower() == "content-length")]
        ours = signer.sign(req["method"], req["url"], headers, extra["body"], timestamp=when)
        assert ours["Authorization"] == signed.headers["Authorization"], req["url"]
        assert ours == ddb2os.sign(req["method"], req["url"], headers, extra["body"], region=key[0], service=key[1],
                                   access_key=key[2], secret_key=key[3], session_token=key[4], timestamp=when)
        checked += 1
    assert checked > 150
    big = b"x" * (3 << 20)  # above the size where the GIL is released
    s = ddb2os.Signer(region="us-east-1", service="aoss", access_key="AKID", secret_key="very-secret")
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    h = s.sign("POST", "https://x.us-east-1.aoss.amazonaws.com/_bulk", {"Content-Type": "application/x-ndjson"}, big,
               timestamp=when)
    import hashlib
    assert h["X-Amz-Content-Sha256"] == hashlib.sha256(big).hexdigest()


def test_signer_arguments_repr_and_errors():
    s = ddb2os.Signer(region="us-east-1", service="es", access_key="AKIDEXAMPLE", secret_key="very-secret",
                      session_token="tok-secret")
    assert (s.region, s.service, s.access_key) == ("us-east-1", "es", "AKIDEXAMPLE")
    r = repr(s)
    assert r == "Signer(region='us-east-1', service='es', access_key='AKIDEXAMPLE', secret_key=****, session_token=****)"
    assert "very-secret" not in r and "tok-secret" not in r
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    base = s.sign("GET", "https://example.com/", None, None, timestamp=when)
    assert set(base) == {"Authorization", "X-Amz-Date", "X-Amz-Security-Token"}
    assert base["X-Amz-Security-Token"] == "tok-secret" and base["X-Amz-Date"] == "20240102T030405Z"
    # positional, keyword and defaulted arguments mean the same request
    assert s.sign("GET", "https://example.com/", timestamp=when) == base
    assert s.sign(method="GET", url="https://example.com/", headers={}, body=b"", timestamp=when) == base
    assert s.sign("GET", url=b"https://example.com/", timestamp=when) == base
    now = s.sign("GET", "https://example.com/")
    stamp = datetime.datetime.strptime(now["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - stamp).total_seconds()) < 120
    with pytest.raises(TypeError, match="at most 4 positional"):
        s.sign("GET", "https://example.com/", None, None, when)
    with pytest.raises(TypeError, match="unexpected keyword argument 'region'"):
        s.sign("GET", "https://example.com/", region="eu-west-1")
    with pytest.raises(TypeError, match="multiple values for argument 'url'"):
        s.sign("GET", "https://example.com/", url="https://example.com/")
    with pytest.raises(TypeError, match="needs method and url"):
        s.sign("GET")
    with pytest.raises(ddb2os.SigningError) as e:
        s.sign(b"GET", "https://example.com/")
    assert e.value.id == "sigv4.bad_argument"
    with pytest.raises(ddb2os.SigningError) as e:
        s.sign("GET", "https://example.com/", {"X-Count": 3})
    assert e.value.id == "sigv4.bad_argument"
    with pytest.raises(ddb2os.SigningError) as e:
        s.sign("GET", "not a url")
    assert "very-secret" not in str(e.value) and "tok-secret" not in str(e.value)
    with pytest.raises(ddb2os.SigningError) as e:
        s.sign("GET", "https://example.com/", timestamp=datetime.datetime(2024, 1, 1))
    assert e.value.id == "sigv4.bad_time"
    with pytest.raises(ddb2os.SigningError) as e:
        ddb2os.Signer(region="", service="es", access_key="A", secret_key="very-secret")
    assert str(e.value) == "[ddb2os.sigv4.bad_scope] region is empty"
    with pytest.raises(ddb2os.CredentialsError) as e:
        ddb2os.Signer(region="us-east-1", service="es", access_key="A", secret_key="")
    assert e.value.id == "credentials.incomplete"
    with pytest.raises(TypeError, match=r"^Signer\(\) takes keyword arguments only$"):
        ddb2os.Signer("us-east-1", "es", "A", "very-secret")  # keyword-only: no secret passed by position
    # A wrong type names the argument and quotes none (pybind11's own error would quote them all, an unset
    # AWS_REGION read as None is enough).
    for bad in ("region", "service", "access_key", "secret_key", "session_token"):
        kw = dict(region="us-east-1", service="es", access_key="AKID", secret_key="very-secret",
                  session_token="tok-secret")
        kw[bad] = None if bad != "session_token" else 5
        for make in (lambda: ddb2os.Signer(**kw),
                     lambda: ddb2os.sign("GET", "https://example.com/", None, None, **kw)):
            with pytest.raises(ddb2os.SigningError) as e:
                make()
            assert str(e.value) == f"[ddb2os.sigv4.bad_argument] {bad} must be a str, not {type(kw[bad]).__name__}"
    with pytest.raises(TypeError, match="__init__ did not make"):
        ddb2os.Signer.__new__(ddb2os.Signer).sign("GET", "https://example.com/")


def test_signer_argument_errors_never_quote_the_secrets():
    """A misspelt, missing or positional argument: pybind11's own error would print every argument."""
    kw = dict(region="us-east-1", service="es", access_key="AKID", secret_key="very-secret", session_token="tok-secret")
    calls = [(lambda: ddb2os.Signer(**{**kw, "token": kw["session_token"]}),
              "Signer() got an unexpected keyword argument 'token'"),
             (lambda: ddb2os.Signer(**{k: v for k, v in kw.items() if k != "service"}),
              "Signer() missing required argument 'service'"),
             (lambda: ddb2os.Signer("us-east-1", **{k: v for k, v in kw.items() if k != "region"}),
              "Signer() takes keyword arguments only")]
    for make, message in calls:
        with pytest.raises(TypeError) as e:
            make()
        assert str(e.value).startswith(message)
        assert "very-secret" not in str(e.value) and "tok-secret" not in str(e.value)


def test_a_secret_that_is_not_unicode_is_refused_by_name_never_quoted():
    """A lone surrogate (what os.environ makes of bytes that are not UTF-8): Python's UnicodeEncodeError
    carried the whole secret in its args and repr (found by a review)."""
    kw = dict(region="us-east-1", service="es", access_key="AKID", secret_key="very-secret", session_token="tok-secret")
    for field in ("access_key", "secret_key", "session_token"):
        bad = {**kw, field: "wJal\udcffSECRETPART"}
        for make in (lambda: ddb2os.Signer(**bad), lambda: ddb2os.sign("GET", "https://example.com/", {}, None, **bad)):
            with pytest.raises(ddb2os.SigningError) as e:
                make()
            assert e.value.message == f"{field} is not valid Unicode (it holds a lone surrogate)"
            assert "SECRETPART" not in repr(e.value) and "SECRETPART" not in repr(e.value.args)
            assert e.value.__context__ is None and e.value.__cause__ is None


def test_any_mapping_of_headers_signs_as_its_dict():
    """A mapping that is not a dict is read through its items; iterated, it would give its keys, and a
    two-character name would have been read as a (name, value) pair of its letters."""
    import collections
    import types

    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    s = ddb2os.Signer(region="us-east-1", service="es", access_key="AKID", secret_key="very-secret")
    headers = {"TE": "trailers", "ab": "cd", "X-Custom": "1"}
    want = s.sign("GET", "https://example.com/", headers, timestamp=when)
    assert "SignedHeaders=ab;host;x-amz-date;x-custom," in want["Authorization"]  # as botocore: no TE
    for mapping in (types.MappingProxyType(headers), collections.UserDict(headers),
                    collections.OrderedDict(headers), list(headers.items()), [list(p) for p in headers.items()]):
        assert s.sign("GET", "https://example.com/", mapping, timestamp=when) == want
        assert ddb2os.sign("GET", "https://example.com/", mapping, None, region="us-east-1", service="es",
                           access_key="AKID", secret_key="very-secret", timestamp=when) == want
    for bad in (["TE", "ab"], "ab", [("a", "b", "c")]):
        with pytest.raises(ddb2os.SigningError, match="headers must be a mapping or a sequence of"):
            s.sign("GET", "https://example.com/", bad, timestamp=when)


def test_signer_across_seconds_days_and_non_ascii_key_ids():
    """One Signer keeps the day's key and the second's date text: signing back and forth across midnight, and with
    a key id that is not ASCII (its Authorization str is made by the UTF-8 path), gives what sign() gives."""
    for access_key in ("AKIDEXAMPLE", "AKID\u00e9\u4e2d"):
        s = ddb2os.Signer(region="eu-west-1", service="es", access_key=access_key, secret_key="very-secret")
        midnight = datetime.datetime(2024, 1, 3, tzinfo=datetime.timezone.utc)
        for offset in (-1, -1, 0, 0.5, -2, 86400, 1, -86400):
            when = midnight + datetime.timedelta(seconds=offset)
            got = s.sign("GET", "https://example.com/a b?x=1", {"X-A": "1"}, b"{}", timestamp=when)
            assert got == ddb2os.sign("GET", "https://example.com/a b?x=1", {"X-A": "1"}, b"{}", region="eu-west-1",
                                      service="es", access_key=access_key, secret_key="very-secret", timestamp=when)
            assert got["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={access_key}/{when:%Y%m%d}/")


def test_signer_reentrant_and_bytearray_bodies():
    """A timestamp whose tzinfo signs with the same Signer while the outer call is under way must not change the
    outer request's signature; a large bytearray body (hashed with the GIL held: it could be resized) signs as the
    same bytes do."""
    s = ddb2os.Signer(region="us-east-1", service="es", access_key="AKID", secret_key="very-secret")
    inner = []

    class Meddling(datetime.tzinfo):
        def utcoffset(self, dt):
            inner.append(s.sign("PUT", "https://other.example/zzz", {"X-Other": "1"}, b"inner"))
            return datetime.timedelta(0)

        def dst(self, dt):
            return datetime.timedelta(0)

    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=Meddling())
    got = s.sign("GET", "https://host.example/a", {"X-A": "b"}, None, timestamp=when)
    assert inner, "the tzinfo was not consulted"
    plain = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert got == ddb2os.sign("GET", "https://host.example/a", {"X-A": "b"}, None, region="us-east-1", service="es",
                              access_key="AKID", secret_key="very-secret", timestamp=plain)
    assert "x-other" not in got["Authorization"]

    body = bytes(range(256)) * 1024  # 256 KiB, above the size hashed without the GIL
    for signer_call in (lambda b: s.sign("POST", "https://host.example/_bulk", None, b, timestamp=plain),
                        lambda b: ddb2os.sign("POST", "https://host.example/_bulk", None, b, region="us-east-1",
                                              service="es", access_key="AKID", secret_key="very-secret",
                                              timestamp=plain)):
        assert signer_call(bytearray(body)) == signer_call(body)


def test_a_large_body_signs_while_another_thread_replaces_the_headers():
    """A body of 64 KiB or more is hashed without the GIL: the headers read before (views into a dict's str
    objects) must stay alive meanwhile, though another thread replaces the dict's entries (freeing the strs it
    held). Failed 58-92 times in 100 before the entries were held."""
    import threading
    when = datetime.datetime(2015, 8, 30, 12, 36, 0, tzinfo=datetime.timezone.utc)
    body = b"x" * (4 << 20)
    kw = dict(region="us-east-1", service="es", access_key="AKID", secret_key="SECRET", timestamp=when)
    want = ddb2os.sign("POST", "https://h/_bulk", {"X-Long": "a" * 2000}, body, **kw)["Authorization"]
    headers = {"X-Long": "".join(["a"] * 2000)}  # a str of its own, held only by the dict
    stop = False

    def meddle():
        while not stop:
            headers["X-Long"] = "".join(["a"] * 2000)  # frees the one before
            _ = ["".join(["z"] * 2000) for _ in range(4)]  # reuses the freed memory

    t = threading.Thread(target=meddle)
    t.start()
    try:
        got = [ddb2os.sign("POST", "https://h/_bulk", headers, body, **kw)["Authorization"] for _ in range(100)]
    finally:
        stop = True
        t.join()
    assert got == [want] * 100


def test_a_new_signer_refuses_the_second_before_1970():
    """The signer's "no second yet" was the second -1, which 1969-12-31T23:59:59 is: a new Signer signed it
    with a key it did not have (a segmentation fault). Now refused as sign() refuses it, and still usable."""
    s = ddb2os.Signer(region="us-east-1", service="es", access_key="AK", secret_key="SK")
    before = datetime.datetime(1969, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)
    for _ in range(2):
        with pytest.raises(ddb2os.SigningError, match=r"signing time is outside the years 1970 to 9999"):
            s.sign("GET", "https://h/", timestamp=before)
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert s.sign("GET", "https://h/", timestamp=when) == ddb2os.sign(
        "GET", "https://h/", {}, b"", region="us-east-1", service="es", access_key="AK", secret_key="SK", timestamp=when)


def test_a_str_with_a_lone_surrogate_is_refused_by_name_never_quoted():
    """A header value, URL, method or body str that has no UTF-8 (a lone surrogate) raised Python's
    UnicodeEncodeError, whose args and repr hold the whole value (a header holding a secret)."""
    kw = dict(region="us-east-1", service="es", access_key="AK", secret_key="SK")
    for call, what in ((lambda: ddb2os.sign("GET", "https://h/", {"X-Api-Key": "hunter2\ud800"}, None, **kw),
                        "a header value"),
                       (lambda: ddb2os.sign("GET", "https://h/\ud800hunter2", {}, None, **kw), "url"),
                       (lambda: ddb2os.sign("POST", "https://h/", {}, "hunter2\ud800", **kw), "body"),
                       (lambda: ddb2os.Signer(**kw).sign("GET", "https://h/", {"hunter2\ud800": "v"}), "a header name")):
        with pytest.raises(ddb2os.SigningError) as e:
            call()
        assert str(e.value) == f"[ddb2os.sigv4.bad_argument] {what} is not valid Unicode (it holds a lone surrogate)"
        assert "hunter2" not in repr(e.value) and "hunter2" not in repr(e.value.args)


def test_a_header_name_of_bytes_that_are_not_utf8_is_a_bad_header():
    """A header name given as bytes that are not UTF-8: the message quoted its bytes as they were, which could not
    become the Python error's str (a bare UnicodeDecodeError, no ddb2os id; found by a review)."""
    kw = dict(region="us-east-1", service="es", access_key="AK", secret_key="SK")
    for call in (lambda: ddb2os.sign("GET", "https://h/", {b"X-\xff": "v"}, None, **kw),
                 lambda: ddb2os.Signer(**kw).sign("GET", "https://h/", [(b"X-\xff", "v")])):
        with pytest.raises(ddb2os.SigningError) as e:
            call()
        assert str(e.value) == '[ddb2os.sigv4.bad_header] header name "X-\ufffd" is not an HTTP token'


def test_a_time_the_clock_cannot_hold_or_that_is_no_number_is_a_bad_time():
    """The datetime's seconds were converted to the system clock's integer nanoseconds unchecked: past 2262 (or
    not finite) that is undefined (on x86-64, a 1677 time refused in the wrong words; on arm64, the year 2262
    signed). A timestamp() that gave no number was pybind11's RuntimeError, with no id (found by a review)."""
    kw = dict(region="us-east-1", service="es", access_key="AK", secret_key="SK")

    class Stamp:  # a datetime-like object (arrow's, pendulum's) whose timestamp() gives `value`
        def __init__(self, value):
            self.value = value

        def utcoffset(self):
            return datetime.timedelta(0)

        def timestamp(self):
            return self.value

    cases = [(datetime.datetime(2300, 1, 1, tzinfo=datetime.timezone.utc),
              "signing time is past the year 2262, the last this platform's system clock holds"),
             (datetime.datetime(9999, 12, 31, tzinfo=datetime.timezone.utc),
              "signing time is past the year 2262, the last this platform's system clock holds"),
             (Stamp(float("nan")), "signing time is outside the years 1970 to 9999"),
             (Stamp(float("inf")), "signing time is outside the years 1970 to 9999"),
             (Stamp(1e300), "signing time is outside the years 1970 to 9999"),
             (Stamp(-1e300), "signing time is outside the years 1970 to 9999"),
             (Stamp("1700000000"), "timestamp.timestamp() must give a number, not str")]
    for when, message in cases:
        for call in (lambda: ddb2os.sign("GET", "https://h/", {}, None, timestamp=when, **kw),
                     lambda: ddb2os.Signer(**kw).sign("GET", "https://h/", timestamp=when)):
            with pytest.raises(ddb2os.SigningError) as e:
                call()
            assert (e.value.id, e.value.message) == ("sigv4.bad_time", message), when
    # The last second the clock holds, and an int, still sign.
    for when, stamp in ((datetime.datetime(2262, 4, 11, tzinfo=datetime.timezone.utc), "22620411T000000Z"),
                        (Stamp(1704164645), "20240102T030405Z")):
        assert ddb2os.sign("GET", "https://h/", {}, None, timestamp=when, **kw)["X-Amz-Date"] == stamp


def test_credentials_with_a_line_break_are_refused_never_quoted():
    """The key id and session token go into headers; a line break (a copied variable) made a header value that
    the caller's HTTP library refused, quoting it."""
    for name in ("access_key", "session_token"):
        kw = dict(region="us-east-1", service="es", access_key="AK", secret_key="SK", session_token="TOK")
        kw[name] = "TOKSECRET\n"
        for call in (lambda: ddb2os.sign("GET", "https://h/", {}, None, **kw), lambda: ddb2os.Signer(**kw)):
            with pytest.raises(ddb2os.SigningError) as e:
                call()
            assert str(e.value) == (f"[ddb2os.sigv4.bad_argument] {name} holds a control character (a line break?): "
                                    "it cannot be sent in a header")
            assert "TOKSECRET" not in repr(e.value)
