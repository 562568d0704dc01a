"""ddb2os.lambda_runtime: the Lambda Runtime API loop that hands ddb2os.handler each event's raw bytes.

Run under AWS's Lambda Runtime Interface Emulator (scripts/stack.py builds it from its Go module), the
real Runtime API a container-image function talks to. The whole sync through it, into OpenSearch, is in
test_e2e.py (test_the_lambda_runtime_syncs_a_stream_under_the_runtime_interface_emulator).
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import stack  # noqa: E402

from ddb2os.lambda_runtime import LambdaContext  # noqa: E402

RUNTIME = [sys.executable, "-m", "ddb2os.lambda_runtime"]


def runtime_env(**env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSEARCH_", "ES_", "AWS_"))}
    base.pop("HOST", None)
    # A port nothing listens on: these tests never reach OpenSearch.
    base.update({"OPENSEARCH_ENDPOINT": f"http://127.0.0.1:{stack.free_port()}", "OPENSEARCH_AUTH": "none"})
    base.update(env)
    return {k: v for k, v in base.items() if v is not None}


def test_a_bad_setting_is_an_init_error_naming_it():
    with stack.lambda_emulator(RUNTIME, env=runtime_env(OPENSEARCH_ENDPOINT=None)) as rie:
        status, body = rie.invoke(b'{"Records": []}')
        out = rie.output()
    error = json.loads(body)
    assert status >= 500 and error["errorType"] == "OptionError", body
    assert error["errorMessage"].startswith("[ddb2os.option.invalid] OPENSEARCH_ENDPOINT is not set"), body
    # Lambda's log: the exception, in one line.
    assert "[ERROR] OptionError: Traceback" in out, out


def test_an_event_the_handler_refuses_is_that_invocations_error_and_the_next_one_is_served():
    kinesis = {"Records": [{"eventSource": "aws:kinesis", "eventID": "shardId-000:1",
                            "kinesis": {"sequenceNumber": "1", "data": "e30="}}]}
    with stack.lambda_emulator(RUNTIME, env=runtime_env()) as rie:
        status, body = rie.invoke(json.dumps(kinesis).encode())
        error = json.loads(body)
        assert error["errorType"] == "EventError", body
        assert error["errorMessage"].startswith("[ddb2os.event.shape] Records[0].eventSource: ddb2os.handler reads "
                                                "DynamoDB Streams records; this one comes from 'aws:kinesis'"), body
        # Not JSON at all: the engine's error, with the byte it stopped at.
        status, body = rie.invoke(b'{"Records": [')
        error = json.loads(body)
        assert error["errorType"] == "EventError" and "[ddb2os.json.syntax]" in error["errorMessage"], body
        # The same process goes on (its engine made once): an empty batch is answered.
        status, body = rie.invoke(b'{"Records": []}')
        assert (status, json.loads(body)) == (200, {"batchItemFailures": []}), body
        out = rie.output()
    assert out.count("Init Duration") == 1 and out.count("REPORT RequestId") == 3, out
    # The batch's log line (CloudWatch Embedded Metric Format) went to the function's output.
    assert '"message":"ddb2os batch"' in out, out


def test_the_context_counts_down_to_the_invocations_deadline():
    now = int(time.time() * 1000)
    ctx = LambdaContext("req-1", now + 5000, "arn:aws:lambda:us-east-1:1:function:f",
                        {"AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"})
    assert 4000 < ctx.get_remaining_time_in_millis() <= 5000
    assert (ctx.aws_request_id, ctx.function_name, ctx.memory_limit_in_mb) == ("req-1", "f", "512")
    assert LambdaContext("req-2", now - 10, "", {}).get_remaining_time_in_millis() == 0


def test_run_by_hand_it_says_what_it_is_for():
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_RUNTIME_API"}
    p = subprocess.run(RUNTIME, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert "AWS_LAMBDA_RUNTIME_API is not set" in p.stderr, p.stderr
