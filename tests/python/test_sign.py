"""ddb2os.sign (the Python module) against botocore's SigV4Auth, on generated requests."""
import datetime
import random

import pytest

import ddb2os
from test_sigv4_botocore import SEED, botocore_sign, header_case


def test_sign_agrees_with_botocore(monkeypatch):
    rng = random.Random(SEED + 1)
    checked = 0
    for i in range(200):
        req, extra = header_case(rng, i)
        if "payload_hash" in req:  # the Python API takes the body itself
            continue
        _, signed = botocore_sign(req, extra["body"], False, False, monkeypatch)
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
        checked += 1
    assert checked > 150


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
    with pytest.raises(ddb2os.SigningError) as e:
        ddb2os.sign("GET", "not a url", {}, None, region="r", service="es", access_key="A",
                    secret_key="very-secret", session_token="tok-secret")
    assert e.value.id.startswith("sigv4.")
    assert "very-secret" not in str(e.value) and "tok-secret" not in str(e.value)
